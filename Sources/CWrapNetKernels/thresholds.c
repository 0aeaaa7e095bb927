// Threshold codes: the engine's exact and clamp layers map each 32-bit sum to the number of thresholds it
// passes. Layout and contract: include/CWrapNetKernels.h (wrapnet_threshold_codes). A plain C loop for any CPU,
// and, chosen at run time, AVX2 loops: 8 channels at a time with int32 compares when the thresholds allow it
// (always, for the exporter's), else 4 at a time with int64 compares.
#include "CWrapNetKernels.h"

#include <stdlib.h>

static void threshold_codes_plain(const int32_t *z, size_t rows, size_t m, const int64_t *t, size_t levels,
                                  const uint8_t *descending, uint8_t *out, size_t first_channel) {
  for (size_t r = 0; r < rows; r++) {
    const int32_t *zr = z + r * m;
    uint8_t *o = out + r * m;
    for (size_t ch = first_channel; ch < m; ch++) {
      const int64_t v = zr[ch];
      const int64_t *tc = t + ch * levels;
      // Comparisons summed as 0/1 values (setcc, no branch on the data-dependent outcome).
      unsigned code = 0;
      if (descending[ch]) {
        for (size_t l = 0; l < levels; l++) code += v <= tc[l];
      } else {
        for (size_t l = 0; l < levels; l++) code += v >= tc[l];
      }
      o[ch] = (uint8_t)code;
    }
  }
}

#if defined(__x86_64__)

#include <immintrin.h>

// Channels 0 ..< m & ~3, four per vector. Thresholds transposed to [levels][m4] so that one load gives level l
// of four channels. A channel passes threshold t when v >= t (ascending), i.e. not t > v, or v <= t
// (descending), i.e. not v > t; so code = levels - (number of "greater" results), and each "greater" lane is -1.
__attribute__((target("avx2"))) static void threshold_codes_avx2(const int32_t *z, size_t rows, size_t m,
                                                                 size_t levels, const uint8_t *descending,
                                                                 uint8_t *out, const int64_t *tt, size_t m4) {
  for (size_t r = 0; r < rows; r++) {
    const int32_t *zr = z + r * m;
    uint8_t *o = out + r * m;
    for (size_t ch = 0; ch < m4; ch += 4) {
      const __m256i v = _mm256_cvtepi32_epi64(_mm_loadu_si128((const __m128i *)(zr + ch)));
      int32_t flags;
      __builtin_memcpy(&flags, descending + ch, 4);
      // Descending channels as all-ones 64-bit lanes (Bool bytes are 0 or 1).
      const __m256i down = _mm256_sub_epi64(_mm256_setzero_si256(), _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(flags)));
      __m256i code = _mm256_set1_epi64x((int64_t)levels);
      for (size_t l = 0; l < levels; l++) {
        const __m256i th = _mm256_loadu_si256((const __m256i *)(tt + l * m4 + ch));
        const __m256i greater = _mm256_blendv_epi8(_mm256_cmpgt_epi64(th, v), _mm256_cmpgt_epi64(v, th), down);
        code = _mm256_add_epi64(code, greater);
      }
      int64_t c[4];
      _mm256_storeu_si256((__m256i *)c, code);
      o[ch] = (uint8_t)c[0];
      o[ch + 1] = (uint8_t)c[1];
      o[ch + 2] = (uint8_t)c[2];
      o[ch + 3] = (uint8_t)c[3];
    }
  }
}

// Channels 0 ..< m8, eight per vector, when every threshold lies in [INT32_MIN - 1, INT32_MAX + 1] (what the
// exporter writes): each (channel, level) becomes an int32 u and a flip f (0 or -1) with
//   pass = (u > v) XOR f
// ascending t in [INT32_MIN + 1, INT32_MAX]: v >= t = not (t > v)    -> u = t,         f = -1
// descending t in [INT32_MIN, INT32_MAX - 1]: v <= t = (t + 1 > v)    -> u = t + 1,     f = 0
// never (ascending > INT32_MAX, descending < INT32_MIN)             -> u = INT32_MIN, f = 0
// always (ascending <= INT32_MIN, descending >= INT32_MAX)           -> u = INT32_MIN, f = -1
// so one compare, one xor and one subtract per level and 8 values (the int64 loop does 4 values per 2 compares
// and a blend). uf holds [levels][2][m8]: u then f.
__attribute__((target("avx2"))) static void threshold_codes_avx2_32(const int32_t *z, size_t rows, size_t m,
                                                                    size_t levels, uint8_t *out,
                                                                    const int32_t *uf, size_t m8) {
  for (size_t r = 0; r < rows; r++) {
    const int32_t *zr = z + r * m;
    uint8_t *o = out + r * m;
    for (size_t ch = 0; ch < m8; ch += 8) {
      const __m256i v = _mm256_loadu_si256((const __m256i *)(zr + ch));
      __m256i code = _mm256_setzero_si256();
      for (size_t l = 0; l < levels; l++) {
        const __m256i u = _mm256_loadu_si256((const __m256i *)(uf + (2 * l) * m8 + ch));
        const __m256i f = _mm256_loadu_si256((const __m256i *)(uf + (2 * l + 1) * m8 + ch));
        code = _mm256_sub_epi32(code, _mm256_xor_si256(_mm256_cmpgt_epi32(u, v), f));
      }
      // Codes <= levels < 2^15: saturating packs keep them; each 128-bit lane then starts with its 4 codes.
      const __m256i bytes = _mm256_packus_epi16(_mm256_packs_epi32(code, code), _mm256_setzero_si256());
      const int32_t lo = _mm_cvtsi128_si32(_mm256_castsi256_si128(bytes));
      const int32_t hi = _mm_cvtsi128_si32(_mm256_extracti128_si256(bytes, 1));
      __builtin_memcpy(o + ch, &lo, 4);
      __builtin_memcpy(o + ch + 4, &hi, 4);
    }
  }
}

// The (u, f) pair of threshold t (see threshold_codes_avx2_32); returns 0 when t is outside [INT32_MIN - 1,
// INT32_MAX + 1].
static int threshold_pair(int64_t t, int descending, int32_t *u, int32_t *f) {
  if (t < (int64_t)INT32_MIN - 1 || t > (int64_t)INT32_MAX + 1) return 0;
  if (!descending) {
    if (t > INT32_MAX) *u = INT32_MIN, *f = 0;        // never
    else if (t <= INT32_MIN) *u = INT32_MIN, *f = -1; // always
    else *u = (int32_t)t, *f = -1;
  } else {
    if (t < INT32_MIN) *u = INT32_MIN, *f = 0;        // never
    else if (t >= INT32_MAX) *u = INT32_MIN, *f = -1; // always
    else *u = (int32_t)(t + 1), *f = 0;
  }
  return 1;
}

#endif

void wrapnet_threshold_codes(const int32_t *z, size_t rows, size_t m, const int64_t *t, size_t levels,
                             const uint8_t *descending, uint8_t *out) {
#if defined(__x86_64__)
  const size_t m8 = m & ~(size_t)7;
  if (m8 > 0 && levels > 0 && wrapnet_cpu_has_avx2()) {
    int32_t *uf = malloc(2 * levels * m8 * sizeof(int32_t));
    int fits = uf != NULL;
    for (size_t ch = 0; fits && ch < m8; ch++)
      for (size_t l = 0; fits && l < levels; l++)
        fits = threshold_pair(t[ch * levels + l], descending[ch] != 0, &uf[(2 * l) * m8 + ch],
                              &uf[(2 * l + 1) * m8 + ch]);
    if (fits) {
      threshold_codes_avx2_32(z, rows, m, levels, out, uf, m8);
      free(uf);
      threshold_codes_plain(z, rows, m, t, levels, descending, out, m8);
      return;
    }
    free(uf);
  }
  const size_t m4 = m & ~(size_t)3;
  if (m4 > 0 && wrapnet_cpu_has_avx2()) {
    int64_t *tt = malloc(levels * m4 * sizeof(int64_t));
    if (tt) {
      for (size_t ch = 0; ch < m4; ch++)
        for (size_t l = 0; l < levels; l++) tt[l * m4 + ch] = t[ch * levels + l];
      threshold_codes_avx2(z, rows, m, levels, descending, out, tt, m4);
      free(tt);
      threshold_codes_plain(z, rows, m, t, levels, descending, out, m4);
      return;
    }
  }
#endif
  threshold_codes_plain(z, rows, m, t, levels, descending, out, 0);
}
