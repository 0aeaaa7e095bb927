// Direct convolution for a network's first layer: uint8 pixels x int8 weights, exact int32 sums, AVX2. Layout and
// contract: include/CWrapNetKernels.h (wrapnet_conv_s8u8_acc32_avx2).
//
// Why: the first layer has few input channels (3 for RGB), so its im2col rows are short (27 codes) and a GEMM over
// them spends its time on the rows' copies and the tiles' edges rather than on products (in a resnet20 run the
// im2col and the GEMM took 15% of the time for 1% of the MACs). Here each output pixel gathers its window into
// registers and sums pairs of taps with vpmaddwd (int16 x int16 -> int32, exact: |w x| <= 128 * 255) against all
// output channels, 8 per vector.
#include "CWrapNetKernels.h"

#if defined(__x86_64__)

#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)

// Copies n <= 64 bytes without a library call (n is a run-time value: k * c or c), with overlapping 8- or 16-byte
// moves that never read or write outside [src, src + n) and [dst, dst + n).
static inline void conv_copy(uint8_t *dst, const uint8_t *src, size_t n) {
  if (n >= 16) {
    size_t t = 0;
    for (; t + 16 <= n; t += 16) _mm_storeu_si128((__m128i *)(dst + t), _mm_loadu_si128((const __m128i *)(src + t)));
    if (t < n)
      _mm_storeu_si128((__m128i *)(dst + n - 16), _mm_loadu_si128((const __m128i *)(src + n - 16)));
  } else if (n >= 8) {
    uint64_t a, b;
    __builtin_memcpy(&a, src, 8);
    __builtin_memcpy(&b, src + n - 8, 8);
    __builtin_memcpy(dst, &a, 8);
    __builtin_memcpy(dst + n - 8, &b, 8);
  } else if (n >= 4) {
    uint32_t a, b;
    __builtin_memcpy(&a, src, 4);
    __builtin_memcpy(&b, src + n - 4, 4);
    __builtin_memcpy(dst, &a, 4);
    __builtin_memcpy(dst + n - 4, &b, 4);
  } else {
    for (size_t t = 0; t < n; t++) dst[t] = src[t];
  }
}

// One output pixel's window (K <= 64 taps in (ky, kx, c) order, 0 outside the image) as bytes in `window`.
static inline __attribute__((always_inline)) void conv_window(const uint8_t *image, size_t h, size_t w, size_t c, size_t k, long y0, long x0,
                               uint8_t *window) {
  const size_t span = k * c;
  const int inside_x = x0 >= 0 && x0 + (long)k <= (long)w;
  for (size_t ky = 0; ky < k; ky++) {
    const long y = y0 + (long)ky;
    uint8_t *dst = window + ky * span;
    if (y < 0 || y >= (long)h) {
      for (size_t t = 0; t < span; t++) dst[t] = 0;
      continue;
    }
    const uint8_t *row = image + (size_t)y * w * c;
    if (inside_x) {
      // The kernel row's pixels are contiguous in NHWC.
      conv_copy(dst, row + (size_t)x0 * c, span);
      continue;
    }
    for (size_t kx = 0; kx < k; kx++) {
      const long x = x0 + (long)kx;
      if (x < 0 || x >= (long)w) {
        for (size_t t = 0; t < c; t++) dst[kx * c + t] = 0;
      } else {
        conv_copy(dst + kx * c, row + (size_t)x * c, c);
      }
    }
  }
}

// Sums of one pixel against BLOCKS blocks of 8 channels (pairs = ceil(K / 2) tap pairs). Each tap pair is read
// as two bytes and broadcast as one int32 (x0 | x1 << 16): a vector load of the window would span several of the
// gather's stores and stall store forwarding, and vpermd's latency kept the multiplies waiting.
static inline __attribute__((always_inline)) void conv_pixel(const int16_t *wp, size_t pairs, const uint8_t *window,
                                                             int32_t *out, size_t m, const int BLOCKS) {
  __m256i acc[4];
  for (int b = 0; b < BLOCKS; b++) acc[b] = _mm256_setzero_si256();
  for (size_t j = 0; j < pairs; j++) {
    const __m256i pair = _mm256_set1_epi32((int)((uint32_t)window[2 * j] | (uint32_t)window[2 * j + 1] << 16));
    for (int b = 0; b < BLOCKS; b++) {
      const __m256i wv = _mm256_loadu_si256((const __m256i *)(wp + (j * (size_t)BLOCKS + (size_t)b) * 16));
      acc[b] = _mm256_add_epi32(acc[b], _mm256_madd_epi16(pair, wv));
    }
  }
  for (int b = 0; b < BLOCKS; b++) {
    if (8 * (size_t)b + 8 <= m) {
      _mm256_storeu_si256((__m256i *)(out + 8 * b), acc[b]);
    } else {
      int32_t tmp[8];
      _mm256_storeu_si256((__m256i *)tmp, acc[b]);
      for (size_t q = 0; 8 * (size_t)b + q < m; q++) out[8 * b + q] = tmp[q];
    }
  }
}

static inline __attribute__((always_inline)) void conv_all(const int16_t *wp, size_t m, size_t c, size_t k,
                                                           size_t stride, size_t pad, const uint8_t *x, size_t n,
                                                           size_t h, size_t w, int32_t *out, const int BLOCKS) {
  const size_t ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1;
  const size_t taps = k * k * c, pairs = (taps + 1) / 2;
  // The last pair may read one byte past the K taps: its weight is 0, and it starts as 0 so its value is defined.
  uint8_t window[64 + 16];
  __builtin_memset(window, 0, sizeof window);
  for (size_t i = 0; i < n; i++) {
    const uint8_t *image = x + i * h * w * c;
    for (size_t oy = 0; oy < ho; oy++) {
      for (size_t ox = 0; ox < wo; ox++) {
        conv_window(image, h, w, c, k, (long)(oy * stride) - (long)pad, (long)(ox * stride) - (long)pad, window);
        conv_pixel(wp, pairs, window, out + ((i * ho + oy) * wo + ox) * m, m, BLOCKS);
      }
    }
  }
}

void wrapnet_conv_s8u8_acc32_avx2(const int16_t *w, size_t m, size_t c, size_t k, size_t stride, size_t pad,
                                  const uint8_t *x, size_t n, size_t h, size_t wd, int32_t *out) {
  if (m == 0 || n == 0) return;
  switch ((m + 7) / 8) {
    case 1: conv_all(w, m, c, k, stride, pad, x, n, h, wd, out, 1); break;
    case 2: conv_all(w, m, c, k, stride, pad, x, n, h, wd, out, 2); break;
    case 3: conv_all(w, m, c, k, stride, pad, x, n, h, wd, out, 3); break;
    default: conv_all(w, m, c, k, stride, pad, x, n, h, wd, out, 4); break;
  }
}

#pragma clang attribute pop

#endif  // __x86_64__
