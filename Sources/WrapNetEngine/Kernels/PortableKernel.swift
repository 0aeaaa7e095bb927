/// Portable SIMD path: Swift SIMD vectors of 128 bits (`SIMD16<Int8>`, `SIMD8<Int16>`, `SIMD4<Int32>`), which
/// compile to SSE2 / NEON on any CPU without special flags.
///
/// Products and sums are taken in the lane type with wrapping arithmetic (`&*`, `&+`), i.e. mod 2^L; every
/// product and partial sum is only needed mod 2^b with b <= L, so the final `kernelWrap` gives wrap_b of the exact
/// sum. Kernels work on a 4-row weight panel and one activation row at a time (each activation vector serves
/// four rows), 16 codes per step, and only use lane-wise operations that the vector units have (no conversions
/// between lane widths, which Swift lowers to scalar loops): bytes are split into even/odd halves of 16-bit lanes
/// with shifts and masks instead.
enum PortableKernel {
  /// Dispatches on the lane width (8, 16 or 32).
  static func gemm(
    weights: PackedWeights, x: UnsafePointer<UInt8>, ldx: Int, n: Int, bits: Int, lanes: Int,
    output: UnsafeMutablePointer<Int32>
  ) {
    weights.bytes.withUnsafeBufferPointer { wb in
      let w = UnsafeRawPointer(wb.baseAddress!)
      let m = weights.m
      let kp = weights.paddedK
      for m0 in stride(from: 0, to: m, by: PackedWeights.panelRows) {
        let panel = w + m0 * kp
        let rows = min(PackedWeights.panelRows, m - m0)
        for i in 0..<n {
          let xi = UnsafeRawPointer(x + i * ldx)
          let sums: (Int64, Int64, Int64, Int64)
          switch lanes {
          case 8: sums = panelDot8(panel: panel, x: xi, kp: kp)
          case 16: sums = panelDot16(panel: panel, x: xi, kp: kp)
          default: sums = panelDot32(panel: panel, x: xi, kp: kp)
          }
          let out = output + i * m + m0
          out[0] = kernelWrap(sums.0, bits: bits)
          if rows > 1 { out[1] = kernelWrap(sums.1, bits: bits) }
          if rows > 2 { out[2] = kernelWrap(sums.2, bits: bits) }
          if rows > 3 { out[3] = kernelWrap(sums.3, bits: bits) }
        }
      }
    }
  }

  /// Byte offset of the 16 codes of panel row `r` for padded column `t` (a multiple of 16).
  @inline(__always)
  private static func panelOffset(row r: Int, column t: Int) -> Int {
    (t / 32) * 128 + r * 32 + (t & 16)
  }

  /// 8-bit lanes: activation bytes reinterpreted as Int8 are congruent to x mod 2^8, so `&*` gives w·x mod 2^8.
  @inline(__always)
  private static func panelDot8(panel: UnsafeRawPointer, x: UnsafeRawPointer, kp: Int) -> (Int64, Int64, Int64, Int64) {
    var a0 = SIMD16<Int8>()
    var a1 = SIMD16<Int8>()
    var a2 = SIMD16<Int8>()
    var a3 = SIMD16<Int8>()
    for t in stride(from: 0, to: kp, by: 16) {
      let xv = x.loadUnaligned(fromByteOffset: t, as: SIMD16<Int8>.self)
      a0 &+= xv &* panel.loadUnaligned(fromByteOffset: panelOffset(row: 0, column: t), as: SIMD16<Int8>.self)
      a1 &+= xv &* panel.loadUnaligned(fromByteOffset: panelOffset(row: 1, column: t), as: SIMD16<Int8>.self)
      a2 &+= xv &* panel.loadUnaligned(fromByteOffset: panelOffset(row: 2, column: t), as: SIMD16<Int8>.self)
      a3 &+= xv &* panel.loadUnaligned(fromByteOffset: panelOffset(row: 3, column: t), as: SIMD16<Int8>.self)
    }
    return (
      Int64(a0.wrappedSum()), Int64(a1.wrappedSum()), Int64(a2.wrappedSum()), Int64(a3.wrappedSum())
    )
  }

  /// Even and odd bytes of 16 codes as 16-bit lanes: activations zero-extended, weights sign-extended.
  @inline(__always)
  private static func split(_ v: SIMD8<Int16>, signed: Bool) -> (even: SIMD8<Int16>, odd: SIMD8<Int16>) {
    if signed { return ((v &<< 8) &>> 8, v &>> 8) }
    return (v & 0x00FF, (v &>> 8) & 0x00FF)
  }

  /// The wide-lane kernels' shared loop: for every 16 columns, the even and odd products w·x of each of the four
  /// panel rows (exact in Int16: |w| <= 127, x <= 255) go to `add`, which sums them into that row's accumulator.
  @inline(__always)
  private static func panelProducts<Accumulator>(
    panel: UnsafeRawPointer, x: UnsafeRawPointer, kp: Int, zero: Accumulator,
    add: (inout Accumulator, _ even: SIMD8<Int16>, _ odd: SIMD8<Int16>) -> Void
  ) -> (Accumulator, Accumulator, Accumulator, Accumulator) {
    var (a0, a1, a2, a3) = (zero, zero, zero, zero)
    @inline(__always)
    func step(_ acc: inout Accumulator, _ xs: (even: SIMD8<Int16>, odd: SIMD8<Int16>), _ offset: Int) {
      let ws = split(panel.loadUnaligned(fromByteOffset: offset, as: SIMD8<Int16>.self), signed: true)
      add(&acc, xs.even &* ws.even, xs.odd &* ws.odd)
    }
    for t in stride(from: 0, to: kp, by: 16) {
      let xs = split(x.loadUnaligned(fromByteOffset: t, as: SIMD8<Int16>.self), signed: false)
      step(&a0, xs, panelOffset(row: 0, column: t))
      step(&a1, xs, panelOffset(row: 1, column: t))
      step(&a2, xs, panelOffset(row: 2, column: t))
      step(&a3, xs, panelOffset(row: 3, column: t))
    }
    return (a0, a1, a2, a3)
  }

  /// 16-bit lanes: the products are added into Int16 accumulators, which wrap mod 2^16.
  @inline(__always)
  private static func panelDot16(panel: UnsafeRawPointer, x: UnsafeRawPointer, kp: Int) -> (Int64, Int64, Int64, Int64)
  {
    let a = panelProducts(panel: panel, x: x, kp: kp, zero: SIMD8<Int16>()) { acc, even, odd in acc &+= even &+ odd }
    return (Int64(a.0.wrappedSum()), Int64(a.1.wrappedSum()), Int64(a.2.wrappedSum()), Int64(a.3.wrappedSum()))
  }

  /// 32-bit lanes: the two Int16 halves of every 32-bit lane of a product vector are sign-extended (shifts on the
  /// `SIMD4<Int32>` view) and added into Int32 accumulators, which wrap mod 2^32.
  @inline(__always)
  private static func panelDot32(panel: UnsafeRawPointer, x: UnsafeRawPointer, kp: Int) -> (Int64, Int64, Int64, Int64)
  {
    @inline(__always)
    func widenAdd(_ acc: inout SIMD4<Int32>, _ p: SIMD8<Int16>) {
      let q = unsafeBitCast(p, to: SIMD4<Int32>.self)
      acc &+= ((q &<< 16) &>> 16) &+ (q &>> 16)
    }
    let a = panelProducts(panel: panel, x: x, kp: kp, zero: SIMD4<Int32>()) { acc, even, odd in
      widenAdd(&acc, even)
      widenAdd(&acc, odd)
    }
    return (Int64(a.0.wrappedSum()), Int64(a.1.wrappedSum()), Int64(a.2.wrappedSum()), Int64(a.3.wrappedSum()))
  }
}
