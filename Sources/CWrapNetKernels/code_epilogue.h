// Private to CWrapNetKernels: the code epilogue of the lookup kernel (wrapnet_code_epilogue in
// include/CWrapNetKernels.h), which turns wrapped sums into the next layer's activation codes inside the kernel.
// Table look-ups are inline here (they run per row); the arc form's per-block parameters and its row functions
// live in code_epilogue.c.
#ifndef WRAPNET_CODE_EPILOGUE_H
#define WRAPNET_CODE_EPILOGUE_H

#include "CWrapNetKernels.h"

#if defined(__x86_64__)

#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)

// The shortcut codes of one row's channels m0 ..< m0 + channels (channels <= 8) as 8 bytes: output channel ch reads
// shortcut channel ch - pad_before when that exists, else code 0.
static inline uint64_t wrapnet_shortcut_codes8(const wrapnet_code_epilogue *e, size_t row, size_t m0,
                                               size_t channels) {
  const uint8_t *sc = e->shortcut + e->shortcut_rows[row];
  uint64_t eight = 0;
  if (e->pad_before == 0 && m0 + 8 <= e->shortcut_channels) {
    // Every channel of the tile reaches the shortcut: its 8 codes are contiguous.
    __builtin_memcpy(&eight, sc + m0, 8);
    return eight;
  }
  for (size_t i = 0; i < channels; i++) {
    const size_t ch = m0 + i;
    if (ch >= e->pad_before && ch - e->pad_before < e->shortcut_channels)
      eight |= (uint64_t)sc[ch - e->pad_before] << (8 * i);
  }
  return eight;
}

// Next codes of one row's channels m0 ..< m0 + channels (<= 8) by table look-up from their wrapped sums v (int32,
// in [-2^(bits-1), 2^(bits-1))). The table indices are computed as one vector (channel base + shortcut code *
// 2^bits + v + 2^(bits-1)), so the 8 byte look-ups that follow are independent loads.
static inline void wrapnet_table_codes8(__m256i v, int bits, const wrapnet_code_epilogue *e, size_t row, size_t m0,
                                        size_t channels) {
  // Entries per channel: S * 2^bits; channel ch's block starts at ch * S * 2^bits (+ 2^(bits-1) centres v).
  const int per_channel = (int)(e->shortcut_codes << bits);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256i index = _mm256_add_epi32(
      _mm256_mullo_epi32(_mm256_add_epi32(_mm256_set1_epi32((int)m0), lane), _mm256_set1_epi32(per_channel)),
      _mm256_add_epi32(v, _mm256_set1_epi32(1 << (bits - 1))));
  if (e->shortcut != NULL) {
    const __m256i code =
        _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)wrapnet_shortcut_codes8(e, row, m0, channels)));
    index = _mm256_add_epi32(index, _mm256_sll_epi32(code, _mm_cvtsi32_si128(bits)));
  }
  int32_t at[8];
  _mm256_storeu_si256((__m256i *)at, index);
  const uint8_t *restrict table = e->table;
  uint8_t *restrict out = e->codes + row * e->ldo + m0;
  if (channels == 8) {
    for (int i = 0; i < 8; i++) out[i] = table[at[i]];
  } else {
    for (size_t i = 0; i < channels; i++) out[i] = table[at[i]];
  }
}

#pragma clang attribute pop

// Slots of one 16-channel block's arc parameters: up to 4 shortcut codes x 15 kinds, then the shortcut shuffle.
enum { WRAPNET_ARC_SHORTCUT_SLOT = 4 * 15, WRAPNET_ARC_PARAM_SLOTS = WRAPNET_ARC_SHORTCUT_SLOT + 1 };

// Arc parameters of the 16-channel block m0 ..< m0 + 16 (both 128-bit lanes alike, a lane is one row):
// params[s * kinds + k] for shortcut code s < shortcut_codes and kind k (0 base, 2j - 1 offset_j, 2j limit_j),
// byte q = channel m0 + q's entry (0 past m).
void wrapnet_arc_params16(const wrapnet_code_epilogue *e, size_t m, size_t m0, int shortcut_codes, __m256i *params);

// The block's shortcut reads as one load and one shuffle: returns the load's start in the row and fills `ctrl`,
// or returns -1 when the shortcut has fewer than 16 channels (the codes are gathered instead).
long wrapnet_arc_shortcut_plan16(const wrapnet_code_epilogue *e, size_t m, size_t m0, __m256i *ctrl);

// Next codes of `rows` (<= 8) rows of one 16-channel block from their byte sums r (mod 2^8), two rows per vector.
typedef void (*wrapnet_arc_rows_fn)(const __m128i *raw, int rows, const __m256i *params, int bits,
                                    const wrapnet_code_epilogue *e, size_t row0, size_t m0, size_t channels,
                                    long sc_start);

// The row function for `levels` and `shortcut_codes` (unrolled for 1, 3 and 7 levels).
wrapnet_arc_rows_fn wrapnet_arc_rows_for(int levels, int shortcut_codes);

#endif  // __x86_64__

#endif  // WRAPNET_CODE_EPILOGUE_H
