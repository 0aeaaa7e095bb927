/// The oracle: plain loops, exact `Int64` sum, one wrap at the end.
enum ReferenceKernel {
  /// output[i * m + r] = wrap_bits(Σ_{t < k} W[r, t] · x[i * ldx + t]) for i < n, r < m.
  static func gemm(
    weights: PackedWeights, x: UnsafePointer<UInt8>, ldx: Int, n: Int, bits: Int, output: UnsafeMutablePointer<Int32>
  ) {
    let m = weights.m
    let k = weights.k
    let kp = weights.paddedK
    weights.bytes.withUnsafeBufferPointer { wb in
      let w = wb.baseAddress!
      for i in 0..<n {
        let xi = x + i * ldx
        for r in 0..<m {
          var sum: Int64 = 0
          for t in 0..<k {
            sum += Int64(w[PackedWeights.byteOffset(row: r, column: t, paddedK: kp)]) * Int64(xi[t])
          }
          output[i * m + r] = kernelWrap(sum, bits: bits)
        }
      }
    }
  }
}
