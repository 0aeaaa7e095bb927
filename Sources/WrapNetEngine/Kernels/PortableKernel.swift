/// Portable SIMD path: Swift `SIMD16` vectors of the lane type, so it compiles to SSE/NEON on any CPU.
///
/// Products and sums are taken in `Lane` with wrapping arithmetic (`&*`, `&+`), i.e. mod 2^L; since every
/// product and every partial sum is only needed mod 2^b with b <= L, the final `kernelWrap` gives wrap_b of the
/// exact sum. A 4-row x 1-column block reuses each activation vector for the four rows of a weight panel.
enum PortableKernel {
  static func gemm<Lane: FixedWidthInteger & SIMDScalar>(
    weights: PackedWeights, x: UnsafePointer<UInt8>, ldx: Int, n: Int, bits: Int, lane: Lane.Type,
    output: UnsafeMutablePointer<Int32>
  ) {
    let m = weights.m
    let kp = weights.paddedK
    weights.bytes.withUnsafeBufferPointer { wb in
      let w = UnsafeRawPointer(wb.baseAddress!)
      for m0 in stride(from: 0, to: m, by: PackedWeights.panelRows) {
        let panel = w + m0 * kp
        let rows = min(PackedWeights.panelRows, m - m0)
        for i in 0..<n {
          let xi = UnsafeRawPointer(x + i * ldx)
          var acc0 = SIMD16<Lane>()
          var acc1 = SIMD16<Lane>()
          var acc2 = SIMD16<Lane>()
          var acc3 = SIMD16<Lane>()
          var block = panel
          for t in stride(from: 0, to: kp, by: 16) {
            // Two 16-byte halves per 32-byte block; the panel block holds 4 rows of 32 codes.
            let half = t & 16
            let xv = SIMD16<Lane>(truncatingIfNeeded: xi.loadUnaligned(fromByteOffset: t, as: SIMD16<UInt8>.self))
            let w0 = SIMD16<Lane>(truncatingIfNeeded: block.loadUnaligned(fromByteOffset: half, as: SIMD16<Int8>.self))
            let w1 = SIMD16<Lane>(
              truncatingIfNeeded: block.loadUnaligned(fromByteOffset: 32 + half, as: SIMD16<Int8>.self))
            let w2 = SIMD16<Lane>(
              truncatingIfNeeded: block.loadUnaligned(fromByteOffset: 64 + half, as: SIMD16<Int8>.self))
            let w3 = SIMD16<Lane>(
              truncatingIfNeeded: block.loadUnaligned(fromByteOffset: 96 + half, as: SIMD16<Int8>.self))
            acc0 &+= xv &* w0
            acc1 &+= xv &* w1
            acc2 &+= xv &* w2
            acc3 &+= xv &* w3
            if half == 16 { block += 4 * 32 }
          }
          let out = output + i * m + m0
          let sums = (acc0.wrappedSum(), acc1.wrappedSum(), acc2.wrappedSum(), acc3.wrappedSum())
          out[0] = kernelWrap(Int64(truncatingIfNeeded: sums.0), bits: bits)
          if rows > 1 { out[1] = kernelWrap(Int64(truncatingIfNeeded: sums.1), bits: bits) }
          if rows > 2 { out[2] = kernelWrap(Int64(truncatingIfNeeded: sums.2), bits: bits) }
          if rows > 3 { out[3] = kernelWrap(Int64(truncatingIfNeeded: sums.3), bits: bits) }
        }
      }
    }
  }
}
