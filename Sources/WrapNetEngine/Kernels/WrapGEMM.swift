import CWrapNetKernels
import Foundation

/// Which implementation computes a wrap-around GEMM. All paths return identical integers.
public enum KernelPath: String, Sendable, CaseIterable {
  /// Plain loops, exact `Int64` sum, one wrap at the end: the oracle.
  case reference
  /// Swift SIMD on 128-bit vectors (`SIMD16<Int8>`, `SIMD8<Int16>`, `SIMD4<Int32>`); runs on any CPU, arm64
  /// included.
  case portable
  /// C micro-kernels for AVX2 (`CWrapNetKernels`); only where `isAVX2Available`.
  case avx2

  /// Whether this CPU (and OS) can run the `avx2` path. Always false off x86_64. Asked once (hot paths such as
  /// the lookup table builder check it per row).
  public static let isAVX2Available: Bool = {
    #if arch(x86_64)
      return wrapnet_cpu_has_avx2() != 0
    #else
      return false
    #endif
  }()

  /// Whether the `avx2` path may also use AVX-512 VNNI (`vpdpbusd` in the 32-bit-lane GEMM, which also runs the
  /// exact int8 first and last layers, and in the first layer's direct convolution):
  /// where the CPU (and OS) have AVX-512 F, BW, VL and VNNI, unless the environment sets `WRAPNET_NO_AVX512=1`
  /// (to compare, or to run as an AVX2-only CPU would). Same integers either way. Asked once.
  public static let isVNNIAvailable: Bool = {
    #if arch(x86_64)
      if let value = ProcessInfo.processInfo.environment["WRAPNET_NO_AVX512"], value != "", value != "0" {
        return false
      }
      return wrapnet_cpu_has_avx512vnni() != 0
    #else
      return false
    #endif
  }()

  /// Whether this path can run on this machine.
  public var isAvailable: Bool { self != .avx2 || Self.isAVX2Available }

  /// The fastest path available here: `avx2` where the CPU has it, else `portable`.
  public static var fastest: KernelPath { isAVX2Available ? .avx2 : .portable }
}

/// Integer GEMM summed in a b-bit two's-complement accumulator that wraps around on overflow.
///
///     output[i, r] = wrap_b( Σ_t W[r, t] · X[i, t] ),   wrap_b(z) = ((z + 2^(b-1)) mod 2^b) - 2^(b-1)
///
/// Shapes: `W` = `weights` `[m, k]` (packed), `X` = `activations` `[n, k]` row-major (`UInt8` codes, one row per
/// image or output position after im2col), `output` `[n, m]` row-major `Int32` holding the sign-extended b-bit
/// result (channels innermost, as NHWC / `[batch, features]`).
///
/// Wrapping after every addition equals wrapping the exact sum once, so for any order of summation and any lane
/// width `lanes` >= `bits` the result equals `wrap_b` of the exact sum; `lanes` only chooses how the kernels
/// accumulate (8-, 16- or 32-bit lanes, reduced mod 2^b at the end). Where AVX2 has no exact instruction for a
/// lane width it runs a wider-lane kernel (same integers): symmetric k-bit weights with 8-bit lanes use 16-bit
/// lanes (no 8-bit multiply), and |codes| > 64 (symmetric 8-bit) use 32-bit lanes (maddubs would saturate).
///
/// Single-threaded and deterministic: callers parallelize by splitting `n` (rows of `activations`/`output`) or
/// by packing separate weight slices.
///
/// - Parameters:
///   - bits: accumulator width b, `1...lanes`.
///   - lanes: 8, 16 or 32.
///   - path: implementation; `.avx2` requires `KernelPath.isAVX2Available`.
///   - vnni: on the `avx2` path, run the 32-bit-lane kernel with AVX-512 VNNI (`vpdpbusd`; default: where the CPU
///     has it, `KernelPath.isVNNIAvailable`); same integers. Ignored by the other paths.
/// - Precondition: `activations.count == n * weights.k`, `output.count == n * weights.m`.
public func wrapGEMM(
  weights: PackedWeights, activations: UnsafeBufferPointer<UInt8>, n: Int, bits: Int, lanes: Int,
  path: KernelPath, vnni: Bool = KernelPath.isVNNIAvailable, output: UnsafeMutableBufferPointer<Int32>
) {
  let m = weights.m
  let k = weights.k
  precondition(n >= 0, "wrapGEMM: n must be >= 0, got \(n)")
  precondition(
    activations.count == n * k,
    "wrapGEMM: activations has \(activations.count) codes but X [n: \(n), k: \(k)] needs \(n * k) "
      + "(W is [m: \(m), k: \(k)])")
  guard hasProducts(m: m, n: n, k: k, output: output, bits: bits, lanes: lanes, path: path) else { return }
  if path == .reference {
    ReferenceKernel.gemm(
      weights: weights, x: activations.baseAddress!, ldx: k, n: n, bits: bits, output: output.baseAddress!)
    return
  }
  // The vector kernels read whole 32-byte blocks, so every activation row needs `paddedK` readable bytes.
  // When k is already a multiple of 32 the caller's rows are used in place; otherwise they are copied once
  // into padded rows (O(n k), small next to the O(m n k) product).
  let kp = weights.paddedK
  if kp == k {
    runVectorPath(
      path, weights: weights, x: activations.baseAddress!, ldx: k, n: n, bits: bits, lanes: lanes, vnni: vnni,
      output: output.baseAddress!)
  } else {
    let padded = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: n * kp)
    defer { padded.deallocate() }
    padded.initialize(repeating: 0)
    let src = activations.baseAddress!
    let dst = padded.baseAddress!
    for i in 0..<n {
      (dst + i * kp).update(from: src + i * k, count: k)
    }
    runVectorPath(
      path, weights: weights, x: UnsafePointer(dst), ldx: kp, n: n, bits: bits, lanes: lanes, vnni: vnni,
      output: output.baseAddress!)
  }
}

/// `wrapGEMM` on activation rows that are already padded, so nothing is copied: row `i` of `X` starts at
/// `activations[i * activationRowStride]` and has `weights.paddedK` readable bytes. Bytes at columns
/// `weights.k ..< weights.paddedK` may hold anything (they meet zero weights), so an im2col buffer with rows of
/// `paddedK` bytes can be passed as is.
///
///     output[i, r] = wrap_b( Σ_{t < k} W[r, t] · activations[i * activationRowStride + t] )
///
/// - Precondition: `activationRowStride >= weights.paddedK`,
///   `activations.count >= (n - 1) * activationRowStride + weights.paddedK` (when n > 0),
///   `output.count == n * weights.m`; `bits`, `lanes`, `path`, `vnni` as for `wrapGEMM(weights:activations:n:...)`.
public func wrapGEMM(
  weights: PackedWeights, activations: UnsafeBufferPointer<UInt8>, n: Int, activationRowStride: Int, bits: Int,
  lanes: Int, path: KernelPath, vnni: Bool = KernelPath.isVNNIAvailable, output: UnsafeMutableBufferPointer<Int32>
) {
  let m = weights.m
  let k = weights.k
  let kp = weights.paddedK
  precondition(n >= 0, "wrapGEMM: n must be >= 0, got \(n)")
  precondition(
    activationRowStride >= kp,
    "wrapGEMM: activationRowStride \(activationRowStride) is below the padded fan-in \(kp) of W [m: \(m), k: \(k)]")
  let needed = n == 0 ? 0 : (n - 1) * activationRowStride + kp
  precondition(
    activations.count >= needed,
    "wrapGEMM: activations has \(activations.count) bytes but X [n: \(n), paddedK: \(kp)] at row stride "
      + "\(activationRowStride) needs \(needed) (W is [m: \(m), k: \(k)])")
  guard hasProducts(m: m, n: n, k: k, output: output, bits: bits, lanes: lanes, path: path) else { return }
  runVectorPath(
    path, weights: weights, x: activations.baseAddress!, ldx: activationRowStride, n: n, bits: bits, lanes: lanes,
    vnni: vnni, output: output.baseAddress!)
}

/// Array form of `wrapGEMM(weights:activations:n:bits:lanes:path:output:)`: returns `output` `[n, m]`.
public func wrapGEMM(
  weights: PackedWeights, activations: [UInt8], n: Int, bits: Int, lanes: Int, path: KernelPath,
  vnni: Bool = KernelPath.isVNNIAvailable
) -> [Int32] {
  precondition(n >= 0, "wrapGEMM: n must be >= 0, got \(n)")
  var output = [Int32](repeating: 0, count: n * weights.m)
  activations.withUnsafeBufferPointer { x in
    output.withUnsafeMutableBufferPointer { c in
      wrapGEMM(weights: weights, activations: x, n: n, bits: bits, lanes: lanes, path: path, vnni: vnni, output: c)
    }
  }
  return output
}

/// Runs a SIMD path on activation rows that each have `weights.paddedK` readable bytes (stride `ldx`).
private func runVectorPath(
  _ path: KernelPath, weights: PackedWeights, x: UnsafePointer<UInt8>, ldx: Int, n: Int, bits: Int, lanes: Int,
  vnni: Bool, output: UnsafeMutablePointer<Int32>
) {
  precondition(!vnni || path != .avx2 || KernelPath.isVNNIAvailable, "wrapGEMM: this CPU has no AVX-512 VNNI")
  switch path {
  case .reference:
    ReferenceKernel.gemm(weights: weights, x: x, ldx: ldx, n: n, bits: bits, output: output)
  case .portable:
    PortableKernel.gemm(weights: weights, x: x, ldx: ldx, n: n, bits: bits, lanes: lanes, output: output)
  case .avx2:
    #if arch(x86_64)
      AVX2Kernel.gemm(weights: weights, x: x, ldx: ldx, n: n, bits: bits, lanes: lanes, vnni: vnni, output: output)
    #else
      preconditionFailure("wrapGEMM: the avx2 path exists only on x86_64")
    #endif
  }
}

/// Sign-extends the low `bits` bits of `z`: wrap_b(z) for 1 <= bits <= 64 (two's complement, any z).
@inlinable @inline(__always)
func kernelWrap(_ z: Int64, bits: Int) -> Int32 {
  let shift = Int64(64 - bits)
  return Int32(truncatingIfNeeded: (z &<< shift) &>> shift)
}

/// The checks both `wrapGEMM` forms share (output size C [n, m], lane width, accumulator bits, kernel path), and
/// their empty cases: false when there is nothing to run, after writing 0 (the empty sum) to every output when
/// k = 0; true when a kernel must run.
private func hasProducts(
  m: Int, n: Int, k: Int, output: UnsafeMutableBufferPointer<Int32>, bits: Int, lanes: Int, path: KernelPath
) -> Bool {
  let outputCount = output.count
  precondition(
    outputCount == n * m,
    "wrapGEMM: output has \(outputCount) elements but C [n: \(n), m: \(m)] needs \(n * m) "
      + "(W [m: \(m), k: \(k)] x X [n: \(n), k: \(k)])")
  precondition([8, 16, 32].contains(lanes), "wrapGEMM: lanes must be 8, 16 or 32, got \(lanes)")
  precondition(
    (1...lanes).contains(bits), "wrapGEMM: accumulator bits must be in 1...\(lanes) for \(lanes)-bit lanes, got \(bits)"
  )
  precondition(path.isAvailable, "wrapGEMM: path \(path) is not available on this CPU; use KernelPath.fastest")
  if m == 0 || n == 0 { return false }
  if k == 0 {
    output.update(repeating: 0)
    return false
  }
  return true
}
