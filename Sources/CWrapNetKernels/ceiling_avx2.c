// Register-only loops of the MAC primitives the AVX2 kernels are built from: no loads, no reductions, eight
// independent accumulators, so each loop runs at the issue rate of its two instructions. They measure the
// ceiling a real kernel on this core can approach (the kernels add loads, reductions and stores), for
// `wrapnet bench`. Layout and contract: include/CWrapNetKernels.h.
#include "CWrapNetKernels.h"

#if defined(__x86_64__)

#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)

// One loop iteration: 8 multiply-like + 8 add instructions on 256-bit vectors. The empty asm keeps the inputs
// opaque so the compiler cannot hoist or fold the products out of the loop.
#define WRAPNET_CEILING_LOOP(mul, add)                                                                   \
  __m256i c0 = _mm256_setzero_si256(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0; \
  for (size_t i = 0; i < iterations; i++) {                                                              \
    c0 = add(c0, mul(x0, w0));                                                                           \
    c1 = add(c1, mul(x0, w1));                                                                           \
    c2 = add(c2, mul(x0, w2));                                                                           \
    c3 = add(c3, mul(x0, w3));                                                                           \
    c4 = add(c4, mul(x1, w0));                                                                           \
    c5 = add(c5, mul(x1, w1));                                                                           \
    c6 = add(c6, mul(x1, w2));                                                                           \
    c7 = add(c7, mul(x1, w3));                                                                           \
    __asm__ volatile("" : "+x"(x0), "+x"(x1));                                                           \
  }                                                                                                      \
  sum = _mm256_xor_si256(_mm256_xor_si256(_mm256_xor_si256(c0, c1), _mm256_xor_si256(c2, c3)),          \
                         _mm256_xor_si256(_mm256_xor_si256(c4, c5), _mm256_xor_si256(c6, c7)));

int64_t wrapnet_ceiling_loop_avx2(int primitive, size_t iterations) {
  __m256i x0 = _mm256_set1_epi8(3), x1 = _mm256_set1_epi8(2);
  __m256i w0 = _mm256_set1_epi8(1), w1 = _mm256_set1_epi8(-1), w2 = _mm256_set1_epi8(0), w3 = _mm256_set1_epi8(-2);
  // Opaque to the compiler: with known weights it would fold sign(x, +1) into x and merge equal products.
  __asm__ volatile("" : "+x"(x0), "+x"(x1), "+x"(w0), "+x"(w1), "+x"(w2), "+x"(w3));
  __m256i sum;
  switch (primitive) {
    case WRAPNET_CEILING_SIGN_ADD8: { WRAPNET_CEILING_LOOP(_mm256_sign_epi8, _mm256_add_epi8) break; }
    case WRAPNET_CEILING_MADDUBS_ADD16: { WRAPNET_CEILING_LOOP(_mm256_maddubs_epi16, _mm256_add_epi16) break; }
    case WRAPNET_CEILING_MADD_ADD32: { WRAPNET_CEILING_LOOP(_mm256_madd_epi16, _mm256_add_epi32) break; }
    case WRAPNET_CEILING_SHUFFLE_ADD8: { WRAPNET_CEILING_LOOP(_mm256_shuffle_epi8, _mm256_add_epi8) break; }
    default: return -1;
  }
  return _mm256_extract_epi64(sum, 0) ^ _mm256_extract_epi64(sum, 3);
}

#pragma clang attribute pop

#endif  // __x86_64__
