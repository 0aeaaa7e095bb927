import Testing
import WrapNetEngine

@Suite struct SaturationTests {
  @Test(arguments: 2...12)
  func integerSaturateExhaustiveOverInt16(bits b: Int) {
    var firstFailure: String?
    for v in Int16.min...Int16.max {
      let expected = referenceSaturate(Int64(v), bits: b)
      let a = Int64(Int32(v).saturated(toBits: b))
      let c = Int64(v).saturated(toBits: b)
      let d = Int64(Int(v).saturated(toBits: b))
      if a != expected || c != expected || d != expected {
        firstFailure = "b=\(b) z=\(hex(v)): Int32 \(hex(a)) Int64 \(hex(c)) Int \(hex(d)), expected \(hex(expected))"
        break
      }
    }
    #expect(firstFailure == nil, "\(firstFailure ?? "")")
  }

  @Test(.tags(.slow), arguments: 2...12)
  func floatSaturateExhaustiveOverIntegers(bits b: Int) {
    var firstFailure: String?
    // A while loop: iterating a ClosedRange is unspecialized generic code in debug builds.
    var v = -(1 << 20)
    while v <= 1 << 20 {
      let got = Float(v).saturated(toBits: b)
      let expected = Float(referenceSaturate(Int64(v), bits: b))
      if got != expected {
        firstFailure = "b=\(b) z=\(hex(Int32(v))): got \(hex(got)), expected \(hex(expected))"
        break
      }
      v += 1
    }
    #expect(firstFailure == nil, "\(firstFailure ?? "")")
  }

  @Test func boundariesAndRandomAllWidths() {
    var rng = SplitMix64(seed: 0x5EED_0101)
    for b in 2...32 {
      let half = Int64(1) << (b - 1)
      let edges: [Int64] = [0, 1, -1, half - 1, half, -half, -half - 1, Int64(Int32.max), Int64(Int32.min), .max, .min]
      var samples = edges
      for _ in 0..<2_000 { samples.append(Int64(bitPattern: rng.next()) >> Int64.random(in: 0...62, using: &rng)) }
      for z in samples {
        let expected = referenceSaturate(z, bits: b)
        #expect(z.saturated(toBits: b) == expected, "b=\(b) z=\(hex(z))")
        #expect(Int(z).saturated(toBits: b) == Int(expected), "b=\(b) z=\(hex(z))")
        if let z32 = Int32(exactly: z) {
          #expect(Int64(z32.saturated(toBits: b)) == expected, "b=\(b) z=\(hex(z32))")
        }
      }
      // Float: the lower bound is exact; the upper bound is the largest Float <= 2^(b-1) - 1.
      let top = Float.greatestFiniteMagnitude.saturated(toBits: b)
      #expect(Double(top) <= Double(half - 1) && Double(top.nextUp) > Double(half - 1), "b=\(b) top=\(hex(top))")
      #expect((-Float.greatestFiniteMagnitude).saturated(toBits: b) == -Float(half))
      #expect(Float(0.5).saturated(toBits: b) == 0.5)
    }
    for z in [Int32.min, -1, 0, Int32.max] { #expect(z.saturated(toBits: 32) == z) }
    #expect(Int32.max.saturated(toBits: 8) == 127 && Int32.min.saturated(toBits: 8) == -128)
    #expect(Float(200.5).saturated(toBits: 8) == 127 && Float(-128.5).saturated(toBits: 8) == -128)
    #expect(Float.nan.saturated(toBits: 8).isNaN)
  }

  /// A straightforward sequential reference: clamp after every add, in order.
  static func referenceSequential(_ terms: [Int32], bits: Int) -> Int64 {
    var acc: Int64 = 0
    for t in terms { acc = referenceSaturate(acc + Int64(t), bits: bits) }
    return acc
  }

  @Test func saturatingSumDependsOnOrderAndDiffersFromSaturatedExactSum() {
    // 100 + 100 clamps to 127, then -100 gives 27; the other order never overflows and gives 100.
    let a: [Int32] = [100, 100, -100]
    let b: [Int32] = [-100, 100, 100]
    #expect(saturatingSum(a, bits: 8) == 27)
    #expect(saturatingSum(b, bits: 8) == 100)
    let exact = a.reduce(0, +)
    #expect(exact.saturated(toBits: 8) == 100)
    #expect(saturatingSum(a, bits: 8) != exact.saturated(toBits: 8))
    // The same terms as Int64 and Float behave identically.
    #expect(saturatingSum(a.map(Int64.init), bits: 8) == 27)
    #expect(saturatingSum(a.map(Float.init), bits: 8) == 27)
    // Wrapping is order-independent on the same terms.
    #expect(wrappingSum(a, bits: 8) == wrappingSum(b, bits: 8))
    // Huge Int64 terms saturate instead of overflowing Int64.
    #expect(saturatingSum([Int64.max, Int64.max, -5], bits: 8) == 122)
    #expect(saturatingSum([Int64.min, 3], bits: 8) == -125)
  }

  @Test func saturatingSumRandomAgainstReference() {
    var rng = SplitMix64(seed: 0x5EED_0102)
    var orderDependent = 0
    for trial in 0..<2_000 {
      let b = Int.random(in: 2...16, using: &rng)
      let half = Int32(1) << (b - 1)
      var terms = (0..<Int.random(in: 1...60, using: &rng)).map { _ in Int32.random(in: -half...half, using: &rng) }
      let first = saturatingSum(terms, bits: b)
      #expect(Int64(first) == Self.referenceSequential(terms, bits: b), "trial \(trial)")
      #expect(saturatingSum(terms.map(Int64.init), bits: b) == Int64(first))
      #expect(saturatingSum(terms.map(Float.init), bits: b) == Float(first))
      terms.shuffle(using: &rng)
      if saturatingSum(terms, bits: b) != first { orderDependent += 1 }
    }
    // Random sums clip often, so reordering changes many results.
    #expect(orderDependent > 100)
  }

  @Test func saturatingSumEqualsExactSumWhenNothingOverflows() {
    var rng = SplitMix64(seed: 0x5EED_0103)
    for _ in 0..<2_000 {
      let b = Int.random(in: 4...16, using: &rng)
      let bound = Int32(1) << (b - 1)
      var terms = (0..<Int.random(in: 1...40, using: &rng)).map { _ in
        Int32.random(in: -(bound / 64)...(bound / 64), using: &rng)
      }
      for _ in 0..<3 {
        terms.shuffle(using: &rng)
        // Only check orders whose every partial sum stays in range.
        var partial: Int64 = 0
        let inRange = terms.allSatisfy { t in
          partial += Int64(t)
          return partial >= -Int64(bound) && partial < Int64(bound)
        }
        guard inRange else { continue }
        let exact = terms.reduce(Int64(0)) { $0 + Int64($1) }
        #expect(Int64(saturatingSum(terms, bits: b)) == exact)
        #expect(Int64(wrappingSum(terms, bits: b)) == exact)
      }
    }
  }
}
