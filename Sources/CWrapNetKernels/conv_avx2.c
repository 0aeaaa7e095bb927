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
// more than the products.
#include "CWrapNetKernels.h"

#if defined(__x86_64__)

#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)

// Output column ox's kernel rows: the 16 bytes to load start at row + start (inside the row when the row has 16
// bytes or more), and ctrl (both 128-bit lanes alike) moves byte i < span of the kernel row, x0 * c + i, to byte
// i, or zeroes it where it lies outside the image (and bytes i >= span).
static void conv_column_plan(long x0, size_t c, size_t span, size_t row_bytes, size_t *start, uint8_t ctrl[32]) {
  const long first = x0 * (long)c;
  long s = 0;
  if (row_bytes >= 16) {
    s = first < 0 ? 0 : first;
    if (s + 16 > (long)row_bytes) s = (long)row_bytes - 16;
  }
  for (size_t i = 0; i < 16; i++) {
    const long pos = first + (long)i;
    ctrl[i] = ctrl[16 + i] = i < span && pos >= 0 && pos < (long)row_bytes ? (uint8_t)(pos - s) : 0x80;
  }
  *start = (size_t)s;
}

// BLOCKS blocks of 8 output channels; K and ROW_PAIRS are the kernel size and pairs per kernel row when they are
// compile-time constants (the common 3 x 3 RGB layer: loops unrolled), else 0 (read from k and c).
static inline __attribute__((always_inline)) void conv_all(const int16_t *wp, size_t m, size_t c, size_t k,
                                                           size_t stride, size_t pad, const uint8_t *x, size_t n,
                                                           size_t h, size_t w, int32_t *out, const int BLOCKS,
                                                           const size_t K, const size_t ROW_PAIRS) {
  if (K) k = K;
  const size_t ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1;
  const size_t span = k * c, row_bytes = w * c, row_pairs = ROW_PAIRS ? ROW_PAIRS : (span + 1) / 2;
  // Pair p of a kernel row as int16 pairs in every 32-bit lane: bytes 2p and 2p + 1, zero-extended.
  __m256i pair_sel[8];
  for (int p = 0; p < 8; p++) pair_sel[p] = _mm256_set1_epi32((int)(0x80000000u | (2u * p + 1) << 16 | 0x8000u | 2u * p));
  // Column plans for up to COLS output columns at a time, made once and used by every image and row.
  enum { COLS = 64 };
  uint8_t ctrl[COLS][32] __attribute__((aligned(32)));
  size_t start[COLS];
  for (size_t ox0 = 0; ox0 < wo; ox0 += COLS) {
    const size_t cols = wo - ox0 < COLS ? wo - ox0 : COLS;
    for (size_t q = 0; q < cols; q++)
      conv_column_plan((long)((ox0 + q) * stride) - (long)pad, c, span, row_bytes, &start[q], ctrl[q]);
    for (size_t i = 0; i < n; i++) {
      const uint8_t *image = x + i * h * row_bytes;
      for (size_t oy = 0; oy < ho; oy++) {
        const long y0 = (long)(oy * stride) - (long)pad;
        int32_t *dst = out + ((i * ho + oy) * wo + ox0) * m;
        for (size_t q = 0; q < cols; q++, dst += m) {
          __m256i acc[4];
          for (int b = 0; b < BLOCKS; b++) acc[b] = _mm256_setzero_si256();
          const __m256i sel = _mm256_load_si256((const __m256i *)ctrl[q]);
          for (size_t ky = 0; ky < k; ky++) {
            const long y = y0 + (long)ky;
            if (y < 0 || y >= (long)h) continue;  // a row of zeros adds nothing
            const uint8_t *row = image + (size_t)y * row_bytes;
            __m256i bytes;
            if (row_bytes >= 16) {
              bytes = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(row + start[q])));
            } else {
              uint8_t tmp[16] = {0};
              for (size_t t = 0; t < row_bytes; t++) tmp[t] = row[t];
              bytes = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)tmp));
            }
            bytes = _mm256_shuffle_epi8(bytes, sel);
            const int16_t *wr = wp + ky * row_pairs * (size_t)BLOCKS * 16;
            for (size_t p = 0; p < row_pairs; p++) {
              const __m256i pair = _mm256_shuffle_epi8(bytes, pair_sel[p]);
              for (int b = 0; b < BLOCKS; b++) {
                const __m256i wv = _mm256_loadu_si256((const __m256i *)(wr + (p * (size_t)BLOCKS + (size_t)b) * 16));
                acc[b] = _mm256_add_epi32(acc[b], _mm256_madd_epi16(pair, wv));
              }
            }
          }
          for (int b = 0; b < BLOCKS; b++) {
            if (8 * (size_t)b + 8 <= m) {
              _mm256_storeu_si256((__m256i *)(dst + 8 * b), acc[b]);
            } else {
              int32_t tmp[8];
              _mm256_storeu_si256((__m256i *)tmp, acc[b]);
              for (size_t r = 0; 8 * (size_t)b + r < m; r++) dst[8 * b + r] = tmp[r];
            }
          }
        }
      }
    }
  }
}

void wrapnet_conv_s8u8_acc32_avx2(const int16_t *w, size_t m, size_t c, size_t k, size_t stride, size_t pad,
                                  const uint8_t *x, size_t n, size_t h, size_t wd, int32_t *out) {
  if (m == 0 || n == 0) return;
  const int rgb3 = k == 3 && c == 3;  // 3 x 3 RGB: 3 rows of 5 pairs
  switch ((m + 7) / 8) {
    case 1: conv_all(w, m, c, k, stride, pad, x, n, h, wd, out, 1, 0, 0); break;
    case 2:
      if (rgb3)
        conv_all(w, m, c, k, stride, pad, x, n, h, wd, out, 2, 3, 5);
      else
        conv_all(w, m, c, k, stride, pad, x, n, h, wd, out, 2, 0, 0);
      break;
    case 3: conv_all(w, m, c, k, stride, pad, x, n, h, wd, out, 3, 0, 0); break;
    default:
      if (rgb3)
        conv_all(w, m, c, k, stride, pad, x, n, h, wd, out, 4, 3, 5);
      else
        conv_all(w, m, c, k, stride, pad, x, n, h, wd, out, 4, 0, 0);
      break;
  }
}

#pragma clang attribute pop

#endif  // __x86_64__
