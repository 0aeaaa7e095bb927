// CWrapNetKernels: AVX2 micro-kernels for integer GEMMs summed in b-bit wrap-around accumulators.
//
// Problem: C[n, m] = wrap_b( sum_k W[m, k] * X[n, k] ), wrap_b(z) = ((z + 2^(b-1)) mod 2^b) - 2^(b-1).
// Wrapping at every addition equals wrapping the exact sum once, so the kernels sum in any order and lane width
// L in {8, 16, 32} (L >= b) and reduce mod 2^b once at the end.
//
// Operand layouts (all kernels):
//   w   packed weights: ceil(m / 4) panels; panel p holds rows 4p..4p+3 (rows >= m are zero) as kp / 32 blocks,
//       block j = 4 rows x 32 bytes, row-major: byte (p * 4 * kp) + (j * 128) + (r * 32) + t = W[4p + r, 32j + t]
//       (zero for 32j + t >= k). kp is k rounded up to a multiple of 32.
//   x   activations, n rows of at least kp readable bytes, row stride ldx; bytes at columns >= k may hold anything
//       (the matching weights are zero).
//   c   Int32 output [n, m] row-major with row stride ldc >= m: c[i * ldc + r] = wrap_bits(sum_k W[r, k] X[i, k]),
//       sign-extended to 32 bits. 1 <= bits <= lane width of the kernel.
// All kernels are single-threaded and deterministic. They exist only on x86_64 and must be called only when
// wrapnet_cpu_has_avx2() returns 1.
#ifndef CWRAPNETKERNELS_H
#define CWRAPNETKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// 1 when the CPU (and OS) support AVX2, else 0. Always 0 on non-x86_64 builds.
int wrapnet_cpu_has_avx2(void);
/// 1 when the CPU (and OS) support AVX-512 F, BW, VL and VNNI (the *_vnni kernels), else 0. Always 0 on non-x86_64
/// builds.
int wrapnet_cpu_has_avx512vnni(void);

/// CPU time consumed by the calling thread, in seconds (CLOCK_THREAD_CPUTIME_ID), for benchmarks that must not
/// count time the thread spent waiting for a core. Negative where the platform has no such clock.
double wrapnet_thread_cpu_seconds(void);

/// The MAC primitives whose register-only ceiling `wrapnet_ceiling_loop_avx2` measures: the inner steps of the
/// AVX2 kernels.
enum {
  /// _mm256_sign_epi8 + _mm256_add_epi8: 32 MACs per pair, 8-bit lanes (|w| <= 1 kernels).
  WRAPNET_CEILING_SIGN_ADD8 = 0,
  /// _mm256_maddubs_epi16 + _mm256_add_epi16: 32 MACs per pair, 16-bit lanes.
  WRAPNET_CEILING_MADDUBS_ADD16 = 1,
  /// _mm256_madd_epi16 + _mm256_add_epi32: 16 MACs per pair (int16 operands), 32-bit lanes.
  WRAPNET_CEILING_MADD_ADD32 = 2,
  /// The lookup kernel's step: vpshufb (a 16-entry table of 4 codes' signed sums, indexed by 4 weight signs per
  /// byte) + vpaddb: 128 MACs per pair.
  WRAPNET_CEILING_SHUFFLE_ADD8 = 3,
};

/// Threshold codes (all CPUs): out[r * m + ch] = the number of l < levels with z[r * m + ch] >= t[ch * levels + l]
/// (or <= when descending[ch] is 1), for r < rows. Counted without branching on the comparisons, which depend on
/// the data; the engine uses it for up to 8 levels (more levels use a binary search).
void wrapnet_threshold_codes(const int32_t *z, size_t rows, size_t m, const int64_t *t, size_t levels,
                             const uint8_t *descending, uint8_t *out);

#if defined(__x86_64__)

/// |w| <= 1 (binary, ternary) x uint8, 8-bit lanes: _mm256_sign_epi8 then _mm256_add_epi8 (exact mod 2^8).
/// Valid for bits <= 8. 4x2 register block (4 weight rows x 2 activation rows).
void wrapnet_gemm_ternary_u8_acc8_4x2_avx2(const int8_t *w, size_t m, size_t kp, const uint8_t *x, size_t n,
                                           size_t ldx, int32_t *c, size_t ldc, int bits);

/// |w| <= 64 x uint8, 16-bit lanes: _mm256_maddubs_epi16 (pair sums <= 2*255*64 < 2^15, never saturate) then
/// _mm256_add_epi16 (exact mod 2^16). Valid for bits <= 16.
void wrapnet_gemm_s7_u8_acc16_4x2_avx2(const int8_t *w, size_t m, size_t kp, const uint8_t *x, size_t n,
                                       size_t ldx, int32_t *c, size_t ldc, int bits);

/// Any int8 x uint8, 32-bit lanes: both widened to int16, _mm256_madd_epi16, _mm256_add_epi32. Valid for
/// bits <= 32. The honest baseline, and also the fastest exact kernel for |w| > 64 with 8-bit activations
/// (maddubs would saturate; splitting x into two maddubs measured slower than widening).
void wrapnet_gemm_s8_u8_acc32_4x2_avx2(const int8_t *w, size_t m, size_t kp, const uint8_t *x, size_t n,
                                       size_t ldx, int32_t *c, size_t ldc, int bits);
/// wrapnet_gemm_s8_u8_acc32_4x2_avx2 through vpdpbusd (same integers); only where wrapnet_cpu_has_avx512vnni().
void wrapnet_gemm_s8_u8_acc32_4x2_vnni(const int8_t *w, size_t m, size_t kp, const uint8_t *x, size_t n,
                                       size_t ldx, int32_t *c, size_t ldc, int bits);

/// Optional epilogue of the lookup kernels: instead of Int32 sums they write the next layer's activation codes,
/// straight from the wrapped sums v (no sums array in between):
///   codes[row * ldo + ch] = table[(ch * shortcut_codes + s) * 2^bits + v + 2^(bits - 1)]
/// with s = 0 when `shortcut` is NULL (a plain [m, 2^bits] table, shortcut_codes = 1), else the saved block
/// input's code shortcut[shortcut_rows[row] + ch - pad_before] for pad_before <= ch < pad_before +
/// shortcut_channels and 0 for the other channels (a residual [m, S, 2^bits] table).
typedef struct {
  const uint8_t *table;
  size_t shortcut_codes;
  const uint8_t *shortcut;
  const size_t *shortcut_rows;
  size_t shortcut_channels;
  size_t pad_before;
  uint8_t *codes;
  size_t ldo;
  /// NULL, or the same table as arcs (then `table` is not read): for output levels j = 1...levels, the set of v
  /// with code >= j is one arc of the circle of 2^bits values, so code = base + #{j : v in arc j}, and the codes
  /// are computed with byte compares instead of look-ups. Per panel p = ch / 8, shortcut code s,
  /// e = (s & 1) * 8 + ch % 8 and half = s >> 1 (S <= 4 shortcut codes):
  ///   arcs[((p * (1 + 2 * levels) + kind) * 2 + half) * 16 + e]
  /// kind 0: base; kind 2j - 1: offset_j; kind 2j: limit_j. With r8 = (v << (8 - bits)) mod 2^8: v is in arc j
  /// when (int8)(r8 - offset_j) < limit_j (signed); an empty arc has limit -128. Entries of shortcut codes
  /// s >= S repeat s = 0 (so e = ch % 8 + 8 repeats the panel's 8 channels for plain layers). Built and checked
  /// against the table by CodeArcs (Swift).
  const int8_t *arcs;
  int levels;
} wrapnet_code_epilogue;

/// Lookup tables of activation codes for the lookup kernels (see lookup_avx2.c): pair j covers codes 8j ..< 8j + 8
/// (codes past `count` count as 0) and takes 32 bytes at out + 32j: byte 16h + pat = sum over i < 4 of
/// s_i * src[8j + 4h + i], where s_i is +1 if bit i of pat is set and otherwise -1 (`subset` = 0, for binary
/// weights) or 0 (`subset` = 1, for ternary weights), mod 2^8. Writes 32 * ceil(count / 8) bytes.
void wrapnet_lut_tables_avx2(const uint8_t *src, size_t count, uint8_t *out, int subset);
/// Binary weights x any uint8 activation codes via 16-entry lookup tables, 8-bit lanes:
/// c[i * ldc + r] = wrap_bits(sum_t W[r, t] X[i, t]) for 1 <= bits <= 8.
///   w           ceil(m / 16) blocks of `pairs` 32-byte index vectors (a pair = 8 codes t = 8j ..< 8j + 8): byte
///               (blk * pairs + j) * 32 + 16h + q holds channel r = 16 blk + q, group t = 8j + 4h ..< 8j + 4h + 4,
///               bit i set where W[r, 8j + 4h + i] = +1 (padding rows and columns: any value).
///   tables      signed tables (wrapnet_lut_tables_avx2, subset 0): pair j of row i at
///               tables + row_offsets[i] + pair_offsets[j] (32 bytes). An implicit convolution points them into a
///               zero-bordered NHWC tensor of tables (4 bytes per code; code 0 gives a zero table).
///   c           the sums as above, or NULL to skip them (then `epilogue` must be given).
///   epilogue    NULL, or also write the next codes as described at wrapnet_code_epilogue.
void wrapnet_gemm_binary_lut_acc8_avx2(const uint8_t *w, size_t m, size_t pairs, const uint8_t *tables,
                                       const size_t *row_offsets, const uint32_t *pair_offsets, size_t n, int32_t *c,
                                       size_t ldc, int bits, const wrapnet_code_epilogue *epilogue);
/// Ternary weights, as wrapnet_gemm_binary_lut_acc8_avx2 with subset tables (subset 1) and 64-byte index blocks:
/// (blk * pairs + j) * 64 + 16h + q has bit i set where W = +1, 32 bytes later where W = -1.
void wrapnet_gemm_ternary_lut_acc8_avx2(const uint8_t *w, size_t m, size_t pairs, const uint8_t *tables,
                                        const size_t *row_offsets, const uint32_t *pair_offsets, size_t n, int32_t *c,
                                        size_t ldc, int bits, const wrapnet_code_epilogue *epilogue);
/// Direct k x k convolution of uint8 pixels with int8 weights, exact int32 sums (a network's first layer):
///   out[((i * ho + oy) * wo + ox) * m + r] = sum over (ky, kx, ch) of W[r, (ky * k + kx) * c + ch] *
///                                            x[((i * h + y) * wd + xx) * c + ch],  y = oy * stride + ky - pad,
///                                            xx = ox * stride + kx - pad (pixels outside the image count as 0),
/// for n images [h, wd, c] (NHWC), ho = (h + 2 pad - k) / stride + 1 (wo alike). Needs k * c <= 16 (one kernel
/// row in 16 bytes), pad < k, and 1 <= m <= 32.
///   w   int16 weights by kernel row and tap pair: row ky's taps t = kx * c + ch (t < k * c) in pairs (2p, 2p + 1),
///       p < ceil(k * c / 2); for block b of 8 channels, 16 values at ((ky * ceil(k * c / 2) + p) * ceil(m / 8) + b)
///       * 16: W[8b + q, ky * k * c + 2p], W[8b + q, ky * k * c + 2p + 1] for q = 0 ... 7 (0 for taps past the
///       row's k * c and channels past m).
void wrapnet_conv_s8u8_acc32_avx2(const int16_t *w, size_t m, size_t c, size_t k, size_t stride, size_t pad,
                                  const uint8_t *x, size_t n, size_t h, size_t wd, int32_t *out);
/// wrapnet_conv_s8u8_acc32_avx2 through vpdpbusd, same sums; only where wrapnet_cpu_has_avx512vnni() returns 1.
///   w   int8 weights by kernel row and tap quad: row ky's taps t = kx * c + ch in quads (4u ... 4u + 3), u <
///       ceil(k * c / 4); for block b of 8 channels, 32 values at ((ky * ceil(k * c / 4) + u) * ceil(m / 8) + b) *
///       32: W[8b + q, ky * k * c + 4u + e] at 4q + e for q = 0 ... 7, e = 0 ... 3 (0 past the row's taps or m).
void wrapnet_conv_s8u8_acc32_vnni(const int8_t *w, size_t m, size_t c, size_t k, size_t stride, size_t pad,
                                  const uint8_t *x, size_t n, size_t h, size_t wd, int32_t *out);
/// Runs `iterations` of a register-only loop of `primitive` (a WRAPNET_CEILING_* value): 8 multiply-like and 8
/// add instructions per iteration on eight independent accumulators, no loads. MACs per iteration: 256 (128 for
/// WRAPNET_CEILING_MADD_ADD32, 1024 for WRAPNET_CEILING_SHUFFLE_ADD8, see there). Returns a value derived from
/// the accumulators (so the loop is not removed), or -1 for an unknown primitive.
int64_t wrapnet_ceiling_loop_avx2(int primitive, size_t iterations);

#endif  // __x86_64__

#ifdef __cplusplus
}
#endif

#endif  // CWRAPNETKERNELS_H
