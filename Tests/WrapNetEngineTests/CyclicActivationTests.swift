import Testing
import WrapNetEngine

@Suite struct CyclicActivationTests {
  /// The definition, literally, in Double: Q = k H / (k + 1); m, k H - k m, or -k H - k m.
  static func reference(_ m: Double, bits: Int, slope k: Double) -> Double {
    let h = Double(Int64(1) << (bits - 1))
    let q = k * h / (k + 1)
    if abs(m) <= q { return m }
    return m > q ? k * h - k * m : -k * h - k * m
  }

  /// The 2^b-periodic extension written on [0, 2^b) instead of on the wrapped range:
  /// t = z mod 2^b; t on [0, Q] rises, on (Q, 2^b - Q) falls with slope -k through 0 at t = H, on [2^b - Q, 2^b) rises.
  static func periodic(_ z: Double, bits: Int, slope k: Double) -> Double {
    let modulus = Double(Int64(1) << bits)
    let h = modulus / 2
    let q = k * h / (k + 1)
    var t = z.truncatingRemainder(dividingBy: modulus)
    if t < 0 { t += modulus }
    if t <= q { return t }
    if t < modulus - q { return k * (h - t) }
    return t - modulus
  }

  static let slopes: [Float] = [1, 2, 4, 0.5]

  /// All Int8 inputs and +128 (the wrapped range is [-128, 128]), b = 8, slopes 1, 2, 4, 0.5.
  @Test(arguments: slopes)
  func exhaustiveEightBit(slope k: Float) {
    let f = CyclicActivation(width: AccumulatorWidth(bits: 8), slope: k)
    var firstFailure: String?
    for m in Int(Int8.min)...128 {
      let expected = Float(Self.reference(Double(m), bits: 8, slope: Double(k)))
      let got = f(Float(m))
      // Every value here is exact in Float (k * (128 - m) with k a power of two or 1/2), so compare exactly.
      if got != expected || f(Float(-m)) != -got {
        firstFailure = "k=\(k) m=\(hex(Int32(m))): got \(hex(got)), expected \(hex(expected))"
        break
      }
    }
    #expect(firstFailure == nil, "\(firstFailure ?? "")")
  }

  @Test func thresholdAndWrapPoint() {
    for b in [2, 3, 4, 8, 12, 16, 24, 32] {
      for k in Self.slopes + [3, 7, 0.25, 1.5] {
        let f = CyclicActivation(width: AccumulatorWidth(bits: b), slope: k)
        let h = Float(sign: .plus, exponent: b - 1, significand: 1)
        #expect(f.halfRange == h)
        #expect(abs(Double(f.threshold) - Double(k) * Double(h) / Double(k + 1)) <= Double(f.threshold.ulp))
        // Continuity across the wrap point: both ends map to 0, so f ∘ wrap_b has no jump at ±H.
        #expect(f(h) == 0 && f(-h) == 0, "b=\(b) k=\(k)")
        #expect(f.derivative(h) == -k && f.derivative(-h) == -k)
        #expect(f.derivative(0) == 1)
      }
    }
  }

  /// Continuity at ±Q: the value at Q and both one-sided neighbours agree with Q within the slope times the step;
  /// exactly at Q where both pieces are exactly representable.
  @Test func continuityAtThreshold() {
    for b in [4, 8, 12, 16] {
      for k in Self.slopes + [3, 7, 0.25, 1.5] {
        let f = CyclicActivation(width: AccumulatorWidth(bits: b), slope: k)
        let q = f.threshold
        for side in [Float(1), -1] {
          let at = f(side * q)
          let left = f(side * q.nextDown)
          let right = f(side * q.nextUp)
          let tolerance = (k + 1) * q.ulp * 2
          #expect(abs(at - side * q) == 0, "b=\(b) k=\(k): f(±Q) = \(at)")
          #expect(abs(left - side * q) <= tolerance && abs(right - side * q) <= tolerance, "b=\(b) k=\(k)")
          // The falling piece evaluated at Q meets the rising one.
          let falling = k * (f.halfRange - q)
          #expect(abs(falling - q) <= tolerance, "b=\(b) k=\(k)")
          if Float(Int(q)) == q && Double(k) * (Double(f.halfRange) - Double(q)) == Double(q) {
            #expect(falling == q)
          }
        }
        #expect(f.derivative(q) == 1 && f.derivative(-q) == 1)
        #expect(f.derivative(q.nextUp) == -k && f.derivative(-q.nextUp) == -k)
      }
    }
    // Q = 64, 96, 112 are integers for k = 1, 3, 7 at b = 8: both pieces give exactly Q there.
    #expect(CyclicActivation(width: AccumulatorWidth(bits: 8), slope: 1).threshold == 64)
    #expect(CyclicActivation(width: AccumulatorWidth(bits: 8), slope: 3)(Float(96)) == 96)
    #expect(CyclicActivation(width: AccumulatorWidth(bits: 8), slope: 3)(Float(97)) == 93)
  }

  /// f(wrap_b(z)) equals the independently written periodic extension, for integer z spanning many periods.
  @Test func periodicity() {
    var rng = SplitMix64(seed: 0x5EED_0201)
    for b in [2, 3, 5, 8, 10, 12] {
      let modulus = 1 << b
      for k in Self.slopes + [3] {
        let f = CyclicActivation(width: AccumulatorWidth(bits: b), slope: k)
        var firstFailure: String?
        var zs = Array((-3 * modulus)...(3 * modulus))
        for _ in 0..<2_000 { zs.append(Int.random(in: -(1 << 23)...(1 << 23), using: &rng)) }
        for z in zs {
          let got = f(Float(z).wrapped(toBits: b))
          let expected = Float(Self.periodic(Double(z), bits: b, slope: Double(k)))
          if got != expected {
            firstFailure = "b=\(b) k=\(k) z=\(hex(Int32(z))): got \(hex(got)), expected \(hex(expected))"
            break
          }
        }
        #expect(firstFailure == nil, "\(firstFailure ?? "")")
      }
    }
  }

  @Test func oddSymmetry() {
    var rng = SplitMix64(seed: 0x5EED_0202)
    for b in [3, 8, 16, 32] {
      for k in Self.slopes + [3, 0.3, 10] {
        let f = CyclicActivation(width: AccumulatorWidth(bits: b), slope: k)
        for _ in 0..<2_000 {
          let m = Float.random(in: -f.halfRange...f.halfRange, using: &rng)
          #expect(f(-m) == -f(m), "b=\(b) k=\(k) m=\(hex(m))")
          #expect(f.derivative(-m) == f.derivative(m))
        }
      }
    }
  }

  /// Central differences in Double of the Float function, sampled away from the kinks at ±Q.
  @Test func derivativeMatchesFiniteDifferences() {
    var rng = SplitMix64(seed: 0x5EED_0203)
    for b in [4, 8, 12] {
      for k in Self.slopes + [3, 0.3] {
        let f = CyclicActivation(width: AccumulatorWidth(bits: b), slope: k)
        let step: Float = 1.0 / 64
        var checked = 0
        while checked < 500 {
          let m = Float.random(in: -f.halfRange + 1...f.halfRange - 1, using: &rng)
          guard abs(abs(m) - f.threshold) > 4 * step else { continue }
          let numeric = (Double(f(m + step)) - Double(f(m - step))) / (2 * Double(step))
          #expect(abs(numeric - Double(f.derivative(m))) <= 1e-3 * Double(k + 1), "b=\(b) k=\(k) m=\(m)")
          checked += 1
        }
      }
    }
  }

  /// The exact integer variant agrees with the Float one (and the Double reference) for integer slopes.
  @Test func integerVariant() {
    for b in [2, 3, 8, 12, 16] {
      let h = 1 << (b - 1)
      for k in [1, 2, 3, 4, 5, 7, 100] {
        let f = CyclicActivation(width: AccumulatorWidth(bits: b), slope: Float(k))
        #expect(f.integerSlope == Int64(k))
        var firstFailure: String?
        for m in -h...h {
          let exact = f(Int32(m))
          let expected = Self.reference(Double(m), bits: b, slope: Double(k))
          if Double(exact) != expected || Float(exact) != f(Float(m)) {
            firstFailure =
              "b=\(b) k=\(k) m=\(hex(Int32(m))): integer \(exact), expected \(expected), float \(f(Float(m)))"
            break
          }
        }
        #expect(firstFailure == nil, "\(firstFailure ?? "")")
      }
    }
    // b = 32: the whole Int32 range is inside [-2^31, 2^31].
    let f32 = CyclicActivation(width: AccumulatorWidth(bits: 32), slope: 3)
    #expect(f32(Int32.min) == 0)
    #expect(f32(Int32.max) == 3)
    #expect(f32(Int32(0)) == 0 && f32(Int32(-5)) == -5)
    #expect(CyclicActivation(width: AccumulatorWidth(bits: 8), slope: 0.5).integerSlope == nil)
    #expect(CyclicActivation(width: AccumulatorWidth(bits: 8), slope: 2.5).integerSlope == nil)
  }
}
