import Testing
import WrapNetEngine

@Suite struct WrappingTests {
  // MARK: - Exhaustive

  /// Every Int16 input, every b in 2...12, on Int32, Int64 and Int, against the definition in 64-bit integers.
  @Test(arguments: 2...12)
  func integerWrapExhaustiveOverInt16(bits b: Int) {
    var firstFailure: String?
    for v in Int16.min...Int16.max {
      let expected = referenceWrap(Int64(v), bits: b)
      let a = Int64(Int32(v).wrapped(toBits: b))
      let c = Int64(v).wrapped(toBits: b)
      let d = Int64(Int(v).wrapped(toBits: b))
      if a != expected || c != expected || d != expected {
        firstFailure = "b=\(b) z=\(hex(v)): Int32 \(hex(a)) Int64 \(hex(c)) Int \(hex(d)), expected \(hex(expected))"
        break
      }
    }
    #expect(firstFailure == nil, "\(firstFailure ?? "")")
  }

  /// Every integer in [-2^20, 2^20] as a Float, every b in 2...12, against the definition. The reference walks
  /// the integers upward and steps the expected register value by one, jumping from 2^(b-1) - 1 to -2^(b-1), so
  /// the debug-build sweep stays cheap; its start value comes from `referenceWrap`.
  @Test(.tags(.slow), arguments: 2...12)
  func floatWrapExhaustiveOverIntegers(bits b: Int) {
    var firstFailure: String?
    let half = Int64(1) << (b - 1)
    var expected = referenceWrap(-(1 << 20), bits: b)
    // A while loop over Int: iterating a ClosedRange<Int32> is unspecialized generic code in debug builds.
    var v = -(1 << 20)
    while v <= 1 << 20 {
      let got = Float(v).wrapped(toBits: b)
      if got != Float(expected) {
        firstFailure = "b=\(b) z=\(hex(Int32(v))): got \(hex(got)), expected \(hex(expected))"
        break
      }
      expected = expected == half - 1 ? -half : expected + 1
      v += 1
    }
    #expect(firstFailure == nil, "\(firstFailure ?? "")")
  }

  // MARK: - Boundaries and random samples up to 32 bits

  @Test func boundariesAllWidths() {
    for b in 2...32 {
      let half = Int64(1) << (b - 1)
      let modulus = half * 2
      let edges: [Int64] = [
        0, 1, -1, half - 1, -half, half, -half - 1, modulus, -modulus, modulus + 1, 3 * modulus - 1,
        Int64(Int32.max), Int64(Int32.min), Int64.max, Int64.min, Int64.max - 1, Int64.min + 1,
      ]
      for z in edges {
        let expected = referenceWrap(z, bits: b)
        #expect(z.wrapped(toBits: b) == expected, "b=\(b) z=\(hex(z))")
        #expect(Int(z).wrapped(toBits: b) == Int(expected), "b=\(b) z=\(hex(z))")
        if let z32 = Int32(exactly: z) {
          #expect(Int64(z32.wrapped(toBits: b)) == expected, "b=\(b) z=\(hex(z32))")
        }
      }
      // Wrapping maps max + 1 to min and min - 1 to max.
      #expect((half).wrapped(toBits: b) == -half)
      #expect((-half - 1).wrapped(toBits: b) == half - 1)
    }
    // b = 32 is the identity on Int32.
    for z in [Int32.min, Int32.min + 1, -1, 0, 1, Int32.max - 1, Int32.max] {
      #expect(z.wrapped(toBits: 32) == z, "z=\(hex(z))")
    }
    #expect(Int32.max.wrapped(toBits: 8) == -1)
    #expect(Int32.min.wrapped(toBits: 8) == 0)
  }

  @Test func randomSamplesAllWidths() {
    var rng = SplitMix64(seed: 0x5EED_0001)
    var firstFailure: String?
    for _ in 0..<200_000 {
      let b = Int.random(in: 2...32, using: &rng)
      let z64 = Int64(bitPattern: rng.next())
      let z32 = Int32(truncatingIfNeeded: z64 >> Int64.random(in: 0...40, using: &rng))
      let expected64 = referenceWrap(z64, bits: b)
      let expected32 = referenceWrap(Int64(z32), bits: b)
      if z64.wrapped(toBits: b) != expected64 || Int(z64).wrapped(toBits: b) != Int(expected64)
        || Int64(z32.wrapped(toBits: b)) != expected32
      {
        firstFailure = "b=\(b) z64=\(hex(z64)) z32=\(hex(z32))"
        break
      }
    }
    #expect(firstFailure == nil, "\(firstFailure ?? "")")
  }

  /// Random Floats (integers up to 2^24 for every b, and fractional values) against an exact remainder reference.
  @Test func floatWrapRandomAndFractional() {
    var rng = SplitMix64(seed: 0x5EED_0002)
    var firstFailure: String?
    for i in 0..<200_000 {
      let b = Int.random(in: 2...32, using: &rng)
      let z: Float
      if i % 2 == 0 {
        z = Float(Int32.random(in: -(1 << 24) + 1...(1 << 24) - 1, using: &rng))
      } else {
        // Fractional and huge values: a random sign, exponent and mantissa.
        let exponent = Int.random(in: -20...60, using: &rng)
        z = Float(
          sign: Bool.random(using: &rng) ? .minus : .plus, exponent: exponent,
          significand: Float.random(in: 1..<2, using: &rng))
      }
      // Reference: truncatingRemainder is exact; shift the remainder into [-H, H).
      let modulus = Double(Int64(1) << b)
      var r = Double(z).truncatingRemainder(dividingBy: modulus)
      if r >= modulus / 2 { r -= modulus }
      if r < -modulus / 2 { r += modulus }
      let got = z.wrapped(toBits: b)
      if Double(got) != r || got >= Float(modulus / 2) || got < -Float(modulus / 2) {
        firstFailure = "b=\(b) z=\(hex(z)): got \(hex(got)), expected \(r)"
        break
      }
      if i % 2 == 0, got != Float(referenceWrap(Int64(z), bits: b)) {
        firstFailure = "b=\(b) integer z=\(hex(z)): got \(hex(got))"
        break
      }
    }
    #expect(firstFailure == nil, "\(firstFailure ?? "")")
    #expect(Float.infinity.wrapped(toBits: 8).isNaN)
    #expect(Float(128).wrapped(toBits: 8) == -128)
    #expect(Float(-128).wrapped(toBits: 8) == -128)
    #expect(Float(127.5).wrapped(toBits: 8) == 127.5)
    #expect(Float(128.5).wrapped(toBits: 8) == -127.5)
  }

  /// Every binade of Float (subnormals to the largest finite value), both signs, every b: odd tails, the largest
  /// significand and exact halves, against the exact remainder reference.
  @Test func floatWrapEveryBinade() {
    var firstFailure: String?
    sweep: for b in 2...32 {
      let modulus = Double(Int64(1) << b)
      for exponent in -149...127 {
        for significand: Float in [1, 1.5, 1.25, 1.75, Float(2).nextDown, 1 + .ulpOfOne] {
          for sign in [FloatingPointSign.plus, .minus] {
            let z = Float(sign: sign, exponent: exponent, significand: significand)
            guard z.isFinite else { continue }
            var r = Double(z).truncatingRemainder(dividingBy: modulus)
            if r >= modulus / 2 { r -= modulus }
            if r < -modulus / 2 { r += modulus }
            let got = z.wrapped(toBits: b)
            if Double(got) != r {
              firstFailure = "b=\(b) z=\(hex(z)): got \(hex(got)), expected \(r)"
              break sweep
            }
          }
        }
      }
    }
    #expect(firstFailure == nil, "\(firstFailure ?? "")")
    #expect(Float.greatestFiniteMagnitude.wrapped(toBits: 32) == 0)
    #expect(Float.nan.wrapped(toBits: 8).isNaN && (-Float.infinity).wrapped(toBits: 8).isNaN)
  }

  // MARK: - Accumulation properties

  /// Terms like those a kernel adds: weight codes (binary, ternary, symmetric k-bit) times unsigned activation codes.
  /// With `nonnegative`, weights are drawn from 0...qmax so the sum grows and wraps many times.
  static func products(count: Int, nonnegative: Bool, using rng: inout SplitMix64) -> [Int64] {
    let weightBits = Int.random(in: 1...8, using: &rng)  // 1: binary, 2: ternary, else symmetric k-bit
    let activationBits = Int.random(in: 1...8, using: &rng)
    let maxActivation = Int64(1 << activationBits) - 1
    return (0..<count).map { _ in
      var w: Int64
      switch weightBits {
      case 1: w = Bool.random(using: &rng) ? 1 : -1
      case 2: w = Int64.random(in: -1...1, using: &rng)
      default:
        let qmax = Int64(1 << (weightBits - 1)) - 1
        w = Int64.random(in: -qmax...qmax, using: &rng)
      }
      if nonnegative { w = w.magnitude == 0 ? 0 : Int64(w.magnitude) }
      return w * Int64.random(in: 0...maxActivation, using: &rng)
    }
  }

  /// Wrapping adds in Int8, Int16, Int32 and Int64 lanes, in shuffled orders, then wrapping the lane to b bits,
  /// equal wrap_b(exact sum); so does wrapping after every add, and the Float training path.
  @Test func laneAccumulationEqualsWrappedExactSum() {
    var rng = SplitMix64(seed: 0x5EED_0003)
    var firstFailure: String?
    var manyWraps = 0
    trials: for trial in 0..<400 {
      let count = Int.random(in: 1...(trial % 10 == 0 ? 2_000 : 150), using: &rng)
      var terms = Self.products(count: count, nonnegative: trial % 2 == 0, using: &rng)
      let exact = terms.reduce(0, +)
      if exact.magnitude >= 100 * 256 { manyWraps += 1 }
      // Wrapping after every add is checked for a few widths per trial (all 31 would make the debug test slow).
      let stepBits = [8, Int.random(in: 2...32, using: &rng), Int.random(in: 2...16, using: &rng)]
      for order in 0..<3 {
        if order > 0 { terms.shuffle(using: &rng) }
        var lane8: Int8 = 0
        var lane16: Int16 = 0
        var lane32: Int32 = 0
        var lane64: Int64 = 0
        var stepwise: [Int64] = [0, 0, 0]
        var floatStepwise: Float = 0
        for t in terms {
          lane8 &+= Int8(truncatingIfNeeded: t)
          lane16 &+= Int16(truncatingIfNeeded: t)
          lane32 &+= Int32(truncatingIfNeeded: t)
          lane64 &+= t
          for j in 0..<3 { stepwise[j] = (stepwise[j] + t).wrapped(toBits: stepBits[j]) }
          // |acc| <= 2^15 and |t| <= 127 * 255 < 2^15 keep every Float step exact.
          floatStepwise = (floatStepwise + Float(t)).wrapped(toBits: stepBits[2])
        }
        for b in 2...32 {
          let expected = referenceWrap(exact, bits: b)
          var lanes = [Int64(Int32(lane32).wrapped(toBits: b)), lane64.wrapped(toBits: b)]
          if b <= 16 { lanes.append(Int64(Int32(lane16).wrapped(toBits: b))) }
          if b <= 8 { lanes.append(Int64(Int32(lane8).wrapped(toBits: b))) }
          if order == 0 { lanes.append(wrappingSum(terms, bits: b)) }
          if lanes.contains(where: { $0 != expected }) {
            firstFailure = "trial \(trial) order \(order) b=\(b): lanes \(lanes.map(hex)), expected \(hex(expected))"
            break trials
          }
        }
        for j in 0..<3 where stepwise[j] != referenceWrap(exact, bits: stepBits[j]) {
          firstFailure = "trial \(trial) stepwise b=\(stepBits[j]): \(hex(stepwise[j])) vs exact \(hex(exact))"
          break trials
        }
        if floatStepwise != Float(referenceWrap(exact, bits: stepBits[2])) {
          firstFailure = "trial \(trial) Float b=\(stepBits[2]): \(hex(floatStepwise)) vs exact \(hex(exact))"
          break trials
        }
      }
    }
    #expect(firstFailure == nil, "\(firstFailure ?? "")")
    // Many sums overflow an 8-bit accumulator 100+ times, so the property is exercised, not vacuous.
    #expect(manyWraps > 50)
  }

  /// A sum that wraps hundreds of times: 4000 terms of 127 * 255 in an 8-bit accumulator.
  @Test func sumThatOverflowsManyTimes() {
    let terms = [Int32](repeating: 127 * 255, count: 4_000)
    let exact = Int64(127 * 255) * 4_000
    var lane8: Int8 = 0
    for t in terms { lane8 &+= Int8(truncatingIfNeeded: t) }
    #expect(Int64(lane8) == referenceWrap(exact, bits: 8))
    #expect(wrappingSum(terms, bits: 8) == referenceWrap(exact, bits: 8))
    #expect(exact / 256 > 100_000)
  }
}
