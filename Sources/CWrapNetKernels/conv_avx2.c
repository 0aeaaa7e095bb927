// Direct convolution for a network's first layer: uint8 pixels x int8 weights, exact int32 sums, AVX2. Layout and
// contract: include/CWrapNetKernels.h (wrapnet_conv_s8u8_acc32_avx2).
//
// Why: the first layer has few input channels (3 for RGB), so its im2col rows are short (27 codes) and a GEMM over
// them spends its time on the rows' copies and the tiles' edges rather than on products (in a resnet20 run the
// im2col and the GEMM took 15% of the time for 1% of the MACs). Here one kernel row of an output pixel's window
// (k * c <= 16 contiguous NHWC bytes) is one 16-byte load, no copy: a per-column shuffle moves its bytes into
// place and zeroes those outside the image, then each pair of taps is broadcast to every lane by one more shuffle
// (as int16 pairs x0 | x1 << 16) and summed against all output channels, 8 per vector, by vpmaddwd (int16 x int16
// -> int32, exact: |w x| <= 128 * 255). Gathering the window into a buffer instead (byte stores, then loads) cost
// more than the products. CPUs with AVX-512 VNNI run the same loop on quads of taps with vpdpbusd (uint8 x int8,
// four products summed into int32, no saturation): one instruction for what takes vpmaddwd + vpaddd twice.
#include "CWrapNetKernels.h"
#include "window_plan.h"

#if defined(__x86_64__)

#include <immintrin.h>

// One output row for a row kernel: `cols` output columns from dst on (m sums each) with their column plans
// (wrapnet_window_plan), the window's first image row y0 (may be negative), the weights and their tap units (pairs
// or quads) per kernel row.
typedef struct {
  const uint8_t *image;
  size_t h, row_bytes, m, k, units;
  const void *w;
  const uint8_t (*ctrl)[32];
  const size_t *start;
  size_t cols;
  long y0;
  int32_t *dst;
} conv_row_job;

typedef void (*conv_row_fn)(const conv_row_job *);

// Kernel row y of the image for column q as 16 bytes in both lanes, arranged by `sel` (its column plan).
#define CONV_ROW_BYTES(j, y, q, sel, out)                                                                           \
  do {                                                                                                              \
    const uint8_t *row_ = (j)->image + (size_t)(y) * (j)->row_bytes;                                               \
    __m128i b_;                                                                                                     \
    if ((j)->row_bytes >= 16) {                                                                                     \
      b_ = _mm_loadu_si128((const __m128i *)(row_ + (j)->start[q]));                                               \
    } else {                                                                                                        \
      uint8_t tmp_[16] = {0};                                                                                       \
      for (size_t t_ = 0; t_ < (j)->row_bytes; t_++) tmp_[t_] = row_[t_];                                          \
      b_ = _mm_loadu_si128((const __m128i *)tmp_);                                                                 \
    }                                                                                                               \
    (out) = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(b_), (sel));                                            \
  } while (0)

// A row kernel over the job's columns: per column, BLOCKS accumulators of 8 channels; for each kernel row inside
// the image (rows of zeros add nothing), its bytes, then STEP(unit u, bytes, weights of the unit) per tap unit;
// then the store (the last block may be partial: m channels in all). K and UNITS are compile-time constants for
// the common 3 x 3 RGB layer (loops unrolled), else 0 (read from the job).
#define CONV_ROW_KERNEL(j, BLOCKS, K, UNITS, W_T, UNIT_VALUES, STEP)                                                \
  do {                                                                                                              \
    const size_t k_ = (K) ? (size_t)(K) : (j)->k, units_ = (UNITS) ? (size_t)(UNITS) : (j)->units;                 \
    int32_t *dst_ = (j)->dst;                                                                                       \
    for (size_t q = 0; q < (j)->cols; q++, dst_ += (j)->m) {                                                        \
      __m256i acc[4];                                                                                               \
      for (int b = 0; b < (BLOCKS); b++) acc[b] = _mm256_setzero_si256();                                           \
      const __m256i sel_ = _mm256_load_si256((const __m256i *)(j)->ctrl[q]);                                        \
      for (size_t ky = 0; ky < k_; ky++) {                                                                          \
        const long y_ = (j)->y0 + (long)ky;                                                                         \
        if (y_ < 0 || y_ >= (long)(j)->h) continue;                                                                 \
        __m256i bytes;                                                                                              \
        CONV_ROW_BYTES(j, y_, q, sel_, bytes);                                                                      \
        const W_T *wr = (const W_T *)(j)->w + ky * units_ * (size_t)(BLOCKS) * (UNIT_VALUES);                      \
        for (size_t u = 0; u < units_; u++) {                                                                       \
          STEP;                                                                                                     \
          wr += (size_t)(BLOCKS) * (UNIT_VALUES);                                                                   \
        }                                                                                                           \
      }                                                                                                             \
      for (int b = 0; b < (BLOCKS); b++) {                                                                          \
        if (8 * (size_t)b + 8 <= (j)->m) {                                                                          \
          _mm256_storeu_si256((__m256i *)(dst_ + 8 * b), acc[b]);                                                   \
        } else {                                                                                                    \
          int32_t tmp_[8];                                                                                          \
          _mm256_storeu_si256((__m256i *)tmp_, acc[b]);                                                             \
          for (size_t r_ = 0; 8 * (size_t)b + r_ < (j)->m; r_++) dst_[8 * b + r_] = tmp_[r_];                       \
        }                                                                                                           \
      }                                                                                                             \
    }                                                                                                               \
  } while (0)

#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)

// AVX2: tap pair u (bytes 2u, 2u + 1, zero-extended into int16 pairs in every 32-bit lane) x 16 int16 weights per
// block, vpmaddwd + vpaddd.
static inline __attribute__((always_inline)) void conv_row_avx2(const conv_row_job *j, const int BLOCKS,
                                                                const int K, const int UNITS) {
  CONV_ROW_KERNEL(j, BLOCKS, K, UNITS, int16_t, 16, {
    const uint32_t lo = 2u * (uint32_t)u;
    const __m256i pair = _mm256_shuffle_epi8(bytes, _mm256_set1_epi32((int)(0x80000000u | (lo + 1) << 16 | 0x8000u | lo)));
    for (int b = 0; b < BLOCKS; b++)
      acc[b] = _mm256_add_epi32(acc[b], _mm256_madd_epi16(pair, _mm256_loadu_si256((const __m256i *)(wr + 16 * b))));
  });
}

#define CONV_AVX2(B, K, U) \
  static void conv_row_avx2_##B##_##K##_##U(const conv_row_job *j) { conv_row_avx2(j, B, K, U); }
CONV_AVX2(1, 0, 0) CONV_AVX2(2, 0, 0) CONV_AVX2(3, 0, 0) CONV_AVX2(4, 0, 0) CONV_AVX2(2, 3, 5) CONV_AVX2(4, 3, 5)
#undef CONV_AVX2

#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)

// AVX-512 VNNI (on 256-bit vectors): tap quad u (bytes 4u ... 4u + 3 in every 32-bit lane) x 32 int8 weights per
// block, vpdpbusd.
static inline __attribute__((always_inline)) void conv_row_vnni(const conv_row_job *j, const int BLOCKS,
                                                                const int K, const int UNITS) {
  CONV_ROW_KERNEL(j, BLOCKS, K, UNITS, int8_t, 32, {
    const uint32_t lo = 4u * (uint32_t)u;
    const __m256i quad = _mm256_shuffle_epi8(bytes, _mm256_set1_epi32((int)(lo | (lo + 1) << 8 | (lo + 2) << 16 | (lo + 3) << 24)));
    for (int b = 0; b < BLOCKS; b++)
      acc[b] = _mm256_dpbusd_epi32(acc[b], quad, _mm256_loadu_si256((const __m256i *)(wr + 32 * b)));
  });
}

#define CONV_VNNI(B, K, U) \
  static void conv_row_vnni_##B##_##K##_##U(const conv_row_job *j) { conv_row_vnni(j, B, K, U); }
CONV_VNNI(1, 0, 0) CONV_VNNI(2, 0, 0) CONV_VNNI(3, 0, 0) CONV_VNNI(4, 0, 0) CONV_VNNI(2, 3, 3) CONV_VNNI(4, 3, 3)
#undef CONV_VNNI

#pragma clang attribute pop

// The loops over column blocks, images and output rows; the row kernel does the rest.
static void conv_drive(conv_row_fn row, const void *w, size_t units, size_t m, size_t c, size_t k, size_t stride,
                       size_t pad, const uint8_t *x, size_t n, size_t h, size_t wd, int32_t *out) {
  const size_t ho = (h + 2 * pad - k) / stride + 1, wo = (wd + 2 * pad - k) / stride + 1;
  // Column plans for up to COLS output columns at a time, made once and used by every image and row.
  enum { COLS = 64 };
  uint8_t ctrl[COLS][32] __attribute__((aligned(32)));
  size_t start[COLS];
  conv_row_job job = {.h = h, .row_bytes = wd * c, .m = m, .k = k, .units = units, .w = w, .ctrl = ctrl,
                      .start = start};
  for (size_t ox0 = 0; ox0 < wo; ox0 += COLS) {
    job.cols = wo - ox0 < COLS ? wo - ox0 : COLS;
    for (size_t q = 0; q < job.cols; q++)
      // Kernel row of output column ox: bytes x0 * c ... x0 * c + k * c of an image row of wd * c bytes.
      start[q] = (size_t)wrapnet_window_plan(((long)((ox0 + q) * stride) - (long)pad) * (long)c, k * c, wd * c,
                                             ctrl[q]);
    for (size_t i = 0; i < n; i++) {
      job.image = x + i * h * wd * c;
      for (size_t oy = 0; oy < ho; oy++) {
        job.y0 = (long)(oy * stride) - (long)pad;
        job.dst = out + ((i * ho + oy) * wo + ox0) * m;
        row(&job);
      }
    }
  }
}

// Row kernels of one instruction set: fns[0 ... 3] for 1 ... 4 blocks (any kernel), fns[4] and fns[5] for 2 and 4
// blocks of a 3 x 3 RGB kernel (unrolled).
static void conv_run(const conv_row_fn fns[6], const void *w, size_t units, size_t m, size_t c, size_t k,
                     size_t stride, size_t pad, const uint8_t *x, size_t n, size_t h, size_t wd, int32_t *out) {
  if (m == 0 || n == 0) return;
  const size_t blocks = (m + 7) / 8 < 4 ? (m + 7) / 8 : 4;
  const int rgb3 = k == 3 && c == 3 && (blocks == 2 || blocks == 4);
  conv_drive(rgb3 ? fns[blocks == 2 ? 4 : 5] : fns[blocks - 1], w, units, m, c, k, stride, pad, x, n, h, wd, out);
}

void wrapnet_conv_s8u8_acc32_avx2(const int16_t *w, size_t m, size_t c, size_t k, size_t stride, size_t pad,
                                  const uint8_t *x, size_t n, size_t h, size_t wd, int32_t *out) {
  static const conv_row_fn fns[6] = {conv_row_avx2_1_0_0, conv_row_avx2_2_0_0, conv_row_avx2_3_0_0,
                                     conv_row_avx2_4_0_0, conv_row_avx2_2_3_5, conv_row_avx2_4_3_5};
  conv_run(fns, w, (k * c + 1) / 2, m, c, k, stride, pad, x, n, h, wd, out);
}

void wrapnet_conv_s8u8_acc32_vnni(const int8_t *w, size_t m, size_t c, size_t k, size_t stride, size_t pad,
                                  const uint8_t *x, size_t n, size_t h, size_t wd, int32_t *out) {
  static const conv_row_fn fns[6] = {conv_row_vnni_1_0_0, conv_row_vnni_2_0_0, conv_row_vnni_3_0_0,
                                     conv_row_vnni_4_0_0, conv_row_vnni_2_3_3, conv_row_vnni_4_3_3};
  conv_run(fns, w, (k * c + 3) / 4, m, c, k, stride, pad, x, n, h, wd, out);
}

#endif  // __x86_64__
