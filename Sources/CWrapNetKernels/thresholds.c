// Threshold codes: the engine's exact and clamp layers map each 32-bit sum to the number of thresholds it
// passes. Layout and contract: include/CWrapNetKernels.h (wrapnet_threshold_codes). A plain C loop for any CPU
// and an AVX2 loop over 4 channels at a time (int64 compares), chosen at run time.
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

#endif

void wrapnet_threshold_codes(const int32_t *z, size_t rows, size_t m, const int64_t *t, size_t levels,
                             const uint8_t *descending, uint8_t *out) {
#if defined(__x86_64__)
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
