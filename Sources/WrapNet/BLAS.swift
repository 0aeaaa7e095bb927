// Thin Swift wrappers over the BLAS matrix product (Accelerate on Apple platforms, OpenBLAS elsewhere).
//
// Every heavy product of the trainer (linear and convolution forward/backward) goes through `sgemm`/`dgemm`.
// Reproducibility: OpenBLAS's own threading is NOT bitwise reproducible across thread counts (its micro-kernels
// sum an element in an order that depends on the tile the element falls in, and the tiles move with the
// thread split; measured on OpenBLAS 0.3.21/Zen). So OpenBLAS is kept single-threaded, and the wrappers cut
// each product into blocks by a rule that depends on the shape (m, n, k) only, run each block as one
// single-threaded BLAS call, and spread the blocks over `setBLASThreads` worker threads. Results are therefore
// bitwise identical for every thread count (tested in LayerBLASTests and LayerConvTests).

import Dispatch
import Foundation

#if canImport(Accelerate)
  import Accelerate
#else
  import CBLAS
#endif

/// Whether a GEMM operand is used as stored (`.none`) or transposed (`.transpose`).
public enum BLASTranspose: Sendable, Equatable {
  /// op(M) = M.
  case none
  /// op(M) = Mᵀ.
  case transpose

  var cblas: CBLAS_TRANSPOSE {
    switch self {
    case .none: return CblasNoTrans
    case .transpose: return CblasTrans
    }
  }
}

/// The worker-thread count of the GEMM wrappers: the single process-wide setting that `setBLASThreads` changes
/// (a process-wide knob by nature, like OpenBLAS's own), guarded by a lock.
private final class BLASThreadSetting: @unchecked Sendable {
  private let lock = NSLock()
  private var count = max(1, ProcessInfo.processInfo.activeProcessorCount)
  var value: Int {
    get { lock.withLock { count } }
    set { lock.withLock { count = newValue } }
  }
}

private let blasThreadSetting = BLASThreadSetting()

/// Puts OpenBLAS in single-threaded mode once, before the first product (see the file comment).
private let blasLibrarySingleThreaded: Bool = {
  #if !canImport(Accelerate)
    openblas_set_num_threads(1)
  #endif
  return true
}()

/// Sets how many worker threads the GEMM wrappers (`sgemm`, `dgemm`, and through them every layer) may use.
/// Results do not depend on this value: the blocking of each product depends only on its shape.
///
/// Precondition: `n >= 1`. The default is the number of active processors.
public func setBLASThreads(_ n: Int) {
  precondition(n >= 1, "setBLASThreads needs at least 1 thread, got \(n)")
  _ = blasLibrarySingleThreaded
  blasThreadSetting.value = n
}

/// The worker-thread count last set by `setBLASThreads` (default: the number of active processors).
public func blasThreads() -> Int { blasThreadSetting.value }

/// Checks the operand extents of a row-major GEMM.
private func gemmCheck(
  _ name: String, m: Int, n: Int, k: Int, aCount: Int, bCount: Int, cCount: Int
) {
  precondition(m >= 0 && n >= 0 && k >= 0, "\(name): negative size m=\(m) n=\(n) k=\(k)")
  precondition(
    m <= Int(Int32.max) && n <= Int(Int32.max) && k <= Int(Int32.max),
    "\(name): size exceeds Int32 (m=\(m) n=\(n) k=\(k))")
  precondition(aCount >= m * k, "\(name): A holds \(aCount) elements, op(A) [\(m), \(k)] needs \(m * k)")
  precondition(bCount >= k * n, "\(name): B holds \(bCount) elements, op(B) [\(k), \(n)] needs \(k * n)")
  precondition(cCount >= m * n, "\(name): C holds \(cCount) elements, C [\(m), \(n)] needs \(m * n)")
}

/// Block sizes of the shape-only partition (see `partitionedGEMM`).
private let gemmBlockColumns = 512
private let gemmBlockRows = 64
private let gemmBlockDepth = 2048
/// Products with fewer multiply-adds than this run as a single BLAS call.
private let gemmMinimumSplitWork = 1 << 20

/// Pointers of one product, shared read-only by the worker threads (each writes a disjoint block of C or its own
/// partial buffer).
private struct GEMMOperands<S: BLASScalar>: @unchecked Sendable {
  var a: UnsafePointer<S>
  var b: UnsafePointer<S>
  var c: UnsafeMutablePointer<S>
}

/// Runs `count` independent blocks on up to `blasThreads()` threads; block i always does the same work, so the
/// result does not depend on the thread count.
func runBlocks(_ count: Int, _ body: @Sendable (Int) -> Void) {
  let workers = min(blasThreads(), count)
  if workers <= 1 {
    for i in 0..<count { body(i) }
    return
  }
  DispatchQueue.concurrentPerform(iterations: workers) { w in
    for i in stride(from: w, to: count, by: workers) { body(i) }
  }
}

/// How `partitionedGEMM` cuts a product, by its shape (m, n, k) only:
/// - n ≥ 2·512: blocks of 512 columns of C;
/// - else m ≥ 2·64: blocks of 64 rows of C;
/// - else k ≥ 2·2048: blocks of 2048 along the reduction, each into its own partial [m, n], then
///   C = β·C + partial₀ + partial₁ + … in that order;
/// - small products (< 2²⁰ multiply-adds) and anything else: one call.
/// Callers that compute the blocks of a product themselves (the convolution backward, to keep each block's operands
/// in cache) follow the same plan, so their sums are the same bit for bit.
enum GEMMPartition: Equatable {
  /// Blocks of this many columns of C, one call each.
  case columnBlocks(Int)
  /// Blocks of this many rows of C, one call each.
  case rowBlocks(Int)
  /// Blocks of this many reduction indices, each into its own partial, summed by `addPartials`.
  case depthBlocks(Int)
  /// One call.
  case single

  init(m: Int, n: Int, k: Int) {
    let work = m * n * k
    if work >= gemmMinimumSplitWork && n >= 2 * gemmBlockColumns {
      self = .columnBlocks(gemmBlockColumns)
    } else if work >= gemmMinimumSplitWork && m >= 2 * gemmBlockRows {
      self = .rowBlocks(gemmBlockRows)
    } else if work >= gemmMinimumSplitWork && k >= 2 * gemmBlockDepth {
      self = .depthBlocks(gemmBlockDepth)
    } else {
      self = .single
    }
  }
}

/// The fixed-order reduction of `.depthBlocks`: c[e] = β·c[e] + partials[0][e] + partials[1][e] + … (c's previous
/// contents ignored when β = 0). `partials` holds `blocks` arrays of `count` elements back to back.
func addPartials<S: BLASScalar>(
  _ partials: UnsafePointer<S>, blocks: Int, count: Int, beta: S, into c: UnsafeMutablePointer<S>
) {
  for e in 0..<count {
    var sum: S = beta == 0 ? 0 : beta * c[e]
    for i in 0..<blocks { sum += partials[i * count + e] }
    c[e] = sum
  }
}

/// C ← α·op(A)·op(B) + β·C on packed row-major operands, cut into blocks as `GEMMPartition` says.
/// Each block is one single-threaded BLAS call, so every element is summed identically whatever the thread count.
private func partitionedGEMM<S: BLASScalar>(
  transA: BLASTranspose, transB: BLASTranspose, m: Int, n: Int, k: Int, alpha: S, a: UnsafePointer<S>,
  b: UnsafePointer<S>, beta: S, c: UnsafeMutablePointer<S>
) {
  _ = blasLibrarySingleThreaded
  // Packed row-major operands: A is [m, k] (or [k, m] when transposed), B is [k, n] (or [n, k]), C is [m, n].
  let lda = transA == .none ? k : m
  let ldb = transB == .none ? n : k
  let ops = GEMMOperands(a: a, b: b, c: c)
  switch GEMMPartition(m: m, n: n, k: k) {
  case .columnBlocks(let width):
    let blocks = (n + width - 1) / width
    runBlocks(blocks) { i in
      let j0 = i * width
      let nb = min(width, n - j0)
      // Columns j0..<j0+nb of op(B) and of C; A whole.
      let bBlock = transB == .none ? ops.b + j0 : ops.b + j0 * k
      S.rawGEMM(
        transA: transA, transB: transB, m: m, n: nb, k: k, alpha: alpha, a: ops.a, lda: lda, b: bBlock, ldb: ldb,
        beta: beta, c: ops.c + j0, ldc: n)
    }
  case .rowBlocks(let height):
    let blocks = (m + height - 1) / height
    runBlocks(blocks) { i in
      let i0 = i * height
      let mb = min(height, m - i0)
      // Rows i0..<i0+mb of op(A) and of C; B whole.
      let aBlock = transA == .none ? ops.a + i0 * k : ops.a + i0
      S.rawGEMM(
        transA: transA, transB: transB, m: mb, n: n, k: k, alpha: alpha, a: aBlock, lda: lda, b: ops.b, ldb: ldb,
        beta: beta, c: ops.c + i0 * n, ldc: n)
    }
  case .depthBlocks(let depth):
    let blocks = (k + depth - 1) / depth
    let partials = UnsafeMutablePointer<S>.allocate(capacity: blocks * m * n)
    defer { partials.deallocate() }
    let partialOps = GEMMOperands(a: a, b: b, c: partials)
    runBlocks(blocks) { i in
      let p0 = i * depth
      let kb = min(depth, k - p0)
      // Reduction indices p0..<p0+kb: columns of op(A), rows of op(B).
      let aBlock = transA == .none ? partialOps.a + p0 : partialOps.a + p0 * m
      let bBlock = transB == .none ? partialOps.b + p0 * n : partialOps.b + p0
      S.rawGEMM(
        transA: transA, transB: transB, m: m, n: n, k: kb, alpha: alpha, a: aBlock, lda: lda, b: bBlock, ldb: ldb,
        beta: 0, c: partialOps.c + i * m * n, ldc: n)
    }
    addPartials(UnsafePointer(partials), blocks: blocks, count: m * n, beta: beta, into: c)
  case .single:
    S.rawGEMM(
      transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta,
      c: c, ldc: n)
  }
}

/// One single-threaded BLAS product with explicit leading dimensions, for callers that already run one product per
/// worker (for example one image per block): C ← op(A)·op(B) + β·C, with m, n, k ≥ 1.
func singleThreadedGEMM<S: BLASScalar>(
  transA: BLASTranspose, transB: BLASTranspose, m: Int, n: Int, k: Int, a: UnsafePointer<S>, lda: Int,
  b: UnsafePointer<S>, ldb: Int, beta: S, c: UnsafeMutablePointer<S>, ldc: Int
) {
  _ = blasLibrarySingleThreaded
  precondition(m >= 1 && n >= 1 && k >= 1, "singleThreadedGEMM: empty product m=\(m) n=\(n) k=\(k)")
  S.rawGEMM(
    transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c,
    ldc: ldc)
}

/// Shared body of the pointer forms: checks, handles empty products, then runs the partitioned product.
private func gemm<S: BLASScalar>(
  _ name: String, transA: BLASTranspose, transB: BLASTranspose, m: Int, n: Int, k: Int, alpha: S,
  a: UnsafeBufferPointer<S>, b: UnsafeBufferPointer<S>, beta: S, c: UnsafeMutableBufferPointer<S>
) {
  gemmCheck(name, m: m, n: n, k: k, aCount: a.count, bCount: b.count, cCount: c.count)
  if m == 0 || n == 0 { return }
  if k == 0 {
    // BLAS may leave C untouched when k == 0; the mathematical result is β·C.
    for i in 0..<(m * n) { c[i] = beta == 0 ? 0 : beta * c[i] }
    return
  }
  partitionedGEMM(
    transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a.baseAddress!, b: b.baseAddress!,
    beta: beta, c: c.baseAddress!)
}

/// Single-precision row-major matrix product on packed operands: C ← α·op(A)·op(B) + β·C.
///
/// Shapes: op(A) is [m, k] (A stored [m, k], or [k, m] when `transA == .transpose`), op(B) is [k, n]
/// (B stored [k, n], or [n, k]), C is [m, n]; all packed (leading dimension = row length).
/// With `beta == 0`, C's previous contents are ignored (BLAS semantics, NaNs included).
/// Bitwise reproducible for any `setBLASThreads` value (see the file comment).
public func sgemm(
  transA: BLASTranspose, transB: BLASTranspose, m: Int, n: Int, k: Int,
  alpha: Float = 1, a: UnsafeBufferPointer<Float>, b: UnsafeBufferPointer<Float>,
  beta: Float = 0, c: UnsafeMutableBufferPointer<Float>
) {
  gemm("sgemm", transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, b: b, beta: beta, c: c)
}

/// Double-precision row-major matrix product on packed operands: C ← α·op(A)·op(B) + β·C.
///
/// Shapes as in `sgemm`. Used where Float32 sums would be inexact (integer-valued sums above 2²⁴).
public func dgemm(
  transA: BLASTranspose, transB: BLASTranspose, m: Int, n: Int, k: Int,
  alpha: Double = 1, a: UnsafeBufferPointer<Double>, b: UnsafeBufferPointer<Double>,
  beta: Double = 0, c: UnsafeMutableBufferPointer<Double>
) {
  gemm("dgemm", transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, b: b, beta: beta, c: c)
}

/// Array form of `sgemm`: C ← α·op(A)·op(B) + β·C on packed row-major arrays (shapes as in the pointer form).
public func sgemm(
  transA: BLASTranspose, transB: BLASTranspose, m: Int, n: Int, k: Int,
  alpha: Float = 1, a: [Float], b: [Float], beta: Float = 0, c: inout [Float]
) {
  a.withUnsafeBufferPointer { pa in
    b.withUnsafeBufferPointer { pb in
      c.withUnsafeMutableBufferPointer { pc in
        sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: pa, b: pb, beta: beta, c: pc)
      }
    }
  }
}

/// Array form of `dgemm`: C ← α·op(A)·op(B) + β·C on packed row-major arrays (shapes as in the pointer form).
public func dgemm(
  transA: BLASTranspose, transB: BLASTranspose, m: Int, n: Int, k: Int,
  alpha: Double = 1, a: [Double], b: [Double], beta: Double = 0, c: inout [Double]
) {
  a.withUnsafeBufferPointer { pa in
    b.withUnsafeBufferPointer { pb in
      c.withUnsafeMutableBufferPointer { pc in
        dgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: pa, b: pb, beta: beta, c: pc)
      }
    }
  }
}

/// The floating-point format in which a convolution or linear forward sums its products.
///
/// `.single` sums in Float32 (BLAS `sgemm`); `.double` converts the operands to Float64, sums with `dgemm` and
/// rounds each output once to Float32. Integer-valued products (quantized weights times quantized activations)
/// are summed exactly in Float32 only while every partial sum stays below 2²⁴ in magnitude; in Float64 up to 2⁵³.
/// The caller decides which it needs.
public enum GEMMPrecision: Sendable, Equatable {
  /// Float32 accumulation (fast).
  case single
  /// Float64 accumulation, one final rounding to Float32.
  case double
}

/// A scalar type that BLAS can multiply (Float → sgemm, Double → dgemm), so the conv/linear kernels and the
/// partitioned product are written once.
protocol BLASScalar: BinaryFloatingPoint, Sendable, BitwiseCopyable {
  /// One single-threaded row-major BLAS call with explicit leading dimensions.
  static func rawGEMM(
    transA: BLASTranspose, transB: BLASTranspose, m: Int, n: Int, k: Int, alpha: Self, a: UnsafePointer<Self>,
    lda: Int, b: UnsafePointer<Self>, ldb: Int, beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
  /// The public wrapper (`sgemm` / `dgemm`) on packed operands.
  static func gemm(
    transA: BLASTranspose, transB: BLASTranspose, m: Int, n: Int, k: Int,
    a: UnsafeBufferPointer<Self>, b: UnsafeBufferPointer<Self>, beta: Self, c: UnsafeMutableBufferPointer<Self>)
  /// The Float32 elements in this format (no copy for Float itself).
  static func converting(_ values: [Float]) -> [Self]
}

extension Float: BLASScalar {
  static func rawGEMM(
    transA: BLASTranspose, transB: BLASTranspose, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>,
    lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
  ) {
    cblas_sgemm(
      CblasRowMajor, transA.cblas, transB.cblas, Int32(m), Int32(n), Int32(k), alpha, a, Int32(max(lda, 1)), b,
      Int32(max(ldb, 1)), beta, c, Int32(max(ldc, 1)))
  }
  static func gemm(
    transA: BLASTranspose, transB: BLASTranspose, m: Int, n: Int, k: Int,
    a: UnsafeBufferPointer<Float>, b: UnsafeBufferPointer<Float>, beta: Float, c: UnsafeMutableBufferPointer<Float>
  ) {
    sgemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, b: b, beta: beta, c: c)
  }
  static func converting(_ values: [Float]) -> [Float] { values }
}

extension Double: BLASScalar {
  static func rawGEMM(
    transA: BLASTranspose, transB: BLASTranspose, m: Int, n: Int, k: Int, alpha: Double, a: UnsafePointer<Double>,
    lda: Int, b: UnsafePointer<Double>, ldb: Int, beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
  ) {
    cblas_dgemm(
      CblasRowMajor, transA.cblas, transB.cblas, Int32(m), Int32(n), Int32(k), alpha, a, Int32(max(lda, 1)), b,
      Int32(max(ldb, 1)), beta, c, Int32(max(ldc, 1)))
  }
  static func gemm(
    transA: BLASTranspose, transB: BLASTranspose, m: Int, n: Int, k: Int,
    a: UnsafeBufferPointer<Double>, b: UnsafeBufferPointer<Double>, beta: Double, c: UnsafeMutableBufferPointer<Double>
  ) {
    dgemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, b: b, beta: beta, c: c)
  }
  static func converting(_ values: [Float]) -> [Double] { values.map { Double($0) } }
}
