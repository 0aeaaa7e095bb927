// Element-wise and per-channel work of the layers, spread over the `setBLASThreads` workers in blocks fixed by the
// shape alone. A block always covers the same elements and computes each of them (or each per-channel sum) in the
// same order, so results do not depend on the thread count.

/// A buffer shared by the blocks of one parallel loop; each block reads what it likes and writes only its own
/// elements (the caller's contract).
struct SharedBuffer<T>: @unchecked Sendable {
  let base: UnsafeMutablePointer<T>
  init(_ base: UnsafeMutablePointer<T>) { self.base = base }
  /// An empty buffer has no address; it gets an aligned placeholder that no block reads (there is nothing to read).
  init(_ buffer: UnsafeMutableBufferPointer<T>) {
    self.base = buffer.baseAddress ?? UnsafeMutablePointer(bitPattern: MemoryLayout<T>.alignment)!
  }
  init(_ buffer: UnsafeBufferPointer<T>) {
    self.base = UnsafeMutablePointer(mutating: buffer.baseAddress ?? UnsafePointer(bitPattern: MemoryLayout<T>.alignment)!)
  }
  subscript(i: Int) -> T {
    get { base[i] }
    nonmutating set { base[i] = newValue }
  }
}

/// Elements per block of `runElementBlocks`: large enough that a block costs far more than handing it to a worker.
let elementBlockSize = 16_384

/// Runs `body(range)` for the consecutive ranges of `blockSize` elements that cover 0..<count (the last one may be
/// shorter), on up to `blasThreads()` workers. The ranges depend only on `count` and `blockSize`.
func runElementBlocks(_ count: Int, blockSize: Int = elementBlockSize, _ body: @Sendable (Range<Int>) -> Void) {
  guard count > 0 else { return }
  let blocks = (count + blockSize - 1) / blockSize
  runBlocks(blocks) { b in
    let start = b * blockSize
    body(start..<min(start + blockSize, count))
  }
}

/// Runs `body(channels)` over consecutive groups of whole channels of an [N, C, spatial] tensor that cover
/// 0..<count: groups of 4 channels when a channel has at least 16 values per image (a feature map; four channels
/// give a loop four independent sums), else of 64 neighbouring channels, so that two workers do not write the same
/// cache lines of an [N, C] tensor. The groups depend only on `count` and `spatial`.
func runChannelGroups(_ count: Int, spatial: Int, _ body: @Sendable (Range<Int>) -> Void) {
  runElementBlocks(count, blockSize: spatial >= 16 ? 4 : 64, body)
}

/// `count` elements left unset, for a buffer that is written in full before it is read (a layer output, an im2col
/// matrix, a GEMM result with β = 0): it skips the zero fill that `Array(repeating:count:)` would do.
func unfilledArray<T: BitwiseCopyable>(count: Int, of: T.Type = T.self) -> [T] {
  [T](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
}
