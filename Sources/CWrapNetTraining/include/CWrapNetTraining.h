// CWrapNetTraining: the trainer's element-wise and data-movement loops (activation-code gradient, overflow
// statistics, im2col/col2im, batch-norm passes, Adam, saturating sums), in portable C so that the compiler
// vectorizes them, and the allocator policy of a training process.
//
// Every function computes each output element with the same Float32 operations, in the same order, as the
// straightforward loop in its comment (no fused multiply-add: the file is compiled with FP_CONTRACT OFF), and every
// sum adds its terms in the stated order, so results are bit for bit those of the scalar loops. Pointers marked
// restrict must not overlap. Single-threaded; the caller splits the work into blocks.
#ifndef CWRAPNETTRAINING_H
#define CWRAPNETTRAINING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Straight-through gradient of a clipped quantizer: dx[i] = (lo <= x[i] <= hi) ? dy[i] * factor : 0, i < count.
void wrapnet_clipped_gradient(const float *restrict dy, const float *restrict x, float lo, float hi, float factor,
                              float *restrict dx, size_t count);

/// Overflow statistics of integer-valued sums z[0 ..< count]: returns how many lie outside [lo, hi] and stores in
/// *excess the sum of max(|z| − limit, 0) (integers, so the Float64 sum is exact in any order below 2^53).
int64_t wrapnet_overflow_statistics(const float *z, size_t count, float lo, float hi, float limit, double *excess);

/// im2col of one image: columns[((c·kh + u)·kw + v)·rowStride + i·wo + j] = x[c, i·s − p + u, j·s − p + v], 0 outside
/// the image. image [c, h, w] packed; ho, wo the output extents; every element of the [c·kh·kw, ho·wo] block is
/// written.
void wrapnet_im2col(const float *restrict image, size_t channels, size_t height, size_t width, size_t kh, size_t kw,
                    size_t stride, size_t padding, size_t ho, size_t wo, float *restrict columns, size_t rowStride);

/// The output positions q = first ..< first + count (q = i·wo + j, first + count ≤ ho·wo) of wrapnet_im2col, written
/// to columns[row·rowStride + q − first]: a slice of the im2col matrix, for blocks of columns that cut images.
void wrapnet_im2col_positions(const float *restrict image, size_t channels, size_t height, size_t width, size_t kh,
                              size_t kw, size_t stride, size_t padding, size_t ho, size_t wo, size_t first,
                              size_t count, float *restrict columns, size_t rowStride);

/// wrapnet_im2col into Float64 columns (the Float64 forward of wide layers); the values are the same, converted.
void wrapnet_im2col_f64(const float *restrict image, size_t channels, size_t height, size_t width, size_t kh,
                        size_t kw, size_t stride, size_t padding, size_t ho, size_t wo, double *restrict columns,
                        size_t rowStride);

/// The adjoint of wrapnet_im2col, accumulating: image[c, i·s − p + u, j·s − p + v] += columns[row, i·wo + j] for
/// every in-image position, rows in the order (c, u, v), then i, then j (each image element receives its terms in
/// that order).
void wrapnet_col2im(const float *restrict columns, size_t rowStride, size_t channels, size_t height, size_t width,
                    size_t kh, size_t kw, size_t stride, size_t padding, size_t ho, size_t wo, float *restrict image);

/// Float64 sums over `channels` neighbouring channels of an [n, C, spatial] tensor, starting at channel pointer x
/// (x[i·imageStride + k·spatial + p] is image i, channel k of the group, position p):
/// sums[k] = Σ_i Σ_p x (images, then positions, in order); with `means` non-null, squares[k] = Σ (x − means[k])²
/// in the same order (each difference and square in Float64) and sums is not written.
void wrapnet_channel_sums(const float *x, size_t n, size_t imageStride, size_t spatial, size_t channels,
                          const double *means, double *sums);

/// Batch-norm training output of one channel: xhat = (x − mean)·rstd, y = g·xhat + b (each product and sum
/// rounded to Float32), for n images of `spatial` values, image i at offset i·imageStride.
void wrapnet_batchnorm_normalize(const float *restrict x, size_t n, size_t imageStride, size_t spatial, float mean,
                                 float rstd, float g, float b, float *restrict xhat, float *restrict y);

/// Batch-norm backward sums of `channels` neighbouring channels (layout as wrapnet_channel_sums):
/// sumDy[k] = Σ dy, sumDyXhat[k] = Σ dy·xhat (Float64 products), images then positions in order.
void wrapnet_batchnorm_gradient_sums(const float *dy, const float *xhat, size_t n, size_t imageStride,
                                     size_t spatial, size_t channels, double *sumDy, double *sumDyXhat);

/// Batch-norm input gradient of one channel: dx = scale·(m·dy − sumDy − xhat·sumDyXhat) (Float32, in this order).
void wrapnet_batchnorm_input_gradient(const float *restrict dy, const float *restrict xhat, size_t n,
                                      size_t imageStride, size_t spatial, float scale, float m, float sumDy,
                                      float sumDyXhat, float *restrict dx);

/// One Adam/AdamW step on count elements, per element in this order (each operation rounded to Float32):
/// g = grad + l2·w;  w = w·shrink;  m = b1·m + oneMinusB1·g;  v = b2·v + (oneMinusB2·g)·g;
/// w = w − (stepSize·m) / (sqrt(v) / correction2Root + eps).
void wrapnet_adam_update(float *restrict w, const float *restrict grad, float *restrict m, float *restrict v,
                         size_t count, float l2, float shrink, float b1, float oneMinusB1, float b2, float oneMinusB2,
                         float correction2Root, float eps, float stepSize);

/// The trainer's weight quantizers on rows [rows, fanIn] (row-major), the same values as the engine's
/// BinaryQuantizer, TernaryQuantizer and SymmetricQuantizer (which are their reference): codes as exact Floats in
/// `codes` (same layout), one scale per row in `scales`. Each row's Float64 sums add its terms in index order;
/// four rows are summed side by side so that four independent chains hide the add latency.
/// Binary: code = w >= 0 ? 1 : −1 (NaN → −1), scale = (float)(Σ|w| / fanIn).
void wrapnet_quantize_binary(const float *w, size_t rows, size_t fanIn, float *codes, float *scales);
/// Ternary: Δ = (float)(t · Σ|w| / fanIn); code = w > Δ ? 1 : (w < −Δ ? −1 : 0); scale = (float)(Σ|w| over the
/// nonzero codes / their count), or Δ when none survives and Δ > 0, else 1.
void wrapnet_quantize_ternary(const float *w, size_t rows, size_t fanIn, float t, float *codes, float *scales);
/// Symmetric: scale = max|w| / qmax (1 for a row with no |w| > 0; NaNs are skipped by the max); code =
/// round(w / scale) half away from zero, clamped to [−qmax, qmax], NaN → 0.
void wrapnet_quantize_symmetric(const float *w, size_t rows, size_t fanIn, float qmax, float *codes, float *scales);

/// Keeps freed heap memory for reuse instead of returning it to the kernel (glibc: buffers up to 32 MiB come from
/// the heap, and the heap is not trimmed below 1 GiB). A training step allocates and frees the same large tensors
/// every batch; with glibc's defaults each is a fresh mmap whose pages fault in again (a fifth of a resnet20 step).
/// Returns 1 when the policy was set, 0 where the C library has no such setting (then nothing changes).
int wrapnet_keep_freed_memory(void);

/// Sequentially saturating b-bit sums of one block of `count` output positions:
///   acc[o, p] = sat(… sat(sat(s[o] + x[0, p]·w[o, 0]) + x[1, p]·w[o, 1]) … + x[fan−1, p]·w[o, fan−1]),
/// sat(v) = min(max(v, lo), hi), the terms added in the order k = 0 … fan−1 (the order of the hardware's adds);
/// the register of channel o starts at s[o] = preload[o] (in [lo, hi]), or at 0 when `preload` is NULL.
/// cols: row k of the input codes (exact small integers stored as Float) at cols + k·colStride, `count` positions
/// each; weights [outC, fan] integer codes; scratch: (outC + 1)·count Int32; writes
/// out[o·outStrideO + p·outStrideP] = acc[o, p]. Integer products and sums wrap like Swift's &* and &+.
/// Dispatches to AVX2 where the CPU has it; the results are the same on every path.
void wrapnet_saturating_sums(const float *cols, size_t colStride, size_t fan, size_t count, const int32_t *weights,
                             size_t outC, const int32_t *preload, int32_t lo, int32_t hi, int32_t *scratch, float *out,
                             size_t outStrideO, size_t outStrideP);

/// wrapnet_saturating_sums without the AVX2 path (for checking one path against the other).
void wrapnet_saturating_sums_portable(const float *cols, size_t colStride, size_t fan, size_t count,
                                      const int32_t *weights, size_t outC, const int32_t *preload, int32_t lo,
                                      int32_t hi, int32_t *scratch, float *out, size_t outStrideO, size_t outStrideP);

#ifdef __cplusplus
}
#endif

#endif  // CWRAPNETTRAINING_H
