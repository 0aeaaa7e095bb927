import Testing
import WrapNetEngine

@Suite struct QuantizerTests {
  static func randomWeights(outChannels: Int, fanIn: Int, using rng: inout SplitMix64) -> [Float] {
    (0..<(outChannels * fanIn)).map { _ in
      Float.random(in: -1...1, using: &rng) * Float.random(in: 0...2, using: &rng)
    }
  }

  /// Rounding half away from zero written without `rounded(_:)`: sign(q) * floor(|q| + 1/2), in Double.
  static func roundHalfAway(_ q: Float) -> Double {
    let magnitude = (Double(q.magnitude) + 0.5).rounded(.down)
    return q < 0 ? -magnitude : magnitude
  }

  // MARK: - Binary

  @Test func binaryHandExample() {
    let w: [Float] = [0.5, -1.0, 0, 2.5, -0.0, -0.25, 0.25, 0.75]
    let q = BinaryQuantizer().quantize(w, outChannels: 2, fanIn: 4)
    #expect(q.codes == [1, -1, 1, 1, 1, -1, 1, 1])  // 0 and -0 map to +1
    #expect(q.scales == [1.0, 0.3125])  // (0.5 + 1 + 0 + 2.5) / 4, (0 + 0.25 + 0.25 + 0.75) / 4
    #expect(q.dequantized() == [1, -1, 1, 1, 0.3125, -0.3125, 0.3125, 0.3125])
    #expect(BinaryQuantizer.code(0) == 1 && BinaryQuantizer.code(-0.0) == 1 && BinaryQuantizer.code(-1e-30) == -1)
    let zero = BinaryQuantizer().quantize([0, 0, 0], outChannels: 1, fanIn: 3)
    #expect(zero.codes == [1, 1, 1] && zero.scales == [0])
  }

  // MARK: - Ternary

  @Test func ternaryHandExample() {
    // Row 0: mean |w| = 2.6 / 6, Δ = 0.7 * 2.6 / 6 ≈ 0.30333: 0.3 and -0.1 fall inside, 0.9, -0.8, 0.5 survive.
    // Row 1: all zero: Δ = 0, codes 0, scale 1.
    let w: [Float] = [0.9, -0.1, 0.3, -0.8, 0.0, 0.5, 0, 0, 0, 0, 0, 0]
    let t = TernaryQuantizer()
    #expect(t.thresholdFactor == 0.7)
    let q = t.quantize(w, outChannels: 2, fanIn: 6)
    #expect(q.codes == [1, 0, 0, -1, 0, 1, 0, 0, 0, 0, 0, 0])
    let deltas = t.thresholds(w, outChannels: 2, fanIn: 6)
    #expect(abs(Double(deltas[0]) - 0.7 * 2.6 / 6) < 1e-6 && deltas[1] == 0)
    #expect(abs(Double(q.scales[0]) - (0.9 + 0.8 + 0.5) / 3) < 1e-6)
    #expect(q.scales[1] == 1)
  }

  @Test func ternaryThresholdIsStrict() {
    // t = 1: Δ = mean |w| = 1 for [3, -1, 0, 0]; -1 is not < -Δ so it becomes 0; scale = 3.
    let q = TernaryQuantizer(thresholdFactor: 1).quantize([3, -1, 0, 0], outChannels: 1, fanIn: 4)
    #expect(q.codes == [1, 0, 0, 0] && q.scales == [3])
    // Nothing survives in [2, 2, 2, 2] with t = 1 (Δ = 2, 2 > 2 is false): scale falls back to Δ = 2.
    let none = TernaryQuantizer(thresholdFactor: 1).quantize([2, -2, 2, -2], outChannels: 1, fanIn: 4)
    #expect(none.codes == [0, 0, 0, 0] && none.scales == [2])
    // t = 0: every nonzero weight survives, zeros stay 0.
    let all = TernaryQuantizer(thresholdFactor: 0).quantize([0.1, -0.2, 0, 0.3], outChannels: 1, fanIn: 4)
    #expect(all.codes == [1, -1, 0, 1])
    #expect(abs(Double(all.scales[0]) - 0.2) < 1e-7)
    #expect(TernaryQuantizer.code(0.5, threshold: 0.5) == 0 && TernaryQuantizer.code(-0.5, threshold: 0.5) == 0)
    #expect(TernaryQuantizer.code(0.51, threshold: 0.5) == 1 && TernaryQuantizer.code(-0.51, threshold: 0.5) == -1)
  }

  // MARK: - Symmetric k-bit

  @Test func symmetricHandExampleRoundsHalfAwayFromZero() {
    // k = 3: qmax = 3, max |w| = 3, scale = 1; 1.5 -> 2, -0.5 -> -1, 2.5 -> 3 (not 2: half away, not to even).
    let s = SymmetricQuantizer(bits: 3)
    #expect(s.qmax == 3 && s.codeRange == -3...3)
    let q = s.quantize([3, 1.5, -0.5, 2.5, -3, 0.49], outChannels: 1, fanIn: 6)
    #expect(q.codes == [3, 2, -1, 3, -3, 0] && q.scales == [1])
    // k = 2: qmax = 1, scale = 0.7, -0.35 / 0.7 = -0.5 exactly -> -1.
    let q2 = SymmetricQuantizer(bits: 2).quantize([0.7, -0.35, 0.175, 0], outChannels: 1, fanIn: 4)
    #expect(q2.codes == [1, -1, 0, 0] && q2.scales == [0.7])
    // All-zero row: scale 1, codes 0. k = 8: qmax = 127, scale 31.75 / 127 = 0.25; -63.5 -> -64, 0.5 -> 1.
    let q8 = SymmetricQuantizer(bits: 8).quantize([0, 0, 0, 31.75, -15.875, 0.125], outChannels: 2, fanIn: 3)
    #expect(q8.codes == [0, 0, 0, 127, -64, 1] && q8.scales == [1, 0.25])
    // Codes clamp to ±qmax and NaN gives 0.
    #expect(s.code(10, scale: 1) == 3 && s.code(-10, scale: 1) == -3 && s.code(.nan, scale: 1) == 0)
  }

  // MARK: - Properties of all weight quantizers

  static let weightQuantizers: [any WeightQuantizer] =
    [BinaryQuantizer(), TernaryQuantizer(), TernaryQuantizer(thresholdFactor: 0.3)]
    + (2...8).map { SymmetricQuantizer(bits: $0) }

  @Test func codesInRangeScalesMatchDefinitionAndIdempotent() {
    var rng = SplitMix64(seed: 0x5EED_0301)
    for quantizer in Self.weightQuantizers {
      for (outChannels, fanIn) in [(1, 1), (3, 5), (7, 33), (16, 129)] {
        var w = Self.randomWeights(outChannels: outChannels, fanIn: fanIn, using: &rng)
        if outChannels > 1 { for i in 0..<fanIn { w[i] = 0 } }  // an all-zero row
        let q = quantizer.quantize(w, outChannels: outChannels, fanIn: fanIn)
        #expect(q.codes.count == w.count && q.scales.count == outChannels)
        #expect(q.codes.allSatisfy { quantizer.codeRange.contains($0) }, "\(quantizer)")
        for c in 0..<outChannels {
          let row = w[(c * fanIn)..<((c + 1) * fanIn)].map { Double($0) }
          let codes = q.codes[(c * fanIn)..<((c + 1) * fanIn)]
          let meanAbs = row.map(abs).reduce(0, +) / Double(fanIn)
          let expectedScale: Double
          switch quantizer {
          case is BinaryQuantizer:
            expectedScale = meanAbs
            #expect(zip(row, codes).allSatisfy { $1 == ($0 >= 0 ? 1 : -1) })
          case let t as TernaryQuantizer:
            let delta = Double(Float(Double(t.thresholdFactor) * meanAbs))
            let expectedCodes = row.map { $0 > delta ? Int8(1) : ($0 < -delta ? -1 : 0) }
            #expect(Array(codes) == expectedCodes, "\(t) row \(c)")
            let survivors = zip(row, codes).filter { $1 != 0 }.map { abs($0.0) }
            expectedScale =
              survivors.isEmpty ? (delta > 0 ? delta : 1) : survivors.reduce(0, +) / Double(survivors.count)
          case let s as SymmetricQuantizer:
            let largest = row.map(abs).max()!
            expectedScale = largest > 0 ? largest / Double(s.qmax) : 1
            let scale = q.scales[c]
            let expectedCodes = row.map { w in
              Int8(min(max(Self.roundHalfAway(Float(w) / scale), -Double(s.qmax)), Double(s.qmax)))
            }
            #expect(Array(codes) == expectedCodes, "\(s) row \(c)")
            // The largest weight maps to ±qmax.
            #expect(codes.contains { $0.magnitude == s.qmax.magnitude } || largest == 0)
          default:
            Issue.record("unexpected quantizer \(quantizer)")
            expectedScale = .nan
          }
          #expect(abs(Double(q.scales[c]) - expectedScale) <= 1e-6 * max(expectedScale, 1), "\(quantizer) row \(c)")
        }
        // Idempotence: quantizing the dequantized weights reproduces the codes.
        let again = quantizer.quantize(q.dequantized(), outChannels: outChannels, fanIn: fanIn)
        #expect(again.codes == q.codes, "\(quantizer) [\(outChannels), \(fanIn)]")
        // Fake quantization is dequantize(quantize(w)).
        #expect(quantizer.fakeQuantized(w, outChannels: outChannels, fanIn: fanIn) == q.dequantized())
      }
    }
  }

  @Test func weightSTEIsIdentity() {
    var rng = SplitMix64(seed: 0x5EED_0302)
    let g = (0..<37).map { _ in Float.random(in: -3...3, using: &rng) }
    for quantizer in Self.weightQuantizers {
      #expect(quantizer.backward(gradient: g) == g)
    }
  }

  // MARK: - Unsigned activations

  @Test func activationHandExamples() {
    // k = 2, c = 3: three steps of 1; 0.5 -> 1, 1.5 -> 2, 2.5 -> 3 (round half away from zero).
    let a = UnsignedActivationQuantizer(bits: 2, clip: 3)
    #expect(a.maxCode == 3 && a.levels == 3 && a.stepSize == 1)
    #expect(a.codes([-1, 0, 0.49, 0.5, 1.5, 2.5, 2.9, 3, 100, .nan, .infinity]) == [0, 0, 0, 1, 2, 3, 3, 3, 3, 0, 3])
    #expect(a.dequantized([0, 1, 2, 3]) == [0, 1, 2, 3])
    // k = 1: a single threshold at c / 2.
    let b = UnsignedActivationQuantizer(bits: 1, clip: 2)
    #expect(b.codes([0.99, 1, 5]) == [0, 1, 1])
    // Just below a tie rounds down (floor(q + 0.5) would wrongly give 1 for q = 0.5 - 2^-25).
    let unit = UnsignedActivationQuantizer(bits: 1, clip: 1)
    #expect(unit.code(Float(0.5).nextDown) == 0 && unit.code(0.5) == 1 && unit.code(Float(0.5).nextUp) == 1)
    let four = UnsignedActivationQuantizer(bits: 4, clip: 15)
    for j in 0..<15 {
      let tie = Float(j) + 0.5
      #expect(four.code(tie) == UInt8(j + 1) && four.code(tie.nextUp) == UInt8(j + 1))
      #expect(four.code(tie.nextDown) == UInt8(j))
    }
    // k = 8, c = 1: codes 0...255.
    let e = UnsignedActivationQuantizer(bits: 8, clip: 1)
    #expect(e.maxCode == 255 && e.code(1) == 255 && e.code(0.5) == 128 && e.dequantize(255) == 1)
    #expect(e.fakeQuantized([2, -1]) == [1, 0])
  }

  /// Many inputs per (k, c) against the definition in Double; at an exact-in-Double tie the code must round away
  /// from zero, and where Float and Double quotients could disagree within rounding, either neighbour is accepted.
  @Test(arguments: 1...8)
  func activationCodesAgainstReference(bits k: Int) {
    var firstFailure: String?
    for clip: Float in [1, 2, 0.5, 6, 0.3, 10] {
      let a = UnsignedActivationQuantizer(bits: k, clip: clip)
      let levels = Double((1 << k) - 1)
      var inputs: [Float] = (0..<20_000).map { i in Float(-0.25 + Double(i) / 20_000 * (Double(clip) * 1.5 + 0.5)) }
      // Exact half-step points (ties) for power-of-two clips, and the code points themselves.
      for j in 0...((1 << k) - 1) {
        inputs.append(Float(Double(j) * Double(clip) / levels))
        inputs.append(Float((Double(j) + 0.5) * Double(clip) / levels))
      }
      for x in inputs {
        let clamped = min(max(Double(x), 0), Double(clip))
        let quotient = clamped * levels / Double(clip)
        let floorQ = quotient.rounded(.down)
        let expected = quotient - floorQ >= 0.5 ? floorQ + 1 : floorQ
        let got = a.code(x)
        // Float rounds the product and the quotient: two relative errors of at most ulpOfOne / 2 each.
        let nearTie = abs(quotient - floorQ - 0.5) <= Double(Float.ulpOfOne) * max(quotient, 1)
        let ok = Double(got) == expected || (nearTie && (Double(got) == floorQ || Double(got) == floorQ + 1))
        if !ok || got > a.maxCode {
          firstFailure = "k=\(k) c=\(clip) x=\(hex(x)): got \(got), expected \(expected)"
          break
        }
        // The dequantized value is code * c / (2^k - 1), within one rounding.
        let value = a.fakeQuantize(x)
        if abs(Double(value) - Double(got) * Double(clip) / levels) > Double(clip) * 1e-6 {
          firstFailure = "k=\(k) c=\(clip) x=\(hex(x)): value \(value)"
          break
        }
      }
      // Idempotence: every code survives a round trip through its value.
      for code in 0...Int(a.maxCode) where a.code(a.dequantize(UInt8(code))) != UInt8(code) {
        firstFailure = "k=\(k) c=\(clip): code \(code) does not round-trip"
      }
      // Array versions equal the scalar ones.
      let arrayCodes = a.codes(inputs)
      if arrayCodes != inputs.map(a.code) || a.dequantized(arrayCodes) != arrayCodes.map(a.dequantize) {
        firstFailure = "k=\(k) c=\(clip): array versions differ from scalar ones"
      }
    }
    #expect(firstFailure == nil, "\(firstFailure ?? "")")
  }

  @Test func activationClippedSTE() {
    let a = UnsignedActivationQuantizer(bits: 4, clip: 2)
    let x: [Float] = [-1, -0.0, 0, 0.3, 1.999, 2, 2.0001, 7, .nan, -.infinity]
    let g: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    // Passes where 0 <= x <= c (both ends included, -0 counts as 0), zero outside and for NaN.
    #expect(a.backward(gradient: g, input: x) == [0, 2, 3, 4, 5, 6, 0, 0, 0, 0])
    var rng = SplitMix64(seed: 0x5EED_0303)
    for _ in 0..<5_000 {
      let xi = Float.random(in: -3...5, using: &rng)
      let gi = Float.random(in: -1...1, using: &rng)
      #expect(a.backward(gradient: gi, input: xi) == ((xi >= 0 && xi <= 2) ? gi : 0))
    }
  }
}
