// The lookup kernel: binary or ternary weights x uint8 activation codes in 8-bit lanes (AVX2), the engine's
// kernel for those layers. Layouts and contracts: include/CWrapNetKernels.h (wrapnet_gemm_binary_lut_acc8_avx2).
//
// Why: a binary weight pattern over 4 codes (4 signs = one 4-bit index) picks one of 16 partial sums, and
// `pshufb` does 32 such picks per instruction. So each activation group of 4 codes gets a 16-entry table of all
// its signed sums (built once per pixel, shared by every output channel and every kernel tap that reads it), and
// the weights become table indices: one shuffle + one byte add per 32 x 4 = 128 products. Byte sums wrap mod
// 2^8, exactly the b <= 8 bit accumulator, so no split and no widening: any code values work. Ternary weights
// (w in {-1, 0, +1}) use subset-sum tables and two indices, sum(w x) = S[pos] - S[neg].
//
// A 256-bit table vector holds groups 2j (low 128-bit lane) and 2j + 1 (high lane) of one row; the index vector
// holds 16 channels' patterns for those two groups, so a tile's sums need one lane fold at the end. The next
// codes are written by the code epilogue (code_epilogue.h).
#include "CWrapNetKernels.h"
#include "code_epilogue.h"

#if defined(__x86_64__)

#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)

// Tables are built in two steps, 16 codes (4 groups, two table pairs) per round. A group's table entry splits
// into its two code pairs' sums, T[pat] = P_lo[pat & 3] + P_hi[pat >> 2], with P_lo[k] = s(k, 0) x0 + s(k, 1) x1
// (P_hi alike on x2, x3; s(k, i) = +1 or -1 by bit i of k, or for subset tables 1 or 0). Step 1 computes the four
// groups' pair sums into one vector (2 shuffles, 2 sign/and, 1 add); step 2 picks each table entry as the sum of
// two of them (2 shuffles + 1 add per 32 table bytes): 12 vector ops per 16 codes against 24 for summing the
// four codes' signed copies directly.
//
// Step 1 layout, with the 16 codes in both 128-bit lanes: lane h, bytes 4q + k (q < 4) hold pair q's sums for
// k = 0 ... 3, pairs: q = 0, 1 the low and high pair of group h (codes 4h ... 4h + 3), q = 2, 3 those of group
// 2 + h (codes 8 + 4h ...). So lane h serves group h (table pair 0) and group 2 + h (table pair 1).
#define LUT_FIRST(h, q) ((q) < 2 ? 4 * (h) + 2 * (q) : 8 + 4 * (h) + 2 * ((q) - 2))
#define LUT_PICK4(h, q, i) LUT_FIRST(h, q) + (i), LUT_FIRST(h, q) + (i), LUT_FIRST(h, q) + (i), LUT_FIRST(h, q) + (i)
#define LUT_PICK(i)                                                                                                 \
  {LUT_PICK4(0, 0, i), LUT_PICK4(0, 1, i), LUT_PICK4(0, 2, i), LUT_PICK4(0, 3, i),                                  \
   LUT_PICK4(1, 0, i), LUT_PICK4(1, 1, i), LUT_PICK4(1, 2, i), LUT_PICK4(1, 3, i)}
// What bit i of k (= byte % 4) makes of the picked code: `on` where set, else `off`.
#define LUT_K(i, k, on, off) (((k) >> (i)) & 1 ? (on) : (off))
#define LUT_K4(i, on, off) LUT_K(i, 0, on, off), LUT_K(i, 1, on, off), LUT_K(i, 2, on, off), LUT_K(i, 3, on, off)
#define LUT_K32(i, on, off)                                                                                         \
  {LUT_K4(i, on, off), LUT_K4(i, on, off), LUT_K4(i, on, off), LUT_K4(i, on, off),                                  \
   LUT_K4(i, on, off), LUT_K4(i, on, off), LUT_K4(i, on, off), LUT_K4(i, on, off)}
// Step 2: table entry pat of table pair t takes pair sum 8t + (pat & 3) and 8t + 4 + (pat >> 2) of its lane.
#define LUT_ENTRY(pat, t, hi) ((hi) ? 8 * (t) + 4 + ((pat) >> 2) : 8 * (t) + ((pat) & 3))
#define LUT_ENTRIES16(t, hi)                                                                                        \
  LUT_ENTRY(0, t, hi), LUT_ENTRY(1, t, hi), LUT_ENTRY(2, t, hi), LUT_ENTRY(3, t, hi), LUT_ENTRY(4, t, hi),          \
  LUT_ENTRY(5, t, hi), LUT_ENTRY(6, t, hi), LUT_ENTRY(7, t, hi), LUT_ENTRY(8, t, hi), LUT_ENTRY(9, t, hi),          \
  LUT_ENTRY(10, t, hi), LUT_ENTRY(11, t, hi), LUT_ENTRY(12, t, hi), LUT_ENTRY(13, t, hi), LUT_ENTRY(14, t, hi),     \
  LUT_ENTRY(15, t, hi)
#define LUT_ENTRIES(t, hi) {LUT_ENTRIES16(t, hi), LUT_ENTRIES16(t, hi)}
// Constants, not built per call: the engine calls this once per image row (a few hundred codes).
static const int8_t lut_pick[2][32] __attribute__((aligned(32))) = {LUT_PICK(0), LUT_PICK(1)};
static const int8_t lut_signs[2][32] __attribute__((aligned(32))) = {LUT_K32(0, 1, -1), LUT_K32(1, 1, -1)};
// Subset tables keep code i where bit i is set: and-masks (0xFF or 0).
static const int8_t lut_keep[2][32] __attribute__((aligned(32))) = {LUT_K32(0, -1, 0), LUT_K32(1, -1, 0)};
static const int8_t lut_entries[2][2][32] __attribute__((aligned(32))) = {
    {LUT_ENTRIES(0, 0), LUT_ENTRIES(0, 1)}, {LUT_ENTRIES(1, 0), LUT_ENTRIES(1, 1)}};
#undef LUT_FIRST
#undef LUT_PICK4
#undef LUT_PICK
#undef LUT_K
#undef LUT_K4
#undef LUT_K32
#undef LUT_ENTRY
#undef LUT_ENTRIES16
#undef LUT_ENTRIES

// 16 codes -> step 1's pair sums (layout above).
static inline __attribute__((always_inline)) __m256i lut_pair_sums(__m128i sixteen, const int subset) {
  const __m256i x = _mm256_broadcastsi128_si256(sixteen);
  const __m256i a = _mm256_shuffle_epi8(x, _mm256_load_si256((const __m256i *)lut_pick[0]));
  const __m256i b = _mm256_shuffle_epi8(x, _mm256_load_si256((const __m256i *)lut_pick[1]));
  if (subset)
    return _mm256_add_epi8(_mm256_and_si256(a, _mm256_load_si256((const __m256i *)lut_keep[0])),
                           _mm256_and_si256(b, _mm256_load_si256((const __m256i *)lut_keep[1])));
  return _mm256_add_epi8(_mm256_sign_epi8(a, _mm256_load_si256((const __m256i *)lut_signs[0])),
                         _mm256_sign_epi8(b, _mm256_load_si256((const __m256i *)lut_signs[1])));
}

// Table pair t (0: groups 0 and 1, 1: groups 2 and 3) of the 16 codes from their pair sums.
static inline __attribute__((always_inline)) __m256i lut_table_pair(__m256i sums, const int t) {
  return _mm256_add_epi8(_mm256_shuffle_epi8(sums, _mm256_load_si256((const __m256i *)lut_entries[t][0])),
                         _mm256_shuffle_epi8(sums, _mm256_load_si256((const __m256i *)lut_entries[t][1])));
}

static inline __attribute__((always_inline)) void lut_tables(const uint8_t *codes, size_t count, uint8_t *out,
                                                             const int subset) {
  size_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m256i sums = lut_pair_sums(_mm_loadu_si128((const __m128i *)(codes + i)), subset);
    _mm256_storeu_si256((__m256i *)(out + 4 * i), lut_table_pair(sums, 0));
    _mm256_storeu_si256((__m256i *)(out + 4 * i + 32), lut_table_pair(sums, 1));
  }
  if (i < count) {
    // 1 ... 15 codes left: missing codes count as 0; only their ceil(left / 8) table pairs are written.
    uint8_t sixteen[16] = {0};
    __builtin_memcpy(sixteen, codes + i, count - i);
    const __m256i sums = lut_pair_sums(_mm_loadu_si128((const __m128i *)sixteen), subset);
    _mm256_storeu_si256((__m256i *)(out + 4 * i), lut_table_pair(sums, 0));
    if (count - i > 8) _mm256_storeu_si256((__m256i *)(out + 4 * i + 32), lut_table_pair(sums, 1));
  }
}

// Tables of `count` codes (ceil(count / 8) pairs; missing codes count as 0): pair j's 32 bytes at out + 32j,
// byte 16h + pat = sum_i s_i x[8j + 4h + i] over i < 4, s_i = +1 where bit i of pat is set, else -1 (signed
// tables) or 0 (`subset` tables, for ternary weights).
void wrapnet_lut_tables_avx2(const uint8_t *codes, size_t count, uint8_t *out, int subset) {
  if (subset)
    lut_tables(codes, count, out, 1);
  else
    lut_tables(codes, count, out, 0);
}

// Sums of one tile: P rows x CB blocks of 16 channels. out[p * CB + b] = 32 byte sums (low lane: even groups,
// high lane: odd groups) of row p, block b. Registers: CB (ternary 2 CB) index vectors, one table, P CB sums.
static inline __attribute__((always_inline)) void lut_tile(const uint8_t *w, size_t pairs,
                                                           const uint8_t *const *rows, const uint32_t *poff,
                                                           __m256i *out, const int P, const int CB,
                                                           const int ternary) {
  const size_t block = ternary ? 64 : 32;
  __m256i acc[8];
  for (int i = 0; i < P * CB; i++) acc[i] = _mm256_setzero_si256();
  for (size_t j = 0; j < pairs; j++) {
    __m256i pos[4], neg[4];
    for (int b = 0; b < CB; b++) {
      const uint8_t *at = w + ((size_t)b * pairs + j) * block;
      pos[b] = _mm256_loadu_si256((const __m256i *)at);
      if (ternary) neg[b] = _mm256_loadu_si256((const __m256i *)(at + 32));
    }
    const size_t at = poff[j];
    for (int p = 0; p < P; p++) {
      const __m256i t = _mm256_loadu_si256((const __m256i *)(rows[p] + at));
      for (int b = 0; b < CB; b++) {
        acc[p * CB + b] = _mm256_add_epi8(acc[p * CB + b], _mm256_shuffle_epi8(t, pos[b]));
        if (ternary) acc[p * CB + b] = _mm256_sub_epi8(acc[p * CB + b], _mm256_shuffle_epi8(t, neg[b]));
      }
    }
  }
  for (int i = 0; i < P * CB; i++) out[i] = acc[i];
}

// Exact sums (bytes mod 2^8) of `channels` <= 16 channels, wrapped to `bits` (low bits sign-extended), to c.
static inline void lut_store_sums(__m128i sums, int bits, int32_t *c, size_t channels) {
  const __m128i shift = _mm_cvtsi32_si128(32 - bits);
  const __m256i low = _mm256_sra_epi32(_mm256_sll_epi32(_mm256_cvtepu8_epi32(sums), shift), shift);
  const __m256i high = _mm256_sra_epi32(_mm256_sll_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(sums, 8)), shift), shift);
  if (channels == 16) {
    _mm256_storeu_si256((__m256i *)c, low);
    _mm256_storeu_si256((__m256i *)(c + 8), high);
    return;
  }
  int32_t tmp[16];
  _mm256_storeu_si256((__m256i *)tmp, low);
  _mm256_storeu_si256((__m256i *)(tmp + 8), high);
  for (size_t i = 0; i < channels; i++) c[i] = tmp[i];
}

// A tile's results (`rows` rows x CB blocks of sums): the wrapped sums to c (when given), then the next codes
// through the arc rows or, for tables without arcs, by look-ups.
static inline __attribute__((always_inline)) void lut_finish(
    const __m256i *sums, const int rows, const int CB, size_t n0, const size_t *first_channel,
    const size_t *channels, const long *sc_start, __m256i (*params)[WRAPNET_ARC_PARAM_SLOTS],
    wrapnet_arc_rows_fn arc_rows, int32_t *c, size_t ldc, int bits, const wrapnet_code_epilogue *epilogue) {
  for (int b = 0; b < CB; b++) {
    if (channels[b] == 0) continue;
    __m128i raw[8];
    for (int p = 0; p < rows; p++) {
      const __m256i v = sums[p * CB + b];
      const __m128i exact = _mm_add_epi8(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
      if (c) lut_store_sums(exact, bits, c + (n0 + (size_t)p) * ldc + first_channel[b], channels[b]);
      raw[p] = exact;
    }
    if (arc_rows) {
      arc_rows(raw, rows, params[b], bits, epilogue, n0, first_channel[b], channels[b], sc_start[b]);
    } else if (epilogue) {
      // Table look-ups on the sums wrapped to `bits` (low bits sign-extended), 8 channels at a time.
      const __m128i shift = _mm_cvtsi32_si128(32 - bits);
      for (int p = 0; p < rows; p++) {
        for (size_t h = 0; h < 2 && 8 * h < channels[b]; h++) {
          const size_t m0h = first_channel[b] + 8 * h;
          const __m256i r = _mm256_cvtepu8_epi32(h ? _mm_srli_si128(raw[p], 8) : raw[p]);
          wrapnet_table_codes8(_mm256_sra_epi32(_mm256_sll_epi32(r, shift), shift), bits, epilogue, n0 + (size_t)p,
                               m0h, channels[b] - 8 * h < 8 ? channels[b] - 8 * h : 8);
        }
      }
    }
  }
}

static inline __attribute__((always_inline)) void lut_gemm(
    const uint8_t *w, size_t m, size_t pairs, const uint8_t *t, const size_t *row_offsets,
    const uint32_t *pair_offsets, size_t n, int32_t *c, size_t ldc, int bits, const wrapnet_code_epilogue *epilogue,
    const int CB, const int ternary) {
  enum { ROWS = 8 };
  const int P = ROWS / CB;
  const size_t block = ternary ? 64 : 32;
  const int shortcut_codes = epilogue == NULL || epilogue->shortcut == NULL ? 1 : (int)epilogue->shortcut_codes;
  const wrapnet_arc_rows_fn arc_rows =
      epilogue != NULL && epilogue->arcs != NULL ? wrapnet_arc_rows_for(epilogue->levels, shortcut_codes) : NULL;
  for (size_t m0 = 0; m0 < m; m0 += 16 * (size_t)CB) {
    const uint8_t *panel = w + m0 / 16 * pairs * block;
    // Per block b: first channel, channel count (0 past m), arc parameters.
    size_t first_channel[4], channels[4];
    __m256i params[4][WRAPNET_ARC_PARAM_SLOTS];
    long sc_start[4] = {-1, -1, -1, -1};
    for (int b = 0; b < CB; b++) {
      first_channel[b] = m0 + 16 * (size_t)b;
      channels[b] = first_channel[b] >= m ? 0 : (m - first_channel[b] < 16 ? m - first_channel[b] : 16);
      if (arc_rows && channels[b]) {
        wrapnet_arc_params16(epilogue, m, first_channel[b], shortcut_codes, params[b]);
        if (shortcut_codes > 1)
          sc_start[b] =
              wrapnet_arc_shortcut_plan16(epilogue, m, first_channel[b], &params[b][WRAPNET_ARC_SHORTCUT_SLOT]);
      }
    }
    // Tiles of P rows, then single rows; the counts are constants in each branch so the tile stays in registers.
    for (size_t n0 = 0; n0 < n;) {
      const uint8_t *rows[ROWS];
      __m256i sums[ROWS];
      if (n - n0 >= (size_t)P) {
        for (int p = 0; p < P; p++) rows[p] = t + row_offsets[n0 + p];
        lut_tile(panel, pairs, rows, pair_offsets, sums, P, CB, ternary);
        lut_finish(sums, P, CB, n0, first_channel, channels, sc_start, params, arc_rows, c, ldc, bits, epilogue);
        n0 += (size_t)P;
      } else {
        rows[0] = t + row_offsets[n0];
        lut_tile(panel, pairs, rows, pair_offsets, sums, 1, CB, ternary);
        lut_finish(sums, 1, CB, n0, first_channel, channels, sc_start, params, arc_rows, c, ldc, bits, epilogue);
        n0 += 1;
      }
    }
  }
}

// Blocks of 16 channels per tile: 4 (binary) or 2 (ternary, which holds two index vectors per block) when the
// channel blocks divide evenly, else 1.
static inline __attribute__((always_inline)) void lut_dispatch(
    const uint8_t *w, size_t m, size_t pairs, const uint8_t *t, const size_t *row_offsets, const uint32_t *pair_offsets,
    size_t n, int32_t *c, size_t ldc, int bits, const wrapnet_code_epilogue *epilogue, const int ternary) {
  if (m == 0 || n == 0) return;
  const size_t blocks = (m + 15) / 16;
  if (!ternary && blocks % 4 == 0)
    lut_gemm(w, m, pairs, t, row_offsets, pair_offsets, n, c, ldc, bits, epilogue, 4, 0);
  else if (blocks % 2 == 0)
    lut_gemm(w, m, pairs, t, row_offsets, pair_offsets, n, c, ldc, bits, epilogue, 2, ternary);
  else
    lut_gemm(w, m, pairs, t, row_offsets, pair_offsets, n, c, ldc, bits, epilogue, 1, ternary);
}

void wrapnet_gemm_binary_lut_acc8_avx2(const uint8_t *w, size_t m, size_t pairs, const uint8_t *tables,
                                       const size_t *row_offsets, const uint32_t *pair_offsets, size_t n, int32_t *c,
                                       size_t ldc, int bits, const wrapnet_code_epilogue *epilogue) {
  lut_dispatch(w, m, pairs, tables, row_offsets, pair_offsets, n, c, ldc, bits, epilogue, 0);
}

void wrapnet_gemm_ternary_lut_acc8_avx2(const uint8_t *w, size_t m, size_t pairs, const uint8_t *tables,
                                        const size_t *row_offsets, const uint32_t *pair_offsets, size_t n, int32_t *c,
                                        size_t ldc, int bits, const wrapnet_code_epilogue *epilogue) {
  lut_dispatch(w, m, pairs, tables, row_offsets, pair_offsets, n, c, ldc, bits, epilogue, 1);
}

#pragma clang attribute pop

#endif  // __x86_64__
