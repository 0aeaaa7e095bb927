import Foundation
import Testing
import WrapNet
import WrapNetEngine

/// The training loop's fast paths against their plain references: the accumulator applied to a whole run of sums
/// against `Accumulator.apply` / `derivative` element by element, the channel-blocked weight quantizer against the
/// engine's quantizer, and whole training steps of every zoo model on 1 and 2 threads.
@Suite(.serialized) struct TrainingFastPathTests {
  static let counts = [1, 2, 3, 5, 7, 15, 16, 17, 31, 33, 63, 65, 127, 129, 255, 1023]
  static let accumulators: [Accumulator] = AccumulatorMode.allCases.flatMap { mode in
    [3, 8, 12, 32].map { Accumulator(width: AccumulatorWidth(bits: $0), mode: mode, slope: mode == .cyclic ? 2 : 3) }
  }

  /// Integer sums around and beyond the b-bit range, the range edges and the cyclic kinks among them.
  static func sums(count: Int, bits: Int, seed: UInt64) -> [Float] {
    var rng = SeededGenerator(seed: seed)
    let half = Double(1 << min(bits - 1, 24))
    let edges: [Float] = [0, Float(half), Float(-half), Float(half - 1), Float(half + 1), Float(-half - 1)]
    return (0..<count).map { i in
      i % 5 == 4 ? edges[i % edges.count] : Float((Double.random(in: -3 * half...3 * half, using: &rng)).rounded())
    }
  }

  @Test(arguments: accumulators)
  func applyScaledEqualsApplyPerElement(acc: Accumulator) {
    for count in Self.counts {
      let z = Self.sums(count: count, bits: acc.bits, seed: UInt64(count))
      let (scale, shift): (Float, Float) = (0.37, -1.25)
      for identity in [false, true] {
        var out = [Float](repeating: .nan, count: count)
        z.withUnsafeBufferPointer { zp in
          out.withUnsafeMutableBufferPointer { op in
            acc.applyScaled(zp.baseAddress!, count: count, scale: scale, shift: shift, identity: identity,
                            into: op.baseAddress!)
          }
        }
        for i in 0..<count {
          let y = identity ? z[i] : acc.apply(z[i])
          let expected = y * scale + shift
          if out[i].bitPattern != expected.bitPattern {
            Issue.record("\(acc) identity \(identity) count \(count) z[\(i)] = \(z[i]): 0x\(String(out[i].bitPattern, radix: 16)), expected 0x\(String(expected.bitPattern, radix: 16))")
            return
          }
        }
      }
    }
  }

  @Test(arguments: accumulators)
  func scaledDerivativeEqualsDerivativePerElement(acc: Accumulator) {
    for count in Self.counts {
      let z = Self.sums(count: count, bits: acc.bits, seed: UInt64(count) + 100)
      var rng = SeededGenerator(seed: UInt64(count))
      let g = rng.uniformArray(count: count, low: -2, high: 2)
      var out = [Float](repeating: .nan, count: count)
      z.withUnsafeBufferPointer { zp in
        g.withUnsafeBufferPointer { gp in
          out.withUnsafeMutableBufferPointer { op in
            acc.scaledDerivative(gp.baseAddress!, sums: zp.baseAddress!, count: count, scale: 0.75, into: op.baseAddress!)
          }
        }
      }
      for i in 0..<count {
        let expected = g[i] * 0.75 * acc.derivative(z[i])
        if out[i].bitPattern != expected.bitPattern {
          Issue.record("\(acc) count \(count) z[\(i)] = \(z[i]): \(out[i]), expected \(expected)")
          return
        }
      }
    }
  }

  /// `WeightFormat.quantize` (the C loops, channel blocks on the workers) equals one call of the engine's quantizer
  /// bit for bit: odd shapes (row counts around the groups of four, fan-ins from 1 to 20,000), and rows holding the
  /// special values: zeros of both signs, an all-zero row, NaN, values on the rounding halfway points of the k-bit
  /// codes and on the ternary thresholds' neighbourhood.
  @Test(arguments: [
    WeightFormat.binary, .ternary(threshold: 0.7), .ternary(threshold: 0), .symmetric(bits: 2), .symmetric(bits: 4),
    .symmetric(bits: 8),
  ])
  func blockedQuantizeEqualsEngineQuantizer(format: WeightFormat) {
    func bits(_ v: [Float]) -> [UInt32] { v.map(\.bitPattern) }
    for (outChannels, fanIn) in [(1, 1), (3, 5), (5, 9), (17, 33), (65, 1023), (129, 7), (1023, 65), (5, 20_000)] {
      var rng = SeededGenerator(seed: UInt64(outChannels * 7 + fanIn))
      var w = rng.uniformArray(count: outChannels * fanIn, low: -1, high: 1)
      if outChannels >= 5 && fanIn >= 5 {
        for i in 0..<fanIn { w[i] = 0 }  // an all-zero row
        w[fanIn] = -0.0
        w[fanIn + 1] = 0
        w[2 * fanIn] = .nan
        // Row 3: halfway points of the 4-bit codes (max |w| = 1, scale 1/7): w = (k + 0.5)/7.
        w[3 * fanIn] = 1
        for i in 1..<min(fanIn, 8) { w[3 * fanIn + i] = (Float(i) - 0.5) / 7 * (i % 2 == 0 ? 1 : -1) }
        // Row 4: equal magnitudes, so the ternary threshold 0.7·mean lies below all of them.
        for i in 0..<fanIn { w[4 * fanIn + i] = i % 2 == 0 ? 0.25 : -0.25 }
      }
      let q: QuantizedWeights
      switch format {
      case .binary: q = BinaryQuantizer().quantize(w, outChannels: outChannels, fanIn: fanIn)
      case .ternary(let t): q = TernaryQuantizer(thresholdFactor: t).quantize(w, outChannels: outChannels, fanIn: fanIn)
      case .symmetric(let k): q = SymmetricQuantizer(bits: k).quantize(w, outChannels: outChannels, fanIn: fanIn)
      }
      for threads in [1, 2] {
        setBLASThreads(threads)
        let fast = format.quantize(w, outChannels: outChannels)
        #expect(bits(fast.codes) == bits(q.codes.map { Float($0) }), "\(format) [\(outChannels), \(fanIn)] codes, \(threads) threads")
        #expect(bits(fast.scales) == bits(q.scales), "\(format) [\(outChannels), \(fanIn)] scales, \(threads) threads")
      }
      setBLASThreads(2)
    }
  }

  /// A few training steps of each zoo model (cyclic 8-bit) leave bit-identical weights and losses on 1 and 2 threads.
  @Test(arguments: ["cnn", "resnet20"])
  func trainingStepsIdenticalForAnyThreadCount(architecture: String) throws {
    let size = architecture == "cnn" ? 28 : 32
    let channels = architecture == "cnn" ? 1 : 3
    var rng = SeededGenerator(seed: 7)
    let count = 24
    let images = (0..<(count * channels * size * size)).map { _ in UInt8(rng.int(below: 256)) }
    let labels = (0..<count).map { _ in UInt8(rng.int(below: 10)) }
    let data = ImageDataset(images: images, labels: labels, channels: channels, height: size, width: size, classCount: 10)
    func run(threads: Int) throws -> ([String: Tensor], [Double]) {
      setBLASThreads(threads)
      defer { setBLASThreads(2) }
      let config = ModelConfig(architecture: architecture, inputChannels: channels, inputHeight: size, inputWidth: size)
      var options = TrainingOptions()
      options.epochs = 1
      options.batchSize = 8
      options.seed = 3
      options.threads = threads
      var t = try Trainer(model: try WrapModel(config: config, seed: 3), options: options, train: data)
      var losses: [Double] = []
      for batch in t.pipeline.epoch(0) {
        let r = t.trainStep(batch)
        losses.append(r.loss + r.penalty)
      }
      return (Checkpoint.tensors(of: &t.model), losses)
    }
    let (a, lossesA) = try run(threads: 1)
    let (b, lossesB) = try run(threads: 2)
    #expect(lossesA == lossesB, "\(architecture): losses \(lossesA) vs \(lossesB)")
    #expect(a.keys.sorted() == b.keys.sorted())
    for (name, t) in a {
      let same = t == b[name]
      #expect(same, "\(architecture): \(name) differs between 1 and 2 threads")
    }
  }
}
