// The arc form of the code epilogue (wrapnet_code_epilogue.arcs) for the lookup kernel's 16-channel blocks: per
// block, the arc parameters gathered from their per-8-channel layout; per pair of rows, the next codes as
// base + #{j : (int8)(r8 - offset_j) < limit_j} by byte compares. Contracts: code_epilogue.h.
#include "code_epilogue.h"
#include "window_plan.h"

#if defined(__x86_64__)

#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)

// Arc parameters of one 16-channel block, both 128-bit lanes alike (a lane is one row): for shortcut code s
// < S and kind k (0 base, 2j - 1 offset_j, 2j limit_j), params[s * kinds + k] byte q = channel m0 + q's entry in
// the layout of wrapnet_code_epilogue.arcs; channels past m get 0.
void wrapnet_arc_params16(const wrapnet_code_epilogue *e, size_t m, size_t m0, int shortcut_codes,
                          __m256i *params) {
  const int kinds = 1 + 2 * e->levels;
  for (int s = 0; s < shortcut_codes; s++) {
    for (int k = 0; k < kinds; k++) {
      int8_t bytes[16];
      for (int q = 0; q < 16; q++) {
        const size_t ch = m0 + (size_t)q;
        bytes[q] = ch >= m ? 0 : e->arcs[((ch / 8 * (size_t)kinds + (size_t)k) * 2 + (size_t)(s >> 1)) * 16 +
                                         (size_t)(s & 1) * 8 + ch % 8];
      }
      params[s * kinds + k] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)bytes));
    }
  }
}

// The shortcut codes of one row's channels m0 ..< m0 + channels (<= 16) as 16 bytes (0 where none).
static inline __m128i shortcut_codes16(const wrapnet_code_epilogue *e, size_t row, size_t m0, size_t channels) {
  const uint64_t low = wrapnet_shortcut_codes8(e, row, m0, channels < 8 ? channels : 8);
  const uint64_t high = channels > 8 ? wrapnet_shortcut_codes8(e, row, m0 + 8, channels - 8) : 0;
  return _mm_set_epi64x((long long)high, (long long)low);
}

// A block's shortcut reads: output channel m0 + q (q < 16) takes shortcut channel m0 + q - pad_before where that
// exists, else code 0. With at least 16 shortcut channels, the 16 bytes at row + start (start in [0, channels -
// 16], so inside the row) hold every code the block needs, and `ctrl` (both lanes alike) moves them into place
// and zeroes the rest: one load and one shuffle per row instead of gathering bytes (the residual blocks that
// change the channel count pad the shortcut). Returns start, or -1 (fewer than 16 channels: gather them).
long wrapnet_arc_shortcut_plan16(const wrapnet_code_epilogue *e, size_t m, size_t m0, __m256i *ctrl) {
  if (e->shortcut_channels < 16) return -1;
  uint8_t bytes[32];
  const long start = wrapnet_window_plan((long)m0 - (long)e->pad_before, m - m0 < 16 ? m - m0 : 16,
                                         e->shortcut_channels, bytes);
  *ctrl = _mm256_loadu_si256((const __m256i *)bytes);
  return start;
}

// Next codes of `rows` (<= 8) rows of one 16-channel block from their byte sums r (the exact sums mod 2^8),
// two rows per vector: code = base + #{j : (int8)(r8 - offset_j) < limit_j} with r8 = r << (8 - bits) (see
// wrapnet_code_epilogue.arcs). Residual layers pick each lane's parameters by its shortcut code with blends.
static inline __attribute__((always_inline)) void arc_rows_impl(
    const __m128i *raw, int rows, const __m256i *params, int bits, const wrapnet_code_epilogue *e, size_t row0,
    size_t m0, size_t channels, long sc_start, const int levels, const int shortcut_codes) {
  const int kinds = 1 + 2 * levels;
  const __m128i up = _mm_cvtsi32_si128(8 - bits);
  const __m256i keep = _mm256_set1_epi8((char)(0xFF << (8 - bits)));
  for (int p = 0; p < rows; p += 2) {
    const int two = rows - p > 1;
    __m256i r8 = _mm256_set_m128i(two ? raw[p + 1] : _mm_setzero_si128(), raw[p]);
    if (bits < 8) r8 = _mm256_and_si256(_mm256_sll_epi16(r8, up), keep);
    __m256i is[4];
    if (shortcut_codes > 1) {
      __m256i codes;
      if (sc_start >= 0) {
        // One 16-byte load per row, then the block's shuffle (wrapnet_arc_shortcut_plan16).
        const uint8_t *sc = e->shortcut + sc_start;
        const __m128i low = _mm_loadu_si128((const __m128i *)(sc + e->shortcut_rows[row0 + p]));
        const __m128i high =
            two ? _mm_loadu_si128((const __m128i *)(sc + e->shortcut_rows[row0 + p + 1])) : _mm_setzero_si128();
        codes = _mm256_shuffle_epi8(_mm256_set_m128i(high, low), params[WRAPNET_ARC_SHORTCUT_SLOT]);
      } else {
        codes = _mm256_set_m128i(two ? shortcut_codes16(e, row0 + p + 1, m0, channels) : _mm_setzero_si128(),
                                 shortcut_codes16(e, row0 + p, m0, channels));
      }
      for (int s = 1; s < shortcut_codes; s++) is[s] = _mm256_cmpeq_epi8(codes, _mm256_set1_epi8((char)s));
    }
#define ARC_PARAM(k, out)                                                                                           \
  __m256i out = params[k];                                                                                         \
  for (int s = 1; s < shortcut_codes; s++) out = _mm256_blendv_epi8(out, params[s * kinds + (k)], is[s]);
    ARC_PARAM(0, code)
    for (int j = 1; j <= levels; j++) {
      ARC_PARAM(2 * j - 1, offset)
      ARC_PARAM(2 * j, limit)
      code = _mm256_sub_epi8(code, _mm256_cmpgt_epi8(limit, _mm256_sub_epi8(r8, offset)));
    }
#undef ARC_PARAM
    uint8_t *dst = e->codes + (row0 + (size_t)p) * e->ldo + m0;
    if (channels == 16) {
      _mm_storeu_si128((__m128i *)dst, _mm256_castsi256_si128(code));
      if (two) _mm_storeu_si128((__m128i *)(dst + e->ldo), _mm256_extracti128_si256(code, 1));
    } else {
      uint8_t out[32];
      _mm256_storeu_si256((__m256i *)out, code);
      __builtin_memcpy(dst, out, channels);
      if (two) __builtin_memcpy(dst + e->ldo, out + 16, channels);
    }
  }
}

#define ARC_ROWS(L, S)                                                                                            \
  static void arc_rows_##L##_##S(const __m128i *raw, int rows, const __m256i *params, int bits,                   \
                                 const wrapnet_code_epilogue *e, size_t row0, size_t m0, size_t channels,         \
                                 long sc_start) {                                                                 \
    arc_rows_impl(raw, rows, params, bits, e, row0, m0, channels, sc_start, L, S);                                \
  }
ARC_ROWS(1, 1) ARC_ROWS(1, 2) ARC_ROWS(1, 3) ARC_ROWS(1, 4)
ARC_ROWS(3, 1) ARC_ROWS(3, 2) ARC_ROWS(3, 3) ARC_ROWS(3, 4)
ARC_ROWS(7, 1) ARC_ROWS(7, 2) ARC_ROWS(7, 3) ARC_ROWS(7, 4)
#undef ARC_ROWS

// Any level count (1 ... 7) and shortcut codes (1 ... 4), read from the epilogue: loops not unrolled.
static void arc_rows_any(const __m128i *raw, int rows, const __m256i *params, int bits,
                         const wrapnet_code_epilogue *e, size_t row0, size_t m0, size_t channels, long sc_start) {
  arc_rows_impl(raw, rows, params, bits, e, row0, m0, channels, sc_start, e->levels,
                e->shortcut == NULL ? 1 : (int)e->shortcut_codes);
}

// The epilogue for the level count and shortcut codes: unrolled for the common 1-, 2- and 3-bit codes.
wrapnet_arc_rows_fn wrapnet_arc_rows_for(int levels, int shortcut_codes) {
  static const wrapnet_arc_rows_fn fns[3][4] = {
      {arc_rows_1_1, arc_rows_1_2, arc_rows_1_3, arc_rows_1_4},
      {arc_rows_3_1, arc_rows_3_2, arc_rows_3_3, arc_rows_3_4},
      {arc_rows_7_1, arc_rows_7_2, arc_rows_7_3, arc_rows_7_4}};
  const int l = levels == 1 ? 0 : levels == 3 ? 1 : levels == 7 ? 2 : -1;
  return l < 0 ? arc_rows_any : fns[l][shortcut_codes - 1];
}

#pragma clang attribute pop

#endif  // __x86_64__
