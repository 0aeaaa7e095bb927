// Allocator policy for a training process: see wrapnet_keep_freed_memory in CWrapNetTraining.h.
#include "CWrapNetTraining.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

int wrapnet_keep_freed_memory(void) {
#if defined(__GLIBC__)
  // 32 MiB is glibc's largest mmap threshold on 64-bit; blocks below it come from the heap. The trim threshold and
  // top pad keep freed heap memory in the process instead of returning it to the kernel after every step.
  int ok = mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  ok &= mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
  ok &= mallopt(M_TOP_PAD, 64 * 1024 * 1024);
  return ok ? 1 : 0;
#else
  return 0;
#endif
}
