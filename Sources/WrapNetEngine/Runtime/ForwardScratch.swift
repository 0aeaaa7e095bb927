import Foundation

/// Scratch sets an `InferenceRunner` keeps between its runs, one per thread that runs at the same time (at most 8
/// kept): a fresh set per run would page-fault its megabytes in again on every run (a few percent of a resnet20
/// batch on one thread, more with two threads faulting at once). Contents never carry over: every step writes
/// what it reads.
final class ScratchPool: @unchecked Sendable {
  private let lock = NSLock()
  private var free: [ForwardScratch] = []

  /// A kept set, or a new one.
  func take() -> ForwardScratch {
    lock.lock()
    defer { lock.unlock() }
    return free.popLast() ?? ForwardScratch()
  }

  /// Keeps `scratch` for the next run (drops it when 8 are kept already).
  func give(_ scratch: ForwardScratch) {
    lock.lock()
    defer { lock.unlock() }
    if free.count < 8 { free.append(scratch) }
  }
}

/// Buffers one thread reuses for every chunk and layer of `InferenceRunner.run`, so the forward pass allocates
/// (and page-faults) only while they grow. Two activation buffers alternate: a step reads `.activations` and
/// writes `.next`, then `swapActivations()` makes the result current.
final class ForwardScratch {
  enum Slot: Int, CaseIterable {
    /// Current activation codes, [n, h, w, c] UInt8.
    case activations
    /// The step's output codes.
    case next
    /// im2col rows or padded linear rows, UInt8.
    case columns
    /// The current activations as lookup tables (lookup kernel, 4 bytes per code), UInt8; zero-bordered for a
    /// convolution.
    case tables
    /// Lookup kernel: byte offset of each row (Int) and of each pair of 4-code groups in a row (UInt32); offset
    /// of each output pixel's shortcut pixel in a residual block's saved input (Int).
    case rowOffsets
    case pairOffsets
    case shortcutRows
    /// Accumulator values, Int32.
    case sums
    /// A residual block's saved input, UInt8.
    case shortcut
  }

  private var buffers: [UnsafeMutableRawPointer?] = Array(repeating: nil, count: Slot.allCases.count)
  private var capacities = [Int](repeating: 0, count: Slot.allCases.count)

  /// At least `bytes` bytes of `slot` (contents undefined after a growth), 64-byte aligned.
  private func raw(_ slot: Slot, bytes: Int) -> UnsafeMutableRawPointer {
    let i = slot.rawValue
    if capacities[i] < bytes || buffers[i] == nil {
      buffers[i]?.deallocate()
      let size = max(bytes, 64, capacities[i] * 3 / 2)
      buffers[i] = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
      capacities[i] = size
    }
    return buffers[i]!
  }

  /// `count` values of type `T` (a plain integer type) in `slot`.
  func typed<T>(_ slot: Slot, count: Int, as type: T.Type) -> UnsafeMutablePointer<T> {
    raw(slot, bytes: count * MemoryLayout<T>.stride).bindMemory(to: T.self, capacity: max(count, 1))
  }

  /// `count` bytes of `slot`.
  func bytes(_ slot: Slot, count: Int) -> UnsafeMutablePointer<UInt8> { typed(slot, count: count, as: UInt8.self) }

  /// `count` Int32 values of `slot`.
  func int32s(_ slot: Slot, count: Int) -> UnsafeMutablePointer<Int32> { typed(slot, count: count, as: Int32.self) }

  /// Makes `.next` the current activations (and the old activations the next output buffer); returns them.
  func swapActivations() -> UnsafeMutablePointer<UInt8> {
    let (a, n) = (Slot.activations.rawValue, Slot.next.rawValue)
    buffers.swapAt(a, n)
    capacities.swapAt(a, n)
    return buffers[a]!.assumingMemoryBound(to: UInt8.self)
  }

  /// Moves the current activations to `.shortcut` (the old shortcut buffer takes their slot and is written
  /// only after the next `swapActivations`), so a residual block keeps its input without a copy; returns them.
  func keepActivationsAsShortcut() -> UnsafeMutablePointer<UInt8> {
    let (a, s) = (Slot.activations.rawValue, Slot.shortcut.rawValue)
    buffers.swapAt(a, s)
    capacities.swapAt(a, s)
    return buffers[s]!.assumingMemoryBound(to: UInt8.self)
  }

  deinit {
    for b in buffers { b?.deallocate() }
  }
}
