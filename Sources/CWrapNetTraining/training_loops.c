// The trainer's element-wise loops; see CWrapNetTraining.h for the contract (same Float32 operations and order as
// the scalar loops, so the compiler may vectorize across elements but never reassociate a sum).
#include "CWrapNetTraining.h"

#pragma STDC FP_CONTRACT OFF

void wrapnet_clipped_gradient(const float *restrict dy, const float *restrict x, float lo, float hi, float factor,
                              float *restrict dx, size_t count) {
  for (size_t i = 0; i < count; i++) {
    float g = dy[i] * factor;
    dx[i] = (x[i] >= lo && x[i] <= hi) ? g : 0.0f;
  }
}

int64_t wrapnet_overflow_statistics(const float *z, size_t count, float lo, float hi, float limit, double *excess) {
  // The excesses are integers below 2^24 and every partial sum stays below 2^53, so the Float64 sum is exact.
  int64_t over = 0;
  double total = 0;
  for (size_t i = 0; i < count; i++) {
    float v = z[i];
    over += (v < lo || v > hi) ? 1 : 0;
    float e = __builtin_fabsf(v) - limit;
    total += e > 0 ? (double)e : 0.0;
  }
  *excess = total;
  return over;
}

// The output indices j in [0, count) with 0 <= j·stride + offset < size, as [*lo, *hi).
static void valid_range(ptrdiff_t offset, ptrdiff_t stride, ptrdiff_t size, ptrdiff_t count, ptrdiff_t *lo,
                        ptrdiff_t *hi) {
  ptrdiff_t l = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  ptrdiff_t last = size - 1 - offset;
  ptrdiff_t h = last < 0 ? 0 : last / stride + 1;
  if (h < 0) h = 0;
  *lo = l < count ? l : count;
  *hi = h < count ? h : count;
}

// One body for both column types: the copies (and Float → Float64 conversions) are exact, so the two agree.
// Writes the output positions q = first ..< first + count (q = i·wo + j) to column q − first; each output row i
// in that range is cut to its [j0, j1) and split into the zeros left of the image, the copied run, the zeros right.
#define WRAPNET_IM2COL_BODY(T)                                                                                       \
  const ptrdiff_t s = (ptrdiff_t)stride, p = (ptrdiff_t)padding, h = (ptrdiff_t)height, w = (ptrdiff_t)width;       \
  const ptrdiff_t nwo = (ptrdiff_t)wo, q0 = (ptrdiff_t)first, q1 = (ptrdiff_t)(first + count);                      \
  if (count == 0) return;                                                                                          \
  const ptrdiff_t iFirst = q0 / nwo, iLast = (q1 - 1) / nwo;                                                       \
  for (size_t c = 0; c < channels; c++) {                                                                          \
    for (size_t u = 0; u < kh; u++) {                                                                              \
      for (size_t v = 0; v < kw; v++) {                                                                            \
        T *row = columns + ((c * kh + u) * kw + v) * rowStride;                                                    \
        ptrdiff_t jLo, jHi;                                                                                        \
        valid_range((ptrdiff_t)v - p, s, w, nwo, &jLo, &jHi);                                                      \
        if (s == 1 && nwo == w && p < w && p < h) {                                                                \
          /* Same-size stride-1 output: position q reads plane element q + (u − p)·w + (v − p), so the in-image \
             rows are one contiguous copy; then the columns outside [jLo, jHi) are zeroed row by row. */            \
          const ptrdiff_t off = ((ptrdiff_t)u - p) * w + ((ptrdiff_t)v - p);                                       \
          const float *plane = image + (ptrdiff_t)c * h * w;                                                       \
          ptrdiff_t iLo = p - (ptrdiff_t)u, iHi = h + p - (ptrdiff_t)u;                                            \
          iLo = iLo < 0 ? 0 : iLo;                                                                                 \
          iHi = iHi > (ptrdiff_t)ho ? (ptrdiff_t)ho : iHi;                                                         \
          ptrdiff_t a = iLo * nwo, b = iHi * nwo;                                                                  \
          a = a < q0 ? q0 : a;                                                                                     \
          b = b > q1 ? q1 : b;                                                                                     \
          if (a >= b || jLo >= jHi) {                                                                              \
            for (ptrdiff_t q = q0; q < q1; q++) row[q - q0] = 0;                                                   \
            continue;                                                                                              \
          }                                                                                                        \
          for (ptrdiff_t q = q0; q < a; q++) row[q - q0] = 0;                                                      \
          /* The first and last in-image rows may start or end outside [jLo, jHi): those reads could leave the \
             plane, and the columns are zeroed below anyway. */                                                    \
          ptrdiff_t ca = a, cb = b;                                                                                \
          if (ca % nwo < jLo) ca += jLo - ca % nwo;                                                                \
          if ((cb - 1) % nwo >= jHi) cb -= (cb - 1) % nwo - jHi + 1;                                               \
          ca = ca > b ? b : ca;                                                                                    \
          cb = cb < ca ? ca : cb;                                                                                  \
          for (ptrdiff_t q = a; q < ca; q++) row[q - q0] = 0;                                                      \
          for (ptrdiff_t q = ca; q < cb; q++) row[q - q0] = (T)plane[q + off];                                     \
          for (ptrdiff_t q = cb; q < b; q++) row[q - q0] = 0;                                                      \
          for (ptrdiff_t i = a / nwo; i <= (b - 1) / nwo; i++) {                                                   \
            for (ptrdiff_t j = 0; j < jLo; j++)                                                                    \
              if (i * nwo + j >= a && i * nwo + j < b) row[i * nwo + j - q0] = 0;                                  \
            for (ptrdiff_t j = jHi; j < nwo; j++)                                                                  \
              if (i * nwo + j >= a && i * nwo + j < b) row[i * nwo + j - q0] = 0;                                  \
          }                                                                                                        \
          for (ptrdiff_t q = b; q < q1; q++) row[q - q0] = 0;                                                      \
          continue;                                                                                                \
        }                                                                                                          \
        for (ptrdiff_t i = iFirst; i <= iLast; i++) {                                                              \
          const ptrdiff_t j0 = i == iFirst ? q0 - i * nwo : 0, j1 = i == iLast ? q1 - i * nwo : nwo;               \
          const ptrdiff_t d = i * nwo - q0; /* row[d + j], j >= j0, is column i·wo + j − first */                 \
          ptrdiff_t iy = i * s - p + (ptrdiff_t)u;                                                                 \
          if (iy < 0 || iy >= h || jLo >= jHi) {                                                                   \
            for (ptrdiff_t j = j0; j < j1; j++) row[d + j] = 0;                                                     \
            continue;                                                                                              \
          }                                                                                                        \
          const ptrdiff_t a = jLo > j0 ? jLo : j0, b = jHi < j1 ? jHi : j1;                                        \
          const float *src = image + ((ptrdiff_t)c * h + iy) * w + ((ptrdiff_t)v - p);                             \
          for (ptrdiff_t j = j0; j < (a < j1 ? a : j1); j++) row[d + j] = 0;                                        \
          if (s == 1) {                                                                                            \
            for (ptrdiff_t j = a; j < b; j++) row[d + j] = (T)src[j];                                               \
          } else {                                                                                                 \
            for (ptrdiff_t j = a; j < b; j++) row[d + j] = (T)src[j * s];                                           \
          }                                                                                                        \
          for (ptrdiff_t j = (b > j0 ? b : j0); j < j1; j++) row[d + j] = 0;                                        \
        }                                                                                                          \
      }                                                                                                            \
    }                                                                                                              \
  }

void wrapnet_im2col_positions(const float *restrict image, size_t channels, size_t height, size_t width, size_t kh,
                              size_t kw, size_t stride, size_t padding, size_t ho, size_t wo, size_t first,
                              size_t count, float *restrict columns, size_t rowStride) {
  WRAPNET_IM2COL_BODY(float)
}

void wrapnet_im2col(const float *restrict image, size_t channels, size_t height, size_t width, size_t kh, size_t kw,
                    size_t stride, size_t padding, size_t ho, size_t wo, float *restrict columns, size_t rowStride) {
  wrapnet_im2col_positions(image, channels, height, width, kh, kw, stride, padding, ho, wo, 0, ho * wo, columns,
                           rowStride);
}

void wrapnet_im2col_f64(const float *restrict image, size_t channels, size_t height, size_t width, size_t kh,
                        size_t kw, size_t stride, size_t padding, size_t ho, size_t wo, double *restrict columns,
                        size_t rowStride) {
  const size_t first = 0, count = ho * wo;
  WRAPNET_IM2COL_BODY(double)
}

void wrapnet_col2im(const float *restrict columns, size_t rowStride, size_t channels, size_t height, size_t width,
                    size_t kh, size_t kw, size_t stride, size_t padding, size_t ho, size_t wo, float *restrict image) {
  const ptrdiff_t s = (ptrdiff_t)stride, p = (ptrdiff_t)padding, h = (ptrdiff_t)height, w = (ptrdiff_t)width;
  for (size_t c = 0; c < channels; c++) {
    for (size_t u = 0; u < kh; u++) {
      for (size_t v = 0; v < kw; v++) {
        const float *row = columns + ((c * kh + u) * kw + v) * rowStride;
        ptrdiff_t jLo, jHi;
        valid_range((ptrdiff_t)v - p, s, w, (ptrdiff_t)wo, &jLo, &jHi);
        if (jLo >= jHi) continue;
        for (size_t i = 0; i < ho; i++) {
          ptrdiff_t iy = (ptrdiff_t)i * s - p + (ptrdiff_t)u;
          if (iy < 0 || iy >= h) continue;
          const float *src = row + i * wo;
          float *dst = image + ((ptrdiff_t)c * h + iy) * w + ((ptrdiff_t)v - p);
          if (s == 1) {
            for (ptrdiff_t j = jLo; j < jHi; j++) dst[j] += src[j];
          } else {
            for (ptrdiff_t j = jLo; j < jHi; j++) dst[j * s] += src[j];
          }
        }
      }
    }
  }
}

void wrapnet_channel_sums(const float *x, size_t n, size_t imageStride, size_t spatial, size_t channels,
                          const double *means, double *sums) {
  // Four channels at a time: four independent Float64 chains hide the add latency; each chain adds its own
  // channel's terms in order.
  size_t k = 0;
  for (; k + 4 <= channels; k += 4) {
    const float *x0 = x + k * spatial;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    if (means) {
      double m0 = means[k], m1 = means[k + 1], m2 = means[k + 2], m3 = means[k + 3];
      for (size_t i = 0; i < n; i++) {
        const float *a = x0 + i * imageStride;
        for (size_t q = 0; q < spatial; q++) {
          double d0 = (double)a[q] - m0, d1 = (double)a[spatial + q] - m1;
          double d2 = (double)a[2 * spatial + q] - m2, d3 = (double)a[3 * spatial + q] - m3;
          s0 += d0 * d0;
          s1 += d1 * d1;
          s2 += d2 * d2;
          s3 += d3 * d3;
        }
      }
    } else {
      for (size_t i = 0; i < n; i++) {
        const float *a = x0 + i * imageStride;
        for (size_t q = 0; q < spatial; q++) {
          s0 += (double)a[q];
          s1 += (double)a[spatial + q];
          s2 += (double)a[2 * spatial + q];
          s3 += (double)a[3 * spatial + q];
        }
      }
    }
    sums[k] = s0;
    sums[k + 1] = s1;
    sums[k + 2] = s2;
    sums[k + 3] = s3;
  }
  for (; k < channels; k++) {
    const float *x0 = x + k * spatial;
    double s = 0;
    for (size_t i = 0; i < n; i++) {
      const float *a = x0 + i * imageStride;
      if (means) {
        for (size_t q = 0; q < spatial; q++) {
          double d = (double)a[q] - means[k];
          s += d * d;
        }
      } else {
        for (size_t q = 0; q < spatial; q++) s += (double)a[q];
      }
    }
    sums[k] = s;
  }
}

void wrapnet_batchnorm_normalize(const float *restrict x, size_t n, size_t imageStride, size_t spatial, float mean,
                                 float rstd, float g, float b, float *restrict xhat, float *restrict y) {
  for (size_t i = 0; i < n; i++) {
    const float *a = x + i * imageStride;
    float *h = xhat + i * imageStride;
    float *o = y + i * imageStride;
    for (size_t q = 0; q < spatial; q++) {
      float xh = (a[q] - mean) * rstd;
      h[q] = xh;
      float gx = g * xh;
      o[q] = gx + b;
    }
  }
}

void wrapnet_batchnorm_gradient_sums(const float *dy, const float *xhat, size_t n, size_t imageStride,
                                     size_t spatial, size_t channels, double *sumDy, double *sumDyXhat) {
  size_t k = 0;
  for (; k + 2 <= channels; k += 2) {
    double a0 = 0, a1 = 0, b0 = 0, b1 = 0;
    for (size_t i = 0; i < n; i++) {
      const float *d = dy + k * spatial + i * imageStride;
      const float *h = xhat + k * spatial + i * imageStride;
      for (size_t q = 0; q < spatial; q++) {
        double d0 = (double)d[q], d1 = (double)d[spatial + q];
        a0 += d0;
        b0 += d0 * (double)h[q];
        a1 += d1;
        b1 += d1 * (double)h[spatial + q];
      }
    }
    sumDy[k] = a0;
    sumDy[k + 1] = a1;
    sumDyXhat[k] = b0;
    sumDyXhat[k + 1] = b1;
  }
  for (; k < channels; k++) {
    double a = 0, b = 0;
    for (size_t i = 0; i < n; i++) {
      const float *d = dy + k * spatial + i * imageStride;
      const float *h = xhat + k * spatial + i * imageStride;
      for (size_t q = 0; q < spatial; q++) {
        double d0 = (double)d[q];
        a += d0;
        b += d0 * (double)h[q];
      }
    }
    sumDy[k] = a;
    sumDyXhat[k] = b;
  }
}

void wrapnet_batchnorm_input_gradient(const float *restrict dy, const float *restrict xhat, size_t n,
                                      size_t imageStride, size_t spatial, float scale, float m, float sumDy,
                                      float sumDyXhat, float *restrict dx) {
  for (size_t i = 0; i < n; i++) {
    const float *d = dy + i * imageStride;
    const float *h = xhat + i * imageStride;
    float *o = dx + i * imageStride;
    for (size_t q = 0; q < spatial; q++) {
      float a = m * d[q];
      float b = a - sumDy;
      float c = h[q] * sumDyXhat;
      o[q] = scale * (b - c);
    }
  }
}

void wrapnet_adam_update(float *restrict w, const float *restrict grad, float *restrict m, float *restrict v,
                         size_t count, float l2, float shrink, float b1, float oneMinusB1, float b2, float oneMinusB2,
                         float correction2Root, float eps, float stepSize) {
  for (size_t i = 0; i < count; i++) {
    float g = grad[i] + l2 * w[i];
    float wi = w[i] * shrink;
    float mi = b1 * m[i] + oneMinusB1 * g;
    float vi = b2 * v[i] + (oneMinusB2 * g) * g;
    m[i] = mi;
    v[i] = vi;
    float denominator = __builtin_sqrtf(vi) / correction2Root + eps;
    w[i] = wi - (stepSize * mi) / denominator;
  }
}

// Saturating sums: the block's accumulators [outC, count] stay in cache while the terms arrive in order k, and each
// term updates `count` independent positions, which the compiler vectorizes. Integer arithmetic wraps like Swift's
// &+ and &*, so every ISA gives the same sums.
#define WRAPNET_SATURATING_BODY                                                                                      \
  int32_t *acc = scratch, *xi = scratch + outC * count;                                                            \
  for (size_t o = 0; o < outC; o++)                                                                                \
    for (size_t p = 0; p < count; p++) acc[o * count + p] = preload ? preload[o] : 0;                              \
  for (size_t k = 0; k < fan; k++) {                                                                               \
    const float *row = cols + k * colStride;                                                                       \
    int any = 0;                                                                                                   \
    for (size_t p = 0; p < count; p++) {                                                                           \
      xi[p] = (int32_t)row[p];                                                                                     \
      any |= xi[p];                                                                                                \
    }                                                                                                              \
    if (!any) continue; /* adding 0 leaves an in-range sum unchanged */                                            \
    for (size_t o = 0; o < outC; o++) {                                                                            \
      const uint32_t wv = (uint32_t)weights[o * fan + k];                                                          \
      if (wv == 0) continue;                                                                                       \
      int32_t *a = acc + o * count;                                                                                \
      for (size_t p = 0; p < count; p++) {                                                                         \
        int32_t v = (int32_t)((uint32_t)a[p] + (uint32_t)xi[p] * wv);                                              \
        v = v < lo ? lo : v;                                                                                       \
        a[p] = v > hi ? hi : v;                                                                                    \
      }                                                                                                            \
    }                                                                                                              \
  }                                                                                                                \
  for (size_t o = 0; o < outC; o++) {                                                                              \
    for (size_t p = 0; p < count; p++) out[o * outStrideO + p * outStrideP] = (float)acc[o * count + p];           \
  }

void wrapnet_saturating_sums_portable(const float *cols, size_t colStride, size_t fan, size_t count,
                                      const int32_t *weights, size_t outC, const int32_t *preload, int32_t lo,
                                      int32_t hi, int32_t *scratch,
                                      float *out, size_t outStrideO, size_t outStrideP) {
  WRAPNET_SATURATING_BODY
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) static void saturating_sums_avx2(const float *cols, size_t colStride, size_t fan,
                                                                  size_t count, const int32_t *weights, size_t outC,
                                                                  const int32_t *preload, int32_t lo, int32_t hi,
                                                                  int32_t *scratch, float *out,
                                                                  size_t outStrideO, size_t outStrideP) {
  WRAPNET_SATURATING_BODY
}
#endif

void wrapnet_saturating_sums(const float *cols, size_t colStride, size_t fan, size_t count, const int32_t *weights,
                             size_t outC, const int32_t *preload, int32_t lo, int32_t hi, int32_t *scratch, float *out,
                             size_t outStrideO, size_t outStrideP) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2")) {
    saturating_sums_avx2(cols, colStride, fan, count, weights, outC, preload, lo, hi, scratch, out, outStrideO,
                         outStrideP);
    return;
  }
#endif
  wrapnet_saturating_sums_portable(cols, colStride, fan, count, weights, outC, preload, lo, hi, scratch, out,
                                   outStrideO, outStrideP);
}
