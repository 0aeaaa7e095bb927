// The two binary/ternary-weight GEMMs with 8-bit lanes (AVX2), which share the fused epilogue: the nibble kernel
// (first half) and the lookup kernel the engine runs by default (second half, "Lookup kernel"). Layouts and
// contracts: include/CWrapNetKernels.h (wrapnet_gemm_binary_nibble_acc8_avx2, wrapnet_gemm_binary_lut_acc8_avx2).
//
// Why nibbles: with codes x <= M (M = 1, 3 or 7) two codes fit one byte, so one 256-bit add sums 64 products
// instead of 32. A binary weight w = +-1 becomes an XOR mask: x ^ 0 = x for w = +1 and x ^ M = M - x for w = -1,
// so sum(w x) = sum(x ^ mask) - M * (number of -1 weights), and the correction is a per-channel constant. Each
// nibble field holds at most M per step, so after 15 / M steps the fields are split into bytes (before they
// could carry into each other). Activations are broadcast (8 bytes = 16 codes of one row) and the weights hold
// 4 channels x 16 codes per vector, so the final sums need no horizontal tree: one sad_epu8 per vector gives
// the 4 channel sums.
#include "CWrapNetKernels.h"
#include "window_plan.h"

#if defined(__x86_64__)

#include <immintrin.h>

#pragma clang attribute push(__attribute__((target("avx2"))), apply_to = function)

// Sums of one tile: P activation rows x 8 channels (one weight panel). out[p] = 8 int32 sums of (x ^ mask)
// over the row, channel order 0..7, before the correction. Registers: 2 weight vectors, 1 broadcast, 2P
// accumulators (P <= 6 fits the 16 YMM registers).
//
// Ternary weights (w in {-1, 0, +1}) add a keep mask: (x & keep) ^ flip is x, 0 or max_code - x; a group's block
// is then 128 bytes, keep masks of both vectors first, then the flip masks.
static inline __attribute__((always_inline)) void nibble_tile(const uint8_t *w, size_t groups, size_t period,
                                                              const uint8_t *const *rows, const uint32_t *goff,
                                                              __m256i *out, const int P, const int ternary) {
  const __m256i low = _mm256_set1_epi8(0x0F);
  __m256i total[12], part[12];
  for (int i = 0; i < 2 * P; i++) total[i] = _mm256_setzero_si256();
  for (size_t g0 = 0; g0 < groups; g0 += period) {
    const size_t gend = groups - g0 < period ? groups : g0 + period;
    for (int i = 0; i < 2 * P; i++) part[i] = _mm256_setzero_si256();
    // Nibble fields: each step adds at most M to each, so `period` steps stay below 16 (no carry).
    for (size_t g = g0; g < gend; g++) {
      const size_t at = goff[g];
      if (ternary) {
        const uint8_t *block = w + g * 128;
        const __m256i k0 = _mm256_loadu_si256((const __m256i *)block);
        const __m256i k1 = _mm256_loadu_si256((const __m256i *)(block + 32));
        const __m256i f0 = _mm256_loadu_si256((const __m256i *)(block + 64));
        const __m256i f1 = _mm256_loadu_si256((const __m256i *)(block + 96));
        for (int p = 0; p < P; p++) {
          int64_t codes;
          __builtin_memcpy(&codes, rows[p] + at, 8);
          const __m256i b = _mm256_set1_epi64x(codes);
          part[2 * p] = _mm256_add_epi8(part[2 * p], _mm256_xor_si256(_mm256_and_si256(b, k0), f0));
          part[2 * p + 1] = _mm256_add_epi8(part[2 * p + 1], _mm256_xor_si256(_mm256_and_si256(b, k1), f1));
        }
      } else {
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(w + g * 64));
        const __m256i w1 = _mm256_loadu_si256((const __m256i *)(w + g * 64 + 32));
        for (int p = 0; p < P; p++) {
          int64_t codes;
          __builtin_memcpy(&codes, rows[p] + at, 8);
          const __m256i b = _mm256_set1_epi64x(codes);
          part[2 * p] = _mm256_add_epi8(part[2 * p], _mm256_xor_si256(b, w0));
          part[2 * p + 1] = _mm256_add_epi8(part[2 * p + 1], _mm256_xor_si256(b, w1));
        }
      }
    }
    // Split the fields: low + high nibble per byte (<= 30), summed into bytes that wrap mod 2^8.
    for (int i = 0; i < 2 * P; i++) {
      const __m256i s = _mm256_add_epi8(_mm256_and_si256(part[i], low),
                                        _mm256_and_si256(_mm256_srli_epi16(part[i], 4), low));
      total[i] = _mm256_add_epi8(total[i], s);
    }
  }
  // Vector v of a row holds channels 4v..4v+3, 8 bytes each: sad_epu8 leaves one channel sum per 64-bit lane
  // (congruent mod 2^8; < 2^11). Interleave the two vectors' sums as int32 and put the channels in order.
  const __m256i z = _mm256_setzero_si256();
  const __m256i order = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  for (int p = 0; p < P; p++) {
    const __m256i s = _mm256_or_si256(_mm256_sad_epu8(total[2 * p], z),
                                      _mm256_slli_epi64(_mm256_sad_epu8(total[2 * p + 1], z), 32));
    out[p] = _mm256_permutevar8x32_epi32(s, order);
  }
}

// The sums minus the correction, wrapped to `bits` (the low bits sign-extended).
static inline __m256i nibble_wrap(__m256i sums, __m256i correction, int bits) {
  const __m128i shift = _mm_cvtsi32_si128(32 - bits);
  return _mm256_sra_epi32(_mm256_sll_epi32(_mm256_sub_epi32(sums, correction), shift), shift);
}

// The shortcut codes of one row's channels m0 ..< m0 + channels (channels <= 8) as 8 bytes: output channel ch reads
// shortcut channel ch - pad_before when that exists, else code 0.
static inline uint64_t shortcut_codes8(const wrapnet_nibble_epilogue *e, size_t row, size_t m0, size_t channels) {
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

// Stores `channels` <= 8 of the wrapped sums v.
static inline void nibble_store(__m256i v, int32_t *c, size_t channels) {
  if (channels == 8) {
    _mm256_storeu_si256((__m256i *)c, v);
    return;
  }
  int32_t tmp[8];
  _mm256_storeu_si256((__m256i *)tmp, v);
  for (size_t i = 0; i < channels; i++) c[i] = tmp[i];
}

// One tile row's results: the sums minus the correction, wrapped to `bits` (low bits sign-extended), to c (when
// c is not NULL) and, with an epilogue, the next codes (see wrapnet_nibble_epilogue). The table indices are
// computed as one vector (channel base + shortcut code * 2^bits + wrapped sum), so the 8 byte look-ups that
// follow are independent loads.
static inline void nibble_finish(__m256i sums, __m256i correction, int bits, int32_t *c, size_t ldc,
                                 const wrapnet_nibble_epilogue *e, size_t row, size_t m0, size_t channels) {
  const __m256i v = nibble_wrap(sums, correction, bits);
  if (c) nibble_store(v, c + row * ldc + m0, channels);
  if (!e) return;
  // Entries per channel: S * 2^bits; channel ch's block starts at ch * S * 2^bits (+ 2^(bits-1) centres v).
  const int per_channel = (int)(e->shortcut_codes << bits);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256i index = _mm256_add_epi32(
      _mm256_mullo_epi32(_mm256_add_epi32(_mm256_set1_epi32((int)m0), lane), _mm256_set1_epi32(per_channel)),
      _mm256_add_epi32(v, _mm256_set1_epi32(1 << (bits - 1))));
  if (e->shortcut != NULL) {
    const __m256i code =
        _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)shortcut_codes8(e, row, m0, channels)));
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

// Rows buffered per panel for the arc epilogue: the tiles' raw sums wait here until 4 rows fill one vector.
enum { ARC_ROWS = 20, ARC_BUFFER = ARC_ROWS + 8 };

// One arc parameter (kind) for the 32 lanes: plain layers read it directly (lanes e = ch % 8 and ch % 8 + 8 hold
// the same channel), residual ones pick entry (s & 1) * 8 + ch per lane, from the half s >> 1.
static inline __m256i arc_param(const int8_t *kind, __m256i index, __m256i high, int residual, int two_halves) {
  const __m256i h0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)kind));
  if (!residual) return h0;
  const __m256i p0 = _mm256_shuffle_epi8(h0, index);
  if (!two_halves) return p0;
  const __m256i h1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(kind + 16)));
  return _mm256_blendv_epi8(p0, _mm256_shuffle_epi8(h1, index), high);
}

// The arc epilogue over `count` <= ARC_BUFFER buffered rows row0 ... (raw sums raw[i][0..7], channel order): the
// sums (when c is given) and the next codes, 4 rows per vector. Buffer rows past `count` may be overwritten.
static inline __attribute__((always_inline)) void arc_flush(int32_t (*raw)[8], size_t count, size_t row0,
                                                            __m256i correction, int bits, int32_t *c, size_t ldc,
                                                            const wrapnet_nibble_epilogue *e, size_t m0,
                                                            size_t channels, const int levels, const int residual,
                                                            const int two_halves) {
  if (c) {
    for (size_t i = 0; i < count; i++)
      nibble_store(nibble_wrap(_mm256_loadu_si256((const __m256i *)raw[i]), correction, bits),
                   c + (row0 + i) * ldc + m0, channels);
  }
  const int kinds = 1 + 2 * levels;
  const int8_t *arcs = e->arcs + (size_t)(m0 / 8) * kinds * 32;
  const __m128i up = _mm_cvtsi32_si128(8 - bits);
  const __m256i low_byte = _mm256_set1_epi16(0x00FF);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i lane_channel = _mm256_set1_epi64x(0x0706050403020100LL);
  for (size_t i = 0; i < count; i += 4) {
    const size_t rows = count - i < 4 ? count - i : 4;
    for (size_t j = rows; j < 4; j++) __builtin_memset(raw[i + j], 0, 32);
    // Raw sums (< 2^11) of rows A..D -> bytes r8 = (r << (8 - bits)) mod 2^8, laid out A, B | C, D (8 each).
    const __m256i ab = _mm256_packus_epi32(_mm256_loadu_si256((const __m256i *)raw[i]),
                                           _mm256_loadu_si256((const __m256i *)raw[i + 1]));
    const __m256i cd = _mm256_packus_epi32(_mm256_loadu_si256((const __m256i *)raw[i + 2]),
                                           _mm256_loadu_si256((const __m256i *)raw[i + 3]));
    const __m256i r8 = _mm256_permutevar8x32_epi32(
        _mm256_packus_epi16(_mm256_and_si256(_mm256_sll_epi16(ab, up), low_byte),
                            _mm256_and_si256(_mm256_sll_epi16(cd, up), low_byte)),
        order);
    __m256i index = lane_channel, high = _mm256_setzero_si256();
    if (residual) {
      // In registers, not through a stack array (four 8-byte stores read back as one vector would stall).
      const size_t r = row0 + i;
      const uint64_t s0 = shortcut_codes8(e, r, m0, channels);
      const uint64_t s1 = rows > 1 ? shortcut_codes8(e, r + 1, m0, channels) : 0;
      const uint64_t s2 = rows > 2 ? shortcut_codes8(e, r + 2, m0, channels) : 0;
      const uint64_t s3 = rows > 3 ? shortcut_codes8(e, r + 3, m0, channels) : 0;
      const __m256i codes = _mm256_setr_epi64x((long long)s0, (long long)s1, (long long)s2, (long long)s3);
      // (s & 1) * 8 + ch: codes are < 4, so the 16-bit shift keeps every byte's bits in that byte.
      index = _mm256_or_si256(lane_channel, _mm256_slli_epi16(_mm256_and_si256(codes, _mm256_set1_epi8(1)), 3));
      high = _mm256_cmpgt_epi8(codes, _mm256_set1_epi8(1));
    }
    __m256i code = arc_param(arcs, index, high, residual, two_halves);
    for (int j = 1; j <= levels; j++) {
      const __m256i offset = arc_param(arcs + (2 * j - 1) * 32, index, high, residual, two_halves);
      const __m256i limit = arc_param(arcs + 2 * j * 32, index, high, residual, two_halves);
      // In arc j: (int8)(r8 - offset) < limit; the compare's -1 adds one to the code.
      code = _mm256_sub_epi8(code, _mm256_cmpgt_epi8(limit, _mm256_sub_epi8(r8, offset)));
    }
    uint8_t *dst = e->codes + (row0 + i) * e->ldo + m0;
    if (channels == 8 && rows == 4) {
      // Straight from the register: a 32-byte stack store read back as 8-byte pieces stalls store forwarding.
      const __m128i ab8 = _mm256_castsi256_si128(code), cd8 = _mm256_extracti128_si256(code, 1);
      _mm_storel_epi64((__m128i *)dst, ab8);
      _mm_storeh_pd((double *)(dst + e->ldo), _mm_castsi128_pd(ab8));
      _mm_storel_epi64((__m128i *)(dst + 2 * e->ldo), cd8);
      _mm_storeh_pd((double *)(dst + 3 * e->ldo), _mm_castsi128_pd(cd8));
    } else {
      uint8_t out[32];
      _mm256_storeu_si256((__m256i *)out, code);
      for (size_t j = 0; j < rows; j++) __builtin_memcpy(dst + j * e->ldo, out + 8 * j, channels);
    }
  }
}

// arc_flush with the level count and the shortcut form as constants (the common 1-, 2- and 3-bit codes), so its
// loops unroll and its branches go.
static void nibble_arc_flush(int32_t (*raw)[8], size_t count, size_t row0, __m256i correction, int bits,
                             int32_t *c, size_t ldc, const wrapnet_nibble_epilogue *e, size_t m0, size_t channels) {
  const int form = e->shortcut == NULL ? 0 : (e->shortcut_codes > 2 ? 2 : 1);
#define ARC_CASE(L, F)                                                                                              \
  if (e->levels == L && form == F)                                                                                 \
    return arc_flush(raw, count, row0, correction, bits, c, ldc, e, m0, channels, L, F > 0, F > 1);
  ARC_CASE(1, 0) ARC_CASE(3, 0) ARC_CASE(7, 0)
  ARC_CASE(1, 1) ARC_CASE(3, 1) ARC_CASE(7, 1)
  ARC_CASE(1, 2) ARC_CASE(3, 2) ARC_CASE(7, 2)
#undef ARC_CASE
  arc_flush(raw, count, row0, correction, bits, c, ldc, e, m0, channels, e->levels, form > 0, form > 1);
}

static inline __attribute__((always_inline)) void nibble_gemm(
    const uint8_t *w, size_t m, size_t groups, const int32_t *correction, int max_code, const uint8_t *x,
    const size_t *row_offsets, const uint32_t *group_offsets, size_t n, int32_t *c, size_t ldc, int bits,
    const wrapnet_nibble_epilogue *epilogue, const int ternary) {
  enum { P = 5 };
  if (m == 0 || n == 0) return;
  const size_t period = (size_t)(15 / max_code);
  const int arcs = epilogue != NULL && epilogue->arcs != NULL;
  // Rows per L1-resident block: every weight panel streams over these rows (an implicit convolution's rows
  // overlap, so they take less).
  size_t nb = (size_t)16384 / (groups * 8 ? groups * 8 : 1);
  nb = nb < P ? P : nb / P * P;
  for (size_t nbeg = 0; nbeg < n; nbeg += nb) {
    const size_t nend = n - nbeg < nb ? n : nbeg + nb;
    for (size_t m0 = 0; m0 < m; m0 += 8) {
      const uint8_t *panel = w + m0 / 8 * groups * (ternary ? 128 : 64);
      const size_t channels = m - m0 < 8 ? m - m0 : 8;
      const __m256i corr = _mm256_loadu_si256((const __m256i *)(correction + m0));
      size_t n0 = nbeg;
      if (arcs) {
        // Tiles append raw sums to the buffer; every ARC_ROWS rows (and at the block's end) the arc epilogue
        // turns them into codes, 4 rows per vector.
        int32_t raw[ARC_BUFFER][8];
        size_t count = 0, first = n0;
        while (n0 < nend) {
          const int tile = nend - n0 >= P ? P : 1;
          const uint8_t *rows[P];
          __m256i sums[P];
          // Stores with constant counts: a loop to `tile` became a memcpy call (and a vzeroupper) per tile.
          if (tile == P) {
            for (int p = 0; p < P; p++) rows[p] = x + row_offsets[n0 + p];
            nibble_tile(panel, groups, period, rows, group_offsets, sums, P, ternary);
            for (int p = 0; p < P; p++) _mm256_storeu_si256((__m256i *)raw[count + p], sums[p]);
          } else {
            rows[0] = x + row_offsets[n0];
            nibble_tile(panel, groups, period, rows, group_offsets, sums, 1, ternary);
            _mm256_storeu_si256((__m256i *)raw[count], sums[0]);
          }
          count += tile;
          n0 += tile;
          if (count >= ARC_ROWS) {
            nibble_arc_flush(raw, count, first, corr, bits, c, ldc, epilogue, m0, channels);
            first += count;
            count = 0;
          }
        }
        if (count) nibble_arc_flush(raw, count, first, corr, bits, c, ldc, epilogue, m0, channels);
        continue;
      }
      for (; n0 + P <= nend; n0 += P) {
        const uint8_t *rows[P];
        for (int p = 0; p < P; p++) rows[p] = x + row_offsets[n0 + p];
        __m256i sums[P];
        nibble_tile(panel, groups, period, rows, group_offsets, sums, P, ternary);
        for (int p = 0; p < P; p++) nibble_finish(sums[p], corr, bits, c, ldc, epilogue, n0 + p, m0, channels);
      }
      for (; n0 < nend; n0++) {
        const uint8_t *rows[1] = {x + row_offsets[n0]};
        __m256i sums[1];
        nibble_tile(panel, groups, period, rows, group_offsets, sums, 1, ternary);
        nibble_finish(sums[0], corr, bits, c, ldc, epilogue, n0, m0, channels);
      }
    }
  }
}

void wrapnet_gemm_binary_nibble_acc8_avx2(const uint8_t *w, size_t m, size_t groups, const int32_t *correction,
                                          int max_code, const uint8_t *x, const size_t *row_offsets,
                                          const uint32_t *group_offsets, size_t n, int32_t *c, size_t ldc, int bits,
                                          const wrapnet_nibble_epilogue *epilogue) {
  nibble_gemm(w, m, groups, correction, max_code, x, row_offsets, group_offsets, n, c, ldc, bits, epilogue, 0);
}

void wrapnet_gemm_ternary_nibble_acc8_avx2(const uint8_t *w, size_t m, size_t groups, const int32_t *correction,
                                           int max_code, const uint8_t *x, const size_t *row_offsets,
                                           const uint32_t *group_offsets, size_t n, int32_t *c, size_t ldc, int bits,
                                           const wrapnet_nibble_epilogue *epilogue) {
  nibble_gemm(w, m, groups, correction, max_code, x, row_offsets, group_offsets, n, c, ldc, bits, epilogue, 1);
}

void wrapnet_pack_nibbles_avx2(const uint8_t *src, size_t count, uint8_t *dst) {
  // 64 codes -> 32 bytes: as int16 lanes v = x0 | x1 << 8, v | v >> 4 has x0 | x1 << 4 in its low byte (codes
  // <= 15); packus keeps the low bytes (< 256, no saturation) per 128-bit lane, permute4x64 restores the order.
  const __m256i keep = _mm256_set1_epi16(0x00FF);
  size_t i = 0;
  for (; i + 64 <= count; i += 64) {
    const __m256i a = _mm256_loadu_si256((const __m256i *)(src + i));
    const __m256i b = _mm256_loadu_si256((const __m256i *)(src + i + 32));
    const __m256i pa = _mm256_and_si256(_mm256_or_si256(a, _mm256_srli_epi16(a, 4)), keep);
    const __m256i pb = _mm256_and_si256(_mm256_or_si256(b, _mm256_srli_epi16(b, 4)), keep);
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi16(pa, pb), 0xD8);
    _mm256_storeu_si256((__m256i *)(dst + i / 2), packed);
  }
  for (; i + 1 < count; i += 2) dst[i / 2] = (uint8_t)(src[i] | src[i + 1] << 4);
  if (i < count) dst[i / 2] = src[i];
}

// ---- Lookup kernel ------------------------------------------------------------------------------------------
//
// Why: a binary weight pattern over 4 codes (4 signs = one 4-bit index) picks one of 16 partial sums, and
// `pshufb` does 32 such picks per instruction. So each activation group of 4 codes gets a 16-entry table of all
// its signed sums (built once per pixel, shared by every output channel and every kernel tap that reads it), and
// the weights become table indices: one shuffle + one byte add per 32 x 4 = 128 products, against xor + add per
// 64 and a nibble split for the nibble kernel. Byte sums wrap mod 2^8, exactly the b <= 8 bit accumulator, so no
// split and no widening: any code values work. Ternary weights (w in {-1, 0, +1}) use subset-sum tables and two
// indices, sum(w x) = S[pos] - S[neg].
//
// A 256-bit table vector holds groups 2j (low 128-bit lane) and 2j + 1 (high lane) of one row; the index vector
// holds 16 channels' patterns for those two groups, so a tile's sums need one lane fold at the end.

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

// Per block: the arc parameters (up to 4 shortcut codes x 15 kinds), then the shortcut shuffle.
enum { LUT_SHORTCUT_SLOT = 4 * 15, LUT_PARAM_SLOTS = LUT_SHORTCUT_SLOT + 1 };

// Arc parameters of one 16-channel block, both 128-bit lanes alike (a lane is one row): for shortcut code s
// < S and kind k (0 base, 2j - 1 offset_j, 2j limit_j), params[s * kinds + k] byte q = channel m0 + q's entry in
// the nibble layout (wrapnet_nibble_epilogue.arcs); channels past m get 0.
static void lut_arc_params(const wrapnet_nibble_epilogue *e, size_t m, size_t m0, int shortcut_codes,
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
static inline __m128i shortcut_codes16(const wrapnet_nibble_epilogue *e, size_t row, size_t m0, size_t channels) {
  const uint64_t low = shortcut_codes8(e, row, m0, channels < 8 ? channels : 8);
  const uint64_t high = channels > 8 ? shortcut_codes8(e, row, m0 + 8, channels - 8) : 0;
  return _mm_set_epi64x((long long)high, (long long)low);
}

// A block's shortcut reads: output channel m0 + q (q < 16) takes shortcut channel m0 + q - pad_before where that
// exists, else code 0. With at least 16 shortcut channels, the 16 bytes at row + start (start in [0, channels -
// 16], so inside the row) hold every code the block needs, and `ctrl` (both lanes alike) moves them into place
// and zeroes the rest: one load and one shuffle per row instead of gathering bytes (the residual blocks that
// change the channel count pad the shortcut). Returns start, or -1 (fewer than 16 channels: gather them).
static long lut_shortcut_plan(const wrapnet_nibble_epilogue *e, size_t m, size_t m0, __m256i *ctrl) {
  if (e->shortcut_channels < 16) return -1;
  uint8_t bytes[32];
  const long start = wrapnet_window_plan((long)m0 - (long)e->pad_before, m - m0 < 16 ? m - m0 : 16,
                                         e->shortcut_channels, bytes);
  *ctrl = _mm256_loadu_si256((const __m256i *)bytes);
  return start;
}

// Next codes of `rows` (<= 8) rows of one 16-channel block from their raw byte sums r (sum + correction, mod 2^8),
// two rows per vector: code = base + #{j : (int8)(r8 - offset_j) < limit_j} with r8 = r << (8 - bits) (see
// wrapnet_nibble_epilogue.arcs). Residual layers pick each lane's parameters by its shortcut code with blends.
static inline __attribute__((always_inline)) void lut_arc_rows_impl(
    const __m128i *raw, int rows, const __m256i *params, int bits, const wrapnet_nibble_epilogue *e, size_t row0,
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
        // One 16-byte load per row, then the block's shuffle (lut_shortcut_plan).
        const uint8_t *sc = e->shortcut + sc_start;
        const __m128i low = _mm_loadu_si128((const __m128i *)(sc + e->shortcut_rows[row0 + p]));
        const __m128i high =
            two ? _mm_loadu_si128((const __m128i *)(sc + e->shortcut_rows[row0 + p + 1])) : _mm_setzero_si128();
        codes = _mm256_shuffle_epi8(_mm256_set_m128i(high, low), params[LUT_SHORTCUT_SLOT]);
      } else {
        codes = _mm256_set_m128i(two ? shortcut_codes16(e, row0 + p + 1, m0, channels) : _mm_setzero_si128(),
                                 shortcut_codes16(e, row0 + p, m0, channels));
      }
      for (int s = 1; s < shortcut_codes; s++) is[s] = _mm256_cmpeq_epi8(codes, _mm256_set1_epi8((char)s));
    }
#define LUT_PARAM(k, out)                                                                                           \
  __m256i out = params[k];                                                                                         \
  for (int s = 1; s < shortcut_codes; s++) out = _mm256_blendv_epi8(out, params[s * kinds + (k)], is[s]);
    LUT_PARAM(0, code)
    for (int j = 1; j <= levels; j++) {
      LUT_PARAM(2 * j - 1, offset)
      LUT_PARAM(2 * j, limit)
      code = _mm256_sub_epi8(code, _mm256_cmpgt_epi8(limit, _mm256_sub_epi8(r8, offset)));
    }
#undef LUT_PARAM
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

typedef void (*lut_arc_rows_fn)(const __m128i *, int, const __m256i *, int, const wrapnet_nibble_epilogue *, size_t,
                                size_t, size_t, long);
#define LUT_ARC_ROWS(L, S)                                                                                          \
  static void lut_arc_rows_##L##_##S(const __m128i *raw, int rows, const __m256i *params, int bits,               \
                                     const wrapnet_nibble_epilogue *e, size_t row0, size_t m0, size_t channels,   \
                                     long sc_start) {                                                             \
    lut_arc_rows_impl(raw, rows, params, bits, e, row0, m0, channels, sc_start, L, S);                             \
  }
LUT_ARC_ROWS(1, 1) LUT_ARC_ROWS(1, 2) LUT_ARC_ROWS(1, 3) LUT_ARC_ROWS(1, 4)
LUT_ARC_ROWS(3, 1) LUT_ARC_ROWS(3, 2) LUT_ARC_ROWS(3, 3) LUT_ARC_ROWS(3, 4)
LUT_ARC_ROWS(7, 1) LUT_ARC_ROWS(7, 2) LUT_ARC_ROWS(7, 3) LUT_ARC_ROWS(7, 4)
#undef LUT_ARC_ROWS

// Any level count (1 ... 7) and shortcut codes (1 ... 4), read from the epilogue: loops not unrolled.
static void lut_arc_rows_any(const __m128i *raw, int rows, const __m256i *params, int bits,
                             const wrapnet_nibble_epilogue *e, size_t row0, size_t m0, size_t channels,
                             long sc_start) {
  lut_arc_rows_impl(raw, rows, params, bits, e, row0, m0, channels, sc_start, e->levels,
                    e->shortcut == NULL ? 1 : (int)e->shortcut_codes);
}

// The epilogue for the level count and shortcut codes: unrolled for the common 1-, 2- and 3-bit codes.
static lut_arc_rows_fn lut_arc_rows_for(int levels, int shortcut_codes) {
  static const lut_arc_rows_fn fns[3][4] = {
      {lut_arc_rows_1_1, lut_arc_rows_1_2, lut_arc_rows_1_3, lut_arc_rows_1_4},
      {lut_arc_rows_3_1, lut_arc_rows_3_2, lut_arc_rows_3_3, lut_arc_rows_3_4},
      {lut_arc_rows_7_1, lut_arc_rows_7_2, lut_arc_rows_7_3, lut_arc_rows_7_4}};
  const int l = levels == 1 ? 0 : levels == 3 ? 1 : levels == 7 ? 2 : -1;
  return l < 0 ? lut_arc_rows_any : fns[l][shortcut_codes - 1];
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
// through the arc epilogue or, for tables without arcs, the nibble epilogue's look-ups.
static inline __attribute__((always_inline)) void lut_finish(
    const __m256i *sums, const int rows, const int CB, size_t n0, const size_t *first_channel,
    const size_t *channels, const long *sc_start, const __m128i *corr8, __m256i (*params)[LUT_PARAM_SLOTS],
    lut_arc_rows_fn arc_rows,
    const int32_t *correction, int32_t *c, size_t ldc, int bits, const wrapnet_nibble_epilogue *epilogue) {
  for (int b = 0; b < CB; b++) {
    if (channels[b] == 0) continue;
    __m128i raw[8];
    for (int p = 0; p < rows; p++) {
      const __m256i v = sums[p * CB + b];
      const __m128i exact = _mm_add_epi8(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
      if (c) lut_store_sums(exact, bits, c + (n0 + (size_t)p) * ldc + first_channel[b], channels[b]);
      raw[p] = _mm_add_epi8(exact, corr8[b]);
    }
    if (arc_rows) {
      arc_rows(raw, rows, params[b], bits, epilogue, n0, first_channel[b], channels[b], sc_start[b]);
    } else if (epilogue) {
      // Table look-ups, through the nibble epilogue on int32 raw sums (8 channels at a time).
      for (int p = 0; p < rows; p++) {
        for (size_t h = 0; h < 2 && 8 * h < channels[b]; h++) {
          const size_t m0h = first_channel[b] + 8 * h;
          const __m256i r = _mm256_cvtepu8_epi32(h ? _mm_srli_si128(raw[p], 8) : raw[p]);
          const __m256i corr = _mm256_loadu_si256((const __m256i *)(correction + m0h));
          nibble_finish(r, corr, bits, NULL, 0, epilogue, n0 + (size_t)p, m0h,
                        channels[b] - 8 * h < 8 ? channels[b] - 8 * h : 8);
        }
      }
    }
  }
}

static inline __attribute__((always_inline)) void lut_gemm(
    const uint8_t *w, size_t m, size_t pairs, const int32_t *correction, const uint8_t *t,
    const size_t *row_offsets, const uint32_t *pair_offsets, size_t n, int32_t *c, size_t ldc, int bits,
    const wrapnet_nibble_epilogue *epilogue, const int CB, const int ternary) {
  enum { ROWS = 8 };
  const int P = ROWS / CB;
  const size_t block = ternary ? 64 : 32;
  const int shortcut_codes = epilogue == NULL || epilogue->shortcut == NULL ? 1 : (int)epilogue->shortcut_codes;
  const lut_arc_rows_fn arc_rows =
      epilogue != NULL && epilogue->arcs != NULL ? lut_arc_rows_for(epilogue->levels, shortcut_codes) : NULL;
  for (size_t m0 = 0; m0 < m; m0 += 16 * (size_t)CB) {
    const uint8_t *panel = w + m0 / 16 * pairs * block;
    // Per block b: first channel, channel count (0 past m), correction bytes, arc parameters.
    size_t first_channel[4], channels[4];
    __m128i corr8[4];
    __m256i params[4][LUT_PARAM_SLOTS];
    long sc_start[4] = {-1, -1, -1, -1};
    for (int b = 0; b < CB; b++) {
      first_channel[b] = m0 + 16 * (size_t)b;
      channels[b] = first_channel[b] >= m ? 0 : (m - first_channel[b] < 16 ? m - first_channel[b] : 16);
      uint8_t bytes[16];
      for (int i = 0; i < 16; i++) bytes[i] = (uint8_t)correction[first_channel[b] + (size_t)i];
      corr8[b] = _mm_loadu_si128((const __m128i *)bytes);
      if (arc_rows && channels[b]) {
        lut_arc_params(epilogue, m, first_channel[b], shortcut_codes, params[b]);
        if (shortcut_codes > 1)
          sc_start[b] = lut_shortcut_plan(epilogue, m, first_channel[b], &params[b][LUT_SHORTCUT_SLOT]);
      }
    }
    // Tiles of P rows, then single rows; the counts are constants in each branch so the tile stays in registers.
    for (size_t n0 = 0; n0 < n;) {
      const uint8_t *rows[ROWS];
      __m256i sums[ROWS];
      if (n - n0 >= (size_t)P) {
        for (int p = 0; p < P; p++) rows[p] = t + row_offsets[n0 + p];
        lut_tile(panel, pairs, rows, pair_offsets, sums, P, CB, ternary);
        lut_finish(sums, P, CB, n0, first_channel, channels, sc_start, corr8, params, arc_rows, correction, c, ldc, bits,
                   epilogue);
        n0 += (size_t)P;
      } else {
        rows[0] = t + row_offsets[n0];
        lut_tile(panel, pairs, rows, pair_offsets, sums, 1, CB, ternary);
        lut_finish(sums, 1, CB, n0, first_channel, channels, sc_start, corr8, params, arc_rows, correction, c, ldc, bits,
                   epilogue);
        n0 += 1;
      }
    }
  }
}

// Blocks of 16 channels per tile: 4 (binary) or 2 (ternary, which holds two index vectors per block) when the
// channel blocks divide evenly, else 1.
static inline __attribute__((always_inline)) void lut_dispatch(
    const uint8_t *w, size_t m, size_t pairs, const int32_t *correction, const uint8_t *t, const size_t *row_offsets,
    const uint32_t *pair_offsets, size_t n, int32_t *c, size_t ldc, int bits, const wrapnet_nibble_epilogue *epilogue,
    const int ternary) {
  if (m == 0 || n == 0) return;
  const size_t blocks = (m + 15) / 16;
  if (!ternary && blocks % 4 == 0)
    lut_gemm(w, m, pairs, correction, t, row_offsets, pair_offsets, n, c, ldc, bits, epilogue, 4, 0);
  else if (blocks % 2 == 0)
    lut_gemm(w, m, pairs, correction, t, row_offsets, pair_offsets, n, c, ldc, bits, epilogue, 2, ternary);
  else
    lut_gemm(w, m, pairs, correction, t, row_offsets, pair_offsets, n, c, ldc, bits, epilogue, 1, ternary);
}

void wrapnet_gemm_binary_lut_acc8_avx2(const uint8_t *w, size_t m, size_t pairs, const int32_t *correction,
                                       const uint8_t *tables, const size_t *row_offsets,
                                       const uint32_t *pair_offsets, size_t n, int32_t *c, size_t ldc, int bits,
                                       const wrapnet_nibble_epilogue *epilogue) {
  lut_dispatch(w, m, pairs, correction, tables, row_offsets, pair_offsets, n, c, ldc, bits, epilogue, 0);
}

void wrapnet_gemm_ternary_lut_acc8_avx2(const uint8_t *w, size_t m, size_t pairs, const int32_t *correction,
                                        const uint8_t *tables, const size_t *row_offsets,
                                        const uint32_t *pair_offsets, size_t n, int32_t *c, size_t ldc, int bits,
                                        const wrapnet_nibble_epilogue *epilogue) {
  lut_dispatch(w, m, pairs, correction, tables, row_offsets, pair_offsets, n, c, ldc, bits, epilogue, 1);
}

#pragma clang attribute pop

#endif  // __x86_64__
