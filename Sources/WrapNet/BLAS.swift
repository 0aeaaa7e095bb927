// Thin Swift wrappers over the BLAS matrix product (Accelerate on Apple platforms, OpenBLAS elsewhere).
//
// Every heavy product of the trainer (linear and convolution forward/backward) goes through `sgemm`/`dgemm`,
// so that BLAS alone decides the threading. OpenBLAS splits a GEMM across threads along M and N only, never
// along the reduction dimension K, so each output element is summed in the same order whatever the thread
// count: results are bitwise identical for any `setBLASThreads` value (tested in LayerBLASTests).

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

/// Sets how many threads BLAS may use for one call (OpenBLAS: `openblas_set_num_threads`; a no-op on Accelerate,
/// which manages its own threads). Results do not depend on this value (see the file comment).
///
/// Precondition: `n >= 1`.
public func setBLASThreads(_ n: Int) {
  precondition(n >= 1, "setBLASThreads needs at least 1 thread, got \(n)")
  #if !canImport(Accelerate)
    openblas_set_num_threads(Int32(n))
  #endif
}

/// Checks the operand extents of a row-major GEMM and returns the leading dimensions of packed A, B, C.
@inline(__always)
private func gemmCheck(
  _ name: String, transA: BLASTranspose, transB: BLASTranspose, m: Int, n: Int, k: Int,
  aCount: Int, bCount: Int, cCount: Int
) -> (lda: Int, ldb: Int, ldc: Int) {
  precondition(m >= 0 && n >= 0 && k >= 0, "\(name): negative size m=\(m) n=\(n) k=\(k)")
  precondition(
    m <= Int(Int32.max) && n <= Int(Int32.max) && k <= Int(Int32.max), "\(name): size exceeds Int32 (m=\(m) n=\(n) k=\(k))")
  precondition(aCount >= m * k, "\(name): A holds \(aCount) elements, op(A) [\(m), \(k)] needs \(m * k)")
  precondition(bCount >= k * n, "\(name): B holds \(bCount) elements, op(B) [\(k), \(n)] needs \(k * n)")
  precondition(cCount >= m * n, "\(name): C holds \(cCount) elements, C [\(m), \(n)] needs \(m * n)")
  // Packed row-major operands: A is [m, k] (or [k, m] when transposed), B is [k, n] (or [n, k]), C is [m, n].
  let lda = transA == .none ? k : m
  let ldb = transB == .none ? n : k
  // BLAS rejects leading dimensions of 0 even for empty matrices.
  return (max(lda, 1), max(ldb, 1), max(n, 1))
}

/// Single-precision row-major matrix product on packed operands: C ← α·op(A)·op(B) + β·C.
///
/// Shapes: op(A) is [m, k] (A stored [m, k], or [k, m] when `transA == .transpose`), op(B) is [k, n]
/// (B stored [k, n], or [n, k]), C is [m, n]; all packed (leading dimension = row length).
/// With `beta == 0`, C's previous contents are ignored (BLAS semantics, NaNs included).
public func sgemm(
  transA: BLASTranspose, transB: BLASTranspose, m: Int, n: Int, k: Int,
  alpha: Float = 1, a: UnsafeBufferPointer<Float>, b: UnsafeBufferPointer<Float>,
  beta: Float = 0, c: UnsafeMutableBufferPointer<Float>
) {
  let ld = gemmCheck(
    "sgemm", transA: transA, transB: transB, m: m, n: n, k: k, aCount: a.count, bCount: b.count, cCount: c.count)
  if m == 0 || n == 0 { return }
  if k == 0 {
    // BLAS may leave C untouched when k == 0; the mathematical result is β·C.
    for i in 0..<(m * n) { c[i] = beta == 0 ? 0 : beta * c[i] }
    return
  }
  cblas_sgemm(
    CblasRowMajor, transA.cblas, transB.cblas, Int32(m), Int32(n), Int32(k), alpha, a.baseAddress, Int32(ld.lda),
    b.baseAddress, Int32(ld.ldb), beta, c.baseAddress, Int32(ld.ldc))
}

/// Double-precision row-major matrix product on packed operands: C ← α·op(A)·op(B) + β·C.
///
/// Shapes as in `sgemm`. Used where Float32 sums would be inexact (integer-valued sums above 2²⁴).
public func dgemm(
  transA: BLASTranspose, transB: BLASTranspose, m: Int, n: Int, k: Int,
  alpha: Double = 1, a: UnsafeBufferPointer<Double>, b: UnsafeBufferPointer<Double>,
  beta: Double = 0, c: UnsafeMutableBufferPointer<Double>
) {
  let ld = gemmCheck(
    "dgemm", transA: transA, transB: transB, m: m, n: n, k: k, aCount: a.count, bCount: b.count, cCount: c.count)
  if m == 0 || n == 0 { return }
  if k == 0 {
    for i in 0..<(m * n) { c[i] = beta == 0 ? 0 : beta * c[i] }
    return
  }
  cblas_dgemm(
    CblasRowMajor, transA.cblas, transB.cblas, Int32(m), Int32(n), Int32(k), alpha, a.baseAddress, Int32(ld.lda),
    b.baseAddress, Int32(ld.ldb), beta, c.baseAddress, Int32(ld.ldc))
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

/// A scalar type that BLAS can multiply (Float → sgemm, Double → dgemm), so the conv/linear kernels are written once.
protocol BLASScalar: BinaryFloatingPoint {
  static func gemm(
    transA: BLASTranspose, transB: BLASTranspose, m: Int, n: Int, k: Int,
    a: UnsafeBufferPointer<Self>, b: UnsafeBufferPointer<Self>, beta: Self, c: UnsafeMutableBufferPointer<Self>)
  /// The Float32 elements in this format (no copy for Float itself).
  static func converting(_ values: [Float]) -> [Self]
}

extension Float: BLASScalar {
  static func gemm(
    transA: BLASTranspose, transB: BLASTranspose, m: Int, n: Int, k: Int,
    a: UnsafeBufferPointer<Float>, b: UnsafeBufferPointer<Float>, beta: Float, c: UnsafeMutableBufferPointer<Float>
  ) {
    sgemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, b: b, beta: beta, c: c)
  }
  static func converting(_ values: [Float]) -> [Float] { values }
}

extension Double: BLASScalar {
  static func gemm(
    transA: BLASTranspose, transB: BLASTranspose, m: Int, n: Int, k: Int,
    a: UnsafeBufferPointer<Double>, b: UnsafeBufferPointer<Double>, beta: Double, c: UnsafeMutableBufferPointer<Double>
  ) {
    dgemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a, b: b, beta: beta, c: c)
  }
  static func converting(_ values: [Float]) -> [Double] { values.map { Double($0) } }
}
