import CWrapNetTraining

/// The process's allocator policy.
public enum ProcessMemory {
  /// Makes freed buffers of up to 32 MiB stay in the process for the next allocation (glibc), instead of being
  /// unmapped and faulted in again: training allocates and frees the same activation and gradient tensors every
  /// step. Call once at start-up, before the work; returns false where the C library offers no such setting.
  @discardableResult
  public static func keepFreedMemory() -> Bool {
    wrapnet_keep_freed_memory() == 1
  }
}
