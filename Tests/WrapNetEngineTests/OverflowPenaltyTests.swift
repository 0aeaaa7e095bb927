import Testing
import WrapNetEngine

@Suite struct OverflowPenaltyTests {
  @Test func handExample() {
    // b = 4: H = 8, the register holds [-8, 7].
    let p = OverflowPenalty(bits: 4)
    let z: [Float] = [0, 7, 8, 9, -8, -9.5, 20, -100, 7.5]
    // max(|z| - 8, 0): 0, 0, 0, 1, 0, 1.5, 12, 92, 0.
    #expect(p.value(z) == 106.5)
    #expect(p.gradient(z) == [0, 0, 0, 1, 0, -1, 1, -1, 0])
    // Outside [-8, 7]: 8, 9, -9.5, 20, -100, 7.5 (8 wraps to -8 even though it costs nothing).
    #expect(p.overflowCount(z) == 6)
    #expect(p.overflowCount([Int64(7), 8, -8, -9, 1000]) == 3)
    #expect(p.elementValue(-9.5) == 1.5 && p.elementGradient(-9.5) == -1)
    #expect(p.elementGradient(8) == 0 && p.elementGradient(-8) == 0)  // 0 exactly at the boundary
    #expect(p.value([Float]()) == 0 && p.overflowCount([Float]()) == 0)
    #expect(OverflowPenalty(bits: 32).overflowCount([Float(2147483648), Float(-2147483648)]) == 1)
  }

  @Test func gradientAccumulates() {
    let p = OverflowPenalty(bits: 8)
    let z: [Float] = [300, -300, 5, 128, -129]
    var grad: [Float] = [1, 1, 1, 1, 1]
    z.withUnsafeBufferPointer { z in
      grad.withUnsafeMutableBufferPointer { p.accumulateGradient(z, weight: 0.5, into: $0) }
    }
    #expect(grad == [1.5, 0.5, 1, 1, 0.5])
  }

  /// For integer sums, the overflow count is exactly the number of sums that wrap.
  @Test func overflowCountMatchesWrapping() {
    var rng = SplitMix64(seed: 0x5EED_0401)
    for b in [2, 4, 8, 12, 16] {
      let p = OverflowPenalty(bits: b)
      let range = 4 << b
      let z = (0..<5_000).map { _ in Int64.random(in: -Int64(range)...Int64(range), using: &rng) }
      let wrapped = z.filter { $0.wrapped(toBits: b) != $0 }.count
      #expect(p.overflowCount(z) == wrapped)
      #expect(p.overflowCount(z.map(Float.init)) == wrapped)
      #expect(wrapped > 0 && wrapped < z.count)
    }
  }

  /// Central differences in Double of the summed penalty, one coordinate at a time, away from the kinks at ±H.
  @Test func gradientMatchesFiniteDifferences() {
    var rng = SplitMix64(seed: 0x5EED_0402)
    for b in [3, 8, 10] {
      let p = OverflowPenalty(bits: b)
      let h = Double(Int64(1) << (b - 1))
      let step: Float = 1.0 / 16
      var z = (0..<61).map { _ in Float.random(in: Float(-3 * h)...Float(3 * h), using: &rng) }
      // Move samples off the kinks so the central difference does not straddle one.
      for i in z.indices where abs(Double(z[i].magnitude) - h) < 4 * Double(step) { z[i] += 8 * step }
      let analytic = p.gradient(z)
      for i in z.indices {
        var plus = z
        var minus = z
        plus[i] += step
        minus[i] -= step
        let numeric = (p.value(plus) - p.value(minus)) / (2 * Double(step))
        #expect(abs(numeric - Double(analytic[i])) < 1e-6, "b=\(b) z=\(z[i])")
      }
    }
  }
}
