// Private to CWrapNetKernels: the load-and-shuffle plan that the direct convolution (kernel rows of an image row)
// and the lookup kernel's residual epilogue (a block's shortcut codes) share.
#ifndef WRAPNET_WINDOW_PLAN_H
#define WRAPNET_WINDOW_PLAN_H

#include <stddef.h>
#include <stdint.h>

// Bytes first + i (i < wanted <= 16; first may be negative) of a run of `len` bytes, by one 16-byte load and one
// shuffle: returns where the load starts (clamped into [0, len - 16], so it stays inside the run, when len >= 16;
// else 0, and the caller loads a zero-padded copy) and fills ctrl (both 128-bit lanes alike) so the shuffle moves
// byte first + i to byte i, or zeroes it where it lies outside [0, len) (and bytes i >= wanted).
static inline long wrapnet_window_plan(long first, size_t wanted, size_t len, uint8_t ctrl[32]) {
  long start = 0;
  if (len >= 16) {
    start = first < 0 ? 0 : first;
    if (start + 16 > (long)len) start = (long)len - 16;
  }
  for (size_t i = 0; i < 16; i++) {
    const long pos = first + (long)i;
    ctrl[i] = ctrl[16 + i] = i < wanted && pos >= 0 && pos < (long)len ? (uint8_t)(pos - start) : 0x80;
  }
  return start;
}

#endif
