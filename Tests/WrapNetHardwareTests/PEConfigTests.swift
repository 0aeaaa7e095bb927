import Testing
import WrapNet
import WrapNetEngine
import WrapNetHardware

@Suite struct PEConfigTests {
  @Test func widthsFollowTheProducts() throws {
    let pe = try PEConfig(weights: .ternary, activationBits: 2, accumulatorWidth: AccumulatorWidth(bits: 8), mode: .wrap, parallel: 16)
    #expect(pe.maxProduct == 3)
    #expect(pe.productBits == 3)
    #expect(pe.treeLevels == 4)
    let int8 = try PEConfig(weights: .symmetric(bits: 8), activationBits: 8, accumulatorWidth: AccumulatorWidth(bits: 8), mode: .exact, parallel: 1)
    #expect(int8.productBits == 16)  // 127 · 255 = 32385 < 2^15
    #expect(int8.accumulatorBits == 32)
    let clamp = try PEConfig(weights: .binary, activationBits: 2, accumulatorWidth: AccumulatorWidth(bits: 8), mode: .clamp, parallel: 4, fanIn: 1024)
    #expect(clamp.registerBits == 13)  // 3 · 1024 = 3072 < 2^12
    #expect(clamp.outputBits == 8)
  }

  @Test func badConfigurationsAreRefusedWithTheField() {
    #expect(throws: HardwareError.self) { try PEConfig(weights: .binary, activationBits: 0, accumulatorWidth: AccumulatorWidth(bits: 8), mode: .wrap, parallel: 1) }
    #expect(throws: HardwareError.self) { try PEConfig(weights: .binary, activationBits: 2, accumulatorWidth: AccumulatorWidth(bits: 8), mode: .wrap, parallel: 0) }
    #expect(throws: HardwareError.self) {
      try PEConfig(weights: .symmetric(bits: 8), activationBits: 8, accumulatorWidth: AccumulatorWidth(bits: 8), mode: .clamp, parallel: 1, fanIn: 1 << 20)
    }
  }

  /// The software PE: wrap and clamp act on the exact sum; saturate with P = 1 is the engine's sequential
  /// `saturatingSum`; with P > 1 it clamps once per cycle, which differs on a sum that overflows inside a cycle.
  @Test func softwarePEFollowsEachModesDefinition() throws {
    var rng = SplitMix64(seed: 3)
    for _ in 0..<200 {
      let count = Int(rng.next() % 40) + 1
      let terms = (0..<count).map { _ in Int64(rng.next() % 7) - 3 }
      let exact = terms.reduce(0, +)
      for b in [4, 6, 8] {
        let pe = { (m: HardwareAccumulatorMode, p: Int) in
          try PEConfig(weights: .ternary, activationBits: 2, accumulatorWidth: AccumulatorWidth(bits: b), mode: m, parallel: p, fanIn: 64)
        }
        #expect(try pe(.wrap, 3).accumulate(terms) == exact.wrapped(toBits: b))
        #expect(try pe(.clamp, 5).accumulate(terms) == exact.saturated(toBits: b))
        #expect(try pe(.exact, 2).accumulate(terms) == exact)
        let sequential: Int64 = saturatingSum(terms, bits: b)
        #expect(try pe(.saturate, 1).accumulate(terms) == sequential)
      }
    }
    // 7 + 7 - 7 at 4 bits: per product 7 → 7 (clamped from 14) → 0; per cycle of 2: sat(14) = 7 → 0 ... then 7 - 7.
    let s2 = try PEConfig(weights: .symmetric(bits: 4), activationBits: 1, accumulatorWidth: AccumulatorWidth(bits: 4), mode: .saturate, parallel: 2)
    let s1 = try PEConfig(weights: .symmetric(bits: 4), activationBits: 1, accumulatorWidth: AccumulatorWidth(bits: 4), mode: .saturate, parallel: 1)
    #expect(s1.accumulate([7, 7, -7, 0]) == 0)
    #expect(s2.accumulate([7, -7, 7, 0]) == 7)
    #expect(s1.accumulate([7, -7, 7, 0]) == 7)
    #expect(s2.accumulate([7, 7, -7, -7]) == -7)  // cycle sums 14 → 7, then -14 → -7
    #expect(s1.accumulate([7, 7, -7, -7]) == -7)  // 7, 7, 0, -7
    #expect(s2.accumulate([-8, 7, 7, 7]) == 7)  // -1, then 13 → 7
    #expect(s1.accumulate([-8, 7, 7, 7]) == 7)
    #expect(s2.accumulate([7, 7, 7, -8]) == 6)  // 14 → 7, then 7 - 1 = 6
    #expect(s1.accumulate([7, 7, 7, -8]) == -1)  // 7, 7, 7, -1: the order-dependent semantics differ
  }

  /// The trainer's `saturate` simulation adds a convolution's terms in the order input channel, kernel row, kernel
  /// column: the stream order of the layer units, so a P = 1 saturating PE computes exactly what the trainer does.
  @Test func streamOrderIsTheTrainersSaturatingOrder() throws {
    var gen = SeededGenerator(seed: 21)
    let (c, o, k, h, w, n) = (3, 4, 3, 5, 6, 2)
    for stride in [1, 2] {
      let layer = WrapLayer(
        name: "conv", geometry: .conv(inChannels: c, outChannels: o, kernel: k, stride: stride, padding: 1),
        weightFormat: WeightFormat(bits: 2, ternaryThreshold: 0.7), accumulator: Accumulator(width: AccumulatorWidth(bits: 5), mode: .saturate),
        maxInputCode: 3, inputScale: 1, generator: &gen)
      let codes = layer.quantizedWeights().codes  // [O, C, k, k]: (c, ky, kx) per output, the stream order
      var rng = SplitMix64(seed: UInt64(stride))
      let nchw = (0..<(n * c * h * w)).map { _ in Float(rng.next() % 4) }
      let trainer = layer.saturatingSums(Tensor(shape: [n, c, h, w], data: nchw), codes: codes)
      var nhwc = [UInt8](repeating: 0, count: nchw.count)
      for i in 0..<n { for ch in 0..<c { for p in 0..<(h * w) { nhwc[(i * h * w + p) * c + ch] = UInt8(nchw[(i * c + ch) * h * w + p]) } } }
      let rows = NetworkTrace.streamRows(nhwc, count: n, h: h, w: w, c: c, kernel: k, stride: stride, padding: 1)
      let (ho, wo) = ((h + 2 - k) / stride + 1, (w + 2 - k) / stride + 1)
      let pe = try PEConfig(weights: .ternary, activationBits: 2, accumulatorWidth: AccumulatorWidth(bits: 5), mode: .saturate, parallel: 1)
      let fan = c * k * k
      for i in 0..<n {
        for pos in 0..<(ho * wo) {
          for oc in 0..<o {
            let r = i * ho * wo + pos
            let terms = (0..<fan).map { Int64(codes[oc * fan + $0]) * Int64(rows[r * fan + $0]) }
            #expect(pe.accumulate(terms) == Int64(trainer.data[(i * o + oc) * ho * wo + pos]))
          }
        }
      }
    }
  }
}
