// The trainer's weight quantizers; see CWrapNetTraining.h. The engine's Swift quantizers are the reference: same
// Float32 and Float64 operations, each row's sums in index order.
#include <math.h>

#include "CWrapNetTraining.h"

#pragma STDC FP_CONTRACT OFF

// Σ|w| of rows r … r+3 (or fewer at the end), each in index order, in four independent Float64 chains.
static void absolute_sums(const float *w, size_t rows, size_t fanIn, size_t r, double *sums) {
  const size_t group = rows - r < 4 ? rows - r : 4;
  if (group == 4) {
    const float *a = w + r * fanIn, *b = a + fanIn, *c = b + fanIn, *d = c + fanIn;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i < fanIn; i++) {
      s0 += (double)fabsf(a[i]);
      s1 += (double)fabsf(b[i]);
      s2 += (double)fabsf(c[i]);
      s3 += (double)fabsf(d[i]);
    }
    sums[0] = s0, sums[1] = s1, sums[2] = s2, sums[3] = s3;
    return;
  }
  for (size_t k = 0; k < group; k++) {
    const float *a = w + (r + k) * fanIn;
    double s = 0;
    for (size_t i = 0; i < fanIn; i++) s += (double)fabsf(a[i]);
    sums[k] = s;
  }
}

void wrapnet_quantize_binary(const float *w, size_t rows, size_t fanIn, float *codes, float *scales) {
  for (size_t r = 0; r < rows; r += 4) {
    double sums[4];
    absolute_sums(w, rows, fanIn, r, sums);
    for (size_t k = 0; k < 4 && r + k < rows; k++) scales[r + k] = (float)(sums[k] / (double)fanIn);
  }
  for (size_t i = 0; i < rows * fanIn; i++) codes[i] = w[i] >= 0 ? 1.0f : -1.0f;
}

void wrapnet_quantize_ternary(const float *w, size_t rows, size_t fanIn, float t, float *codes, float *scales) {
  for (size_t r = 0; r < rows; r += 4) {
    double sums[4];
    absolute_sums(w, rows, fanIn, r, sums);
    for (size_t k = 0; k < 4 && r + k < rows; k++) {
      const float *row = w + (r + k) * fanIn;
      float *code = codes + (r + k) * fanIn;
      const float delta = (float)((double)t * (sums[k] / (double)fanIn));
      double survivorSum = 0;
      size_t survivors = 0;
      for (size_t i = 0; i < fanIn; i++) {
        const float v = row[i];
        const float c = v > delta ? 1.0f : (v < -delta ? -1.0f : 0.0f);
        code[i] = c;
        if (c != 0) {
          survivorSum += (double)fabsf(v);
          survivors++;
        }
      }
      scales[r + k] = survivors > 0 ? (float)(survivorSum / (double)survivors) : (delta > 0 ? delta : 1.0f);
    }
  }
}

void wrapnet_quantize_symmetric(const float *w, size_t rows, size_t fanIn, float qmax, float *codes, float *scales) {
  for (size_t r = 0; r < rows; r++) {
    const float *row = w + r * fanIn;
    float *code = codes + r * fanIn;
    float largest = 0;
    for (size_t i = 0; i < fanIn; i++) {
      const float m = fabsf(row[i]);
      largest = m >= largest ? m : largest;
    }
    const float scale = largest > 0 ? largest / qmax : 1.0f;
    scales[r] = scale;
    for (size_t i = 0; i < fanIn; i++) {
      const float q = roundf(row[i] / scale);
      // + 0 turns a rounded −0 into the +0 of the integer code 0.
      code[i] = (q > -qmax ? (q < qmax ? q : qmax) : (q <= -qmax ? -qmax : 0.0f)) + 0.0f;
    }
  }
}
