// AVX2 micro-kernels for wrap-around integer GEMMs. Layouts and contracts: include/CWrapNetKernels.h.
//
// Every function here is compiled for AVX2 through a pragma (no global -mavx2), so the library still loads and
// runs on CPUs without AVX2: Swift calls these only after wrapnet_cpu_has_avx2() said yes. On other
// architectures the file compiles to the CPU query alone.
#include "CWrapNetKernels.h"

#if defined(__unix__) || defined(__APPLE__)
#include <time.h>

double wrapnet_thread_cpu_seconds(void) {
  struct timespec t;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) != 0) return -1;
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
#else
double wrapnet_thread_cpu_seconds(void) { return -1; }
#endif

#if defined(__x86_64__)

#include <immintrin.h>

int wrapnet_cpu_has_avx2(void) {
  // The runtime-library probe also checks that the OS saves the YMM state (XGETBV), not just the CPUID bit.
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") ? 1 : 0;
}

int wrapnet_cpu_has_avx512vnni(void) {
  // As above, the probe checks that the OS saves the ZMM state too.
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni")
             ? 1
             : 0;
}

#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)

// Activation rows per L1-resident column block: the inner loops stream one 4-row weight panel over these rows,
// so the rows should stay in L1 (32 KiB on current x86) while every panel of the layer passes over them.
static inline size_t column_block(size_t kp) {
  size_t nb = (size_t)16384 / (kp ? kp : 1);
  nb &= ~(size_t)1;
  return nb < 2 ? 2 : nb;
}

// Horizontal sums of eight int32 vectors, returned in order [a0, ..., a7] (wraps mod 2^32, which is fine: every
// caller only needs the sum mod 2^L with L <= 32).
static inline __m256i reduce8_epi32(__m256i a0, __m256i a1, __m256i a2, __m256i a3, __m256i a4, __m256i a5,
                                    __m256i a6, __m256i a7) {
  // Per 128-bit lane: h0123 = [a0, a1, a2, a3 partial sums] of that lane; likewise h4567.
  __m256i h0123 = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
  __m256i h4567 = _mm256_hadd_epi32(_mm256_hadd_epi32(a4, a5), _mm256_hadd_epi32(a6, a7));
  // Add the low-lane partials to the high-lane partials.
  __m256i lo = _mm256_permute2x128_si256(h0123, h4567, 0x20);
  __m256i hi = _mm256_permute2x128_si256(h0123, h4567, 0x31);
  return _mm256_add_epi32(lo, hi);
}

// Byte sums of eight 8-bit-lane accumulators, mod 2^8, as eight int32 [a0, ..., a7] (any higher bits are
// garbage-free partial sums; callers keep only the low `bits` <= 8). Cheaper than sad + reduce8_epi32: sad_epu8
// leaves four small sums (< 2^11) per accumulator, one per 64-bit lane; pairs of accumulators share 64-bit lanes
// (second one shifted into the high half), then two unpack/add rounds and one cross-lane add finish the job.
static inline __m256i reduce8_acc8(__m256i a0, __m256i a1, __m256i a2, __m256i a3, __m256i a4, __m256i a5,
                                   __m256i a6, __m256i a7) {
  const __m256i z = _mm256_setzero_si256();
  const __m256i p01 = _mm256_add_epi64(_mm256_sad_epu8(a0, z), _mm256_slli_epi64(_mm256_sad_epu8(a1, z), 32));
  const __m256i p23 = _mm256_add_epi64(_mm256_sad_epu8(a2, z), _mm256_slli_epi64(_mm256_sad_epu8(a3, z), 32));
  const __m256i p45 = _mm256_add_epi64(_mm256_sad_epu8(a4, z), _mm256_slli_epi64(_mm256_sad_epu8(a5, z), 32));
  const __m256i p67 = _mm256_add_epi64(_mm256_sad_epu8(a6, z), _mm256_slli_epi64(_mm256_sad_epu8(a7, z), 32));
  // Per 128-bit lane: [a0, a1, a2, a3] (resp. a4..a7) partial sums of that lane.
  const __m256i q0123 = _mm256_add_epi32(_mm256_unpacklo_epi64(p01, p23), _mm256_unpackhi_epi64(p01, p23));
  const __m256i q4567 = _mm256_add_epi32(_mm256_unpacklo_epi64(p45, p67), _mm256_unpackhi_epi64(p45, p67));
  return _mm256_add_epi32(_mm256_permute2x128_si256(q0123, q4567, 0x20),
                          _mm256_permute2x128_si256(q0123, q4567, 0x31));
}

// Int16-lane sums of eight 16-bit-lane accumulators, mod 2^16, as eight int32 [a0, ..., a7] (sign-extended
// from 16 bits; callers keep the low `bits` <= 16). A transpose-and-add tree: each round interleaves two
// vectors and adds, halving the partial sums per accumulator while doubling the accumulators per vector.
static inline __m256i reduce8_acc16(__m256i a0, __m256i a1, __m256i a2, __m256i a3, __m256i a4, __m256i a5,
                                    __m256i a6, __m256i a7) {
  const __m256i t01 = _mm256_add_epi16(_mm256_unpacklo_epi16(a0, a1), _mm256_unpackhi_epi16(a0, a1));
  const __m256i t23 = _mm256_add_epi16(_mm256_unpacklo_epi16(a2, a3), _mm256_unpackhi_epi16(a2, a3));
  const __m256i t45 = _mm256_add_epi16(_mm256_unpacklo_epi16(a4, a5), _mm256_unpackhi_epi16(a4, a5));
  const __m256i t67 = _mm256_add_epi16(_mm256_unpacklo_epi16(a6, a7), _mm256_unpackhi_epi16(a6, a7));
  const __m256i t0123 = _mm256_add_epi16(_mm256_unpacklo_epi32(t01, t23), _mm256_unpackhi_epi32(t01, t23));
  const __m256i t4567 = _mm256_add_epi16(_mm256_unpacklo_epi32(t45, t67), _mm256_unpackhi_epi32(t45, t67));
  // Per 128-bit lane: int16 [a0, a1, a2, a3, a4, a5, a6, a7] partial sums of that lane.
  const __m256i t = _mm256_add_epi16(_mm256_unpacklo_epi64(t0123, t4567), _mm256_unpackhi_epi64(t0123, t4567));
  const __m128i r = _mm_add_epi16(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
  return _mm256_cvtepi16_epi32(r);
}

// Sign-extends the low `bits` bits of each lane (wrap_bits) and stores a 4-row x 2-column tile: lanes 0..3 are
// rows m0..m0+3 of column (activation row) n0, lanes 4..7 the same rows of column n0 + 1.
static inline void store_tile(__m256i sums, int bits, int32_t *c, size_t ldc, size_t mrows, size_t ncols) {
  const __m128i shift = _mm_cvtsi32_si128(32 - bits);
  const __m256i r = _mm256_sra_epi32(_mm256_sll_epi32(sums, shift), shift);
  if (mrows == 4) {
    _mm_storeu_si128((__m128i *)c, _mm256_castsi256_si128(r));
    if (ncols == 2) _mm_storeu_si128((__m128i *)(c + ldc), _mm256_extracti128_si256(r, 1));
    return;
  }
  int32_t tmp[8];
  _mm256_storeu_si256((__m256i *)tmp, r);
  for (size_t j = 0; j < ncols; j++)
    for (size_t i = 0; i < mrows; i++) c[j * ldc + i] = tmp[j * 4 + i];
}

// Loops shared by all kernels: column blocks (L1), then 4-row weight panels, then pairs of activation rows. A
// single trailing activation row reuses row n0 as the second column and stores only the first.
#define WRAPNET_DEFINE_GEMM(name, tile)                                                                       \
  void name(const int8_t *w, size_t m, size_t kp, const uint8_t *x, size_t n, size_t ldx, int32_t *c,       \
            size_t ldc, int bits) {                                                                         \
    const size_t nb = column_block(kp);                                                                     \
    for (size_t nbeg = 0; nbeg < n; nbeg += nb) {                                                           \
      const size_t nend = n - nbeg < nb ? n : nbeg + nb;                                                    \
      for (size_t m0 = 0; m0 < m; m0 += 4) {                                                                \
        const int8_t *panel = w + m0 * kp;                                                                  \
        const size_t mrows = m - m0 < 4 ? m - m0 : 4;                                                       \
        for (size_t n0 = nbeg; n0 < nend; n0 += 2) {                                                        \
          const size_t ncols = nend - n0 < 2 ? 1 : 2;                                                       \
          const uint8_t *x0 = x + n0 * ldx;                                                                 \
          const uint8_t *x1 = ncols == 2 ? x0 + ldx : x0;                                                   \
          store_tile(tile(panel, kp, x0, x1), bits, c + n0 * ldc + m0, ldc, mrows, ncols);                  \
        }                                                                                                   \
      }                                                                                                     \
    }                                                                                                       \
  }

// A 4-row x 2-column tile on whole 32-byte blocks: per block, STEP(acc, x, w) folds 32 codes of activation row
// x0 or x1 and weight row r into accumulator c_r0 or c_r1; REDUCE turns the eight accumulators into the tile.
#define WRAPNET_DEFINE_TILE(name, STEP, REDUCE)                                                              \
  static inline __m256i name(const int8_t *w, size_t kp, const uint8_t *x0, const uint8_t *x1) {           \
    __m256i c00 = _mm256_setzero_si256(), c10 = c00, c20 = c00, c30 = c00;                                 \
    __m256i c01 = c00, c11 = c00, c21 = c00, c31 = c00;                                                    \
    for (size_t k = 0; k < kp; k += 32, w += 128) {                                                        \
      const __m256i xa = _mm256_loadu_si256((const __m256i *)(x0 + k));                                    \
      const __m256i xb = _mm256_loadu_si256((const __m256i *)(x1 + k));                                    \
      const __m256i w0 = _mm256_loadu_si256((const __m256i *)(w));                                         \
      const __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + 32));                                    \
      const __m256i w2 = _mm256_loadu_si256((const __m256i *)(w + 64));                                    \
      const __m256i w3 = _mm256_loadu_si256((const __m256i *)(w + 96));                                    \
      c00 = STEP(c00, xa, w0);                                                                             \
      c10 = STEP(c10, xa, w1);                                                                             \
      c20 = STEP(c20, xa, w2);                                                                             \
      c30 = STEP(c30, xa, w3);                                                                             \
      c01 = STEP(c01, xb, w0);                                                                             \
      c11 = STEP(c11, xb, w1);                                                                             \
      c21 = STEP(c21, xb, w2);                                                                             \
      c31 = STEP(c31, xb, w3);                                                                             \
    }                                                                                                      \
    return REDUCE(c00, c10, c20, c30, c01, c11, c21, c31);                                                 \
  }

// MARK: 8-bit lanes, |w| <= 1

// sign_epi8(x, w) is x, 0 or -x (negation mod 2^8) for w = +1, 0, -1: exactly w * x mod 2^8 for any byte x, and
// add_epi8 wraps mod 2^8. The final byte sums use sad_epu8 (unsigned), which is congruent mod 2^8.
#define TILE_TERNARY_ACC8_STEP(c, x, w) _mm256_add_epi8((c), _mm256_sign_epi8((x), (w)))
WRAPNET_DEFINE_TILE(tile_ternary_acc8, TILE_TERNARY_ACC8_STEP, reduce8_acc8)

WRAPNET_DEFINE_GEMM(wrapnet_gemm_ternary_u8_acc8_4x2_avx2, tile_ternary_acc8)

// MARK: 16-bit lanes

// maddubs_epi16 saturates its pair sum x0*w0 + x1*w1 to int16; with |w| <= 64 and x <= 255 the pair sum is at
// most 32640 < 32767, so it is exact, and add_epi16 then wraps mod 2^16.
#define TILE_S7_ACC16_STEP(c, x, w) _mm256_add_epi16((c), _mm256_maddubs_epi16((x), (w)))
WRAPNET_DEFINE_TILE(tile_s7_acc16, TILE_S7_ACC16_STEP, reduce8_acc16)

WRAPNET_DEFINE_GEMM(wrapnet_gemm_s7_u8_acc16_4x2_avx2, tile_s7_acc16)

// MARK: 32-bit lanes

// Both operands widened to int16 (products and pair sums exact in int32), madd_epi16, add_epi32 (wraps mod 2^32).
static inline __m256i tile_s8_acc32(const int8_t *w, size_t kp, const uint8_t *x0, const uint8_t *x1) {
  __m256i c00 = _mm256_setzero_si256(), c10 = c00, c20 = c00, c30 = c00;
  __m256i c01 = c00, c11 = c00, c21 = c00, c31 = c00;
  for (size_t k = 0; k < kp; k += 32, w += 128) {
    // Two halves of 16 bytes per 32-byte block.
    for (size_t h = 0; h < 32; h += 16) {
      const __m256i xa = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(x0 + k + h)));
      const __m256i xb = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(x1 + k + h)));
      const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + h)));
      const __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 32 + h)));
      const __m256i w2 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 64 + h)));
      const __m256i w3 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 96 + h)));
      c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(xa, w0));
      c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(xa, w1));
      c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(xa, w2));
      c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(xa, w3));
      c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(xb, w0));
      c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(xb, w1));
      c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(xb, w2));
      c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(xb, w3));
    }
  }
  return reduce8_epi32(c00, c10, c20, c30, c01, c11, c21, c31);
}

WRAPNET_DEFINE_GEMM(wrapnet_gemm_s8_u8_acc32_4x2_avx2, tile_s8_acc32)

#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)

// AVX-512 VNNI on 256-bit vectors: vpdpbusd multiplies uint8 x int8 and adds each group of four products into an
// int32 lane (no saturation), so one instruction replaces the two widenings, vpmaddwd and vpaddd above, per 32
// products instead of 16. Exact: |sum of 4 products| <= 4 * 255 * 128; the lane sum wraps mod 2^32 as above.
#define TILE_S8_ACC32_VNNI_STEP(c, x, w) _mm256_dpbusd_epi32((c), (x), (w))
WRAPNET_DEFINE_TILE(tile_s8_acc32_vnni, TILE_S8_ACC32_VNNI_STEP, reduce8_epi32)

WRAPNET_DEFINE_GEMM(wrapnet_gemm_s8_u8_acc32_4x2_vnni, tile_s8_acc32_vnni)

#pragma clang attribute pop

#else  // not x86_64

int wrapnet_cpu_has_avx2(void) { return 0; }
int wrapnet_cpu_has_avx512vnni(void) { return 0; }

#endif
