import Foundation
import Testing
import WrapNet
import WrapNetEngine

/// Engine vs trainer: converted models of every zoo architecture reproduce the trainer's evaluation bit for bit.
@Suite struct EngineExportTests {
  struct Case: CustomTestStringConvertible, Sendable {
    var architecture: String
    var mode: AccumulatorMode
    var bits: Int
    var weightBits: Int
    var activationBits: Int = 2
    /// `--width-divisor`.
    var widthDivisor: Int = 1
    /// resnet20: first convolutions that read their block input re-coded (`ModelConfig.residualInputClips`).
    var inputClips = false
    var testDescription: String {
      "\(architecture)\(widthDivisor == 1 ? "" : " ÷\(widthDivisor)") \(mode.rawValue)\(bits) w\(weightBits) a\(activationBits)"
        + (inputClips ? " input clips" : "")
    }
  }

  // 8-bit cases use wider activation or weight codes so that sums really leave the 8-bit range.
  static let cases: [Case] = [
    Case(architecture: "mlp", mode: .wrap, bits: 8, weightBits: 1, activationBits: 4),
    Case(architecture: "mlp", mode: .cyclic, bits: 8, weightBits: 2, activationBits: 4),
    Case(architecture: "mlp", mode: .clamp, bits: 8, weightBits: 4),
    Case(architecture: "mlp", mode: .wrap, bits: 4, weightBits: 2),
    Case(architecture: "mlp", mode: .cyclic, bits: 4, weightBits: 1),
    Case(architecture: "mlp", mode: .clamp, bits: 4, weightBits: 1),
    Case(architecture: "mlp", mode: .exact, bits: 32, weightBits: 1),
    Case(architecture: "mlp", mode: .exact, bits: 32, weightBits: 3, activationBits: 4),
    Case(architecture: "cnn", mode: .wrap, bits: 8, weightBits: 4, activationBits: 3),
    Case(architecture: "cnn", mode: .cyclic, bits: 8, weightBits: 3, activationBits: 4),
    Case(architecture: "cnn", mode: .clamp, bits: 8, weightBits: 5, activationBits: 3),
    Case(architecture: "cnn", mode: .cyclic, bits: 4, weightBits: 4),
    Case(architecture: "cnn", mode: .clamp, bits: 4, weightBits: 2),
    Case(architecture: "cnn", mode: .exact, bits: 32, weightBits: 2, activationBits: 3),
    // `avoid` runs on the plain wrap-around engine: its weight constraint means the sums never overflow.
    Case(architecture: "mlp", mode: .avoid, bits: 8, weightBits: 2),
    Case(architecture: "cnn", mode: .avoid, bits: 6, weightBits: 3, activationBits: 3),
    // Residual blocks (tables and thresholds indexed by the shortcut code) and sum pooling.
    Case(architecture: "resnet20", mode: .cyclic, bits: 6, weightBits: 1),
    // 3-bit codes sum to 7 · 64 = 448 over the 8×8 plane: the sum pool is folded into the logits layer.
    Case(architecture: "resnet20", mode: .wrap, bits: 8, weightBits: 2, activationBits: 3),
    Case(architecture: "resnet20", mode: .wrap, bits: 8, weightBits: 3),
    Case(architecture: "resnet20", mode: .clamp, bits: 6, weightBits: 2),
    Case(architecture: "resnet20", mode: .exact, bits: 32, weightBits: 1),
    Case(architecture: "vgg-small", mode: .cyclic, bits: 8, weightBits: 2),
    Case(architecture: "vgg-small", mode: .exact, bits: 32, weightBits: 1),
    // Binary and ternary weights on wrap-around layers run the lookup kernel on the avx2 path: codes <= 7, <= 3
    // and <= 1, convolutions as implicit GEMMs on per-pixel tables, linear layers on rows.
    Case(architecture: "cnn", mode: .cyclic, bits: 8, weightBits: 1, activationBits: 3),
    Case(architecture: "vgg-small", mode: .wrap, bits: 8, weightBits: 1),
    Case(architecture: "resnet20", mode: .wrap, bits: 5, weightBits: 1, activationBits: 1),
    Case(architecture: "resnet20", mode: .wrap, bits: 5, weightBits: 2),
    Case(architecture: "vgg-small", mode: .cyclic, bits: 6, weightBits: 2, activationBits: 3),
    Case(architecture: "cnn", mode: .cyclic, bits: 5, weightBits: 2),
    // Accumulators wider than a table: the engine evaluates the trainer's Float functions per value.
    Case(architecture: "mlp", mode: .cyclic, bits: 14, weightBits: 8, activationBits: 4),
    Case(architecture: "mlp", mode: .wrap, bits: 14, weightBits: 7, activationBits: 4),
    Case(architecture: "cnn", mode: .clamp, bits: 13, weightBits: 8, activationBits: 4),
    Case(architecture: "resnet20", mode: .cyclic, bits: 13, weightBits: 8),
    // Blocks whose first convolution reads its input re-coded (`recode` steps, one of them the identity and left
    // out), with tables, thresholds and Float outputs.
    Case(architecture: "resnet20", mode: .cyclic, bits: 8, weightBits: 1, activationBits: 3, inputClips: true),
    Case(architecture: "resnet20", mode: .exact, bits: 32, weightBits: 1, activationBits: 3, inputClips: true),
    Case(architecture: "resnet20", mode: .wrap, bits: 13, weightBits: 8, inputClips: true),
  ]

  /// Input clips of `inputClips` cases: coarser and finer than the activation clip 2, and 2 itself once.
  static let inputClipValues: [Float] = [2.5, 3.1, 1.7, 4.4, 2, 5.3, 3.6, 6.2, 4.8]

  /// Every kernel path and lane width: identical predictions, bit-equal logits, identical accumulators.
  @Test(.tags(.engineVsTrainer), arguments: cases) func engineMatchesTrainer(_ c: Case) throws {
    var model = try EngineFixture.trained(
      c.architecture, mode: c.mode, bits: c.bits, weightBits: c.weightBits, activationBits: c.activationBits,
      residualInputClips: c.inputClips ? Self.inputClipValues : nil)
    let engine = try EngineFixture.engine(model)
    let data = EngineFixture.images(["mlp"].contains(c.architecture) ? 3 : 2, for: c.architecture)
    if c.mode == .avoid {
      #expect(model.evaluate(data).overflowRateLowBit == 0, "avoid must never overflow")
    } else if c.mode != .exact {
      // The test only means something if the accumulators really overflow.
      let report = model.evaluate(data)
      #expect(report.overflowRateLowBit > 0, "no low-bit overflow in \(c.testDescription)")
    }
    for options in EngineFixture.configurations(bits: c.bits) {
      let r = try EngineComparison.run(engine: engine, trainer: model, dataset: data, options: options)
      let label = "\(options.path) lanes \(options.lanes.map(String.init) ?? "default")"
      #expect(r.images == data.count)
      #expect(r.mismatches == 0, "\(label): \(r.firstDifference ?? "")")
      #expect(r.logitMismatches == 0, "\(label): \(r.firstDifference ?? "")")
      #expect(r.accumulatorMismatches == 0, "\(label): \(r.firstDifference ?? "")")
      #expect(r.exactSumMismatches == 0, "\(label): \(r.firstDifference ?? "")")
      if c.mode == .exact {
        #expect(r.accumulatorsCompared == 0)
        #expect(r.exactSumsCompared > 0)
      } else {
        #expect(r.accumulatorsCompared > 0)
      }
    }
    if c.inputClips {
      // One recode step per block whose map of the input codes is not the identity.
      let fine = ActivationCodes(bits: c.activationBits, clip: 2).scale
      let changed = Self.inputClipValues.filter { clip in
        let q = UnsignedActivationQuantizer(bits: c.activationBits, clip: clip)
        return (0..<(1 << c.activationBits)).contains { Int(q.code(Float($0) * fine)) != $0 }
      }
      #expect(changed.count >= 7)
      #expect(engine.operations.filter { if case .recode = $0 { true } else { false } }.count == changed.count)
    }
    let lookupLayers = engine.denseLayers.compactMap { layer -> (DenseLayer, CodeArcs?)? in
      if case .lookup(_, let arcs) = layer.kernel { return (layer, arcs) } else { return nil }
    }
    if KernelPath.isAVX2Available && c.weightBits <= 2 && c.activationBits <= 3 && c.bits <= 8
      && (c.mode == .wrap || c.mode == .cyclic)
    {
      #expect(!lookupLayers.isEmpty, "binary and ternary low-bit layers should run the lookup kernel on avx2")
    }
    // The trainer's tables (cyclic activation or wrap, batch norm, quantizer, shortcut) are nested arcs per level,
    // so the fused epilogue computes them with byte compares (`CodeArcs`; the comparisons above ran them).
    // Residual tables with more than 4 shortcut codes (3-bit activations) keep their look-ups.
    for (layer, arcs) in lookupLayers {
      switch layer.output {
      case .table: #expect(arcs != nil, "\(layer.name): table not converted to arcs")
      case .residualTable(_, let shortcut) where shortcut.codes <= 4:
        #expect(arcs != nil, "\(layer.name): table not converted to arcs")
      default: break
      }
    }
    if c.mode != .exact && c.bits > PackedModelFormat.maxTableBits {
      #expect(engine.denseLayers.contains { if case .float = $0.output { return true } else { return false } })
    }
    // Threads split the batch into fixed chunks; the results must not change.
    let single = try engine.run(
      pixels: data.images, count: data.count, options: InferenceOptions(path: .fastest, recordAccumulators: true))
    let threaded = try engine.run(
      pixels: data.images, count: data.count,
      options: InferenceOptions(path: .fastest, threads: 3, chunkSize: 1, recordAccumulators: true))
    #expect(threaded.logits.map(\.bitPattern) == single.logits.map(\.bitPattern))
    #expect(threaded.accumulators == single.accumulators)
    // A runner keeps its plan and scratch memory between runs: the same results every time.
    let runner = try InferenceRunner(model: engine, options: InferenceOptions(path: .fastest, recordAccumulators: true))
    for _ in 0..<2 { #expect(runner.run(pixels: data.images, count: data.count) == single) }
    // Options that rule a layer's own kernel out give the byte GEMM with the options' path and lanes.
    let portable = try InferenceRunner(model: engine, options: InferenceOptions(path: .portable))
    #expect(portable.layerKernels.allSatisfy { if case .gemm(_, .portable) = $0 { true } else { false } })
    if KernelPath.isAVX2Available, c.bits <= 8, c.mode == .wrap || c.mode == .cyclic {
      let wide = try InferenceRunner(model: engine, options: InferenceOptions(path: .avx2, lanes: 16))
      #expect(!wide.layerKernels.contains { if case .lookup = $0 { true } else { false } })
    }
    // Without recording, the lookup kernel writes only the next codes (no sums): the same logits.
    let plain = try engine.run(pixels: data.images, count: data.count, options: InferenceOptions(path: .fastest))
    #expect(plain.logits.map(\.bitPattern) == single.logits.map(\.bitPattern))
  }

  /// Threshold search against brute force on the real maps of an exact model's hidden layers.
  @Test func thresholdsMatchBruteForce() throws {
    var model = try EngineFixture.trained("mlp", mode: .exact, bits: 32, weightBits: 2, activationBits: 3)
    // Make some channels descending (negative gamma) so both directions are exercised.
    var layers: [(WrapLayer, BatchNorm, ActivationCodes)] = []
    for i in model.network.layers.indices {
      if var bn = model.network.layers[i].layer as? BatchNorm {
        for ch in stride(from: 0, to: bn.channels, by: 3) { bn.gamma.data[ch] = -bn.gamma.data[ch] }
        model.network.layers[i].layer = bn
      }
    }
    let l = model.network.layers
    for i in 0..<(l.count - 2) {
      if let w = l[i].layer as? WrapLayer, let bn = l[i + 1].layer as? BatchNorm, let a = l[i + 2].layer as? ActivationCodes {
        layers.append((w, bn, a))
      }
    }
    #expect(layers.count == 4)
    var descendingSeen = 0
    for (w, bn, act) in layers {
      let scales = w.quantizedWeights().scales
      for ch in stride(from: 0, to: w.geometry.outChannels, by: 97) {
        let f = EngineExport.codeFunction(
          accumulator: w.accumulator, scale: scales[ch] * w.inputScale, batchNorm: bn, activation: act, channel: ch)
        let descending = bn.gamma.data[ch] < 0
        if descending { descendingSeen += 1 }
        let t = EngineExport.thresholds(levels: act.maxCode, descending: descending, code: f)
        let zs = Array(-40_000...40_000) + [Int(Int32.min), Int(Int32.min) + 1, Int(Int32.max), Int(Int32.max) - 1]
        var levelsSeen = Set<Int>()
        for z in zs {
          let z64 = Int64(z)
          let counted = t.filter { descending ? z64 <= $0 : z64 >= $0 }.count
          let brute = f(z64)
          levelsSeen.insert(brute)
          if counted != brute {
            Issue.record("\(w.name) channel \(ch) z \(z): thresholds give \(counted), the trainer \(brute)")
            return
          }
        }
        #expect(levelsSeen.count > 1, "\(w.name) channel \(ch): the map is constant over the sampled range")
      }
    }
    #expect(descendingSeen > 0)
    // The engine uses the same thresholds: it still matches the trainer with descending channels.
    let engine = try EngineFixture.engine(model)
    let r = try EngineComparison.run(
      engine: engine, trainer: model, dataset: EngineFixture.images(4), options: InferenceOptions(path: .portable))
    #expect(r.mismatches == 0 && r.logitMismatches == 0 && r.exactSumMismatches == 0, "\(r.firstDifference ?? "")")
  }

  /// Synthetic monotone maps: steps, plateaus, levels never reached, levels reached at the range ends.
  @Test func thresholdsOfSyntheticMaps() {
    let maps: [(Bool, (Int64) -> Int)] = [
      (false, { z in z < -5 ? 0 : (z < 7 ? 1 : (z < 1000 ? 2 : 3)) }),
      (false, { _ in 2 }),  // constant
      (false, { z in z >= Int64(Int32.max) ? 1 : 0 }),  // reached only at the top
      (true, { z in z <= Int64(Int32.min) ? 3 : (z < 0 ? 2 : (z == 0 ? 1 : 0)) }),
      (true, { z in min(3, max(0, Int(-z / 100))) }),
    ]
    for (descending, f) in maps {
      let t = EngineExport.thresholds(levels: 3, descending: descending, code: f)
      for z in [Int64(Int32.min), Int64(Int32.min) + 1, -1001, -300, -101, -100, -99, -6, -5, -1, 0, 1, 6, 7, 999, 1000,
                Int64(Int32.max) - 1, Int64(Int32.max)] {
        let counted = t.filter { descending ? z <= $0 : z >= $0 }.count
        #expect(counted == f(z), "z \(z): thresholds \(t) give \(counted), map gives \(f(z))")
      }
    }
  }

  /// Only the reachable sums are searched: a map that the trainer's Float arithmetic turns around at the top of the
  /// 32-bit range (2^31 − 1 rounds to 2^31, which a 32-bit wrap sends to −2^31) still gets its real thresholds.
  @Test func thresholdsSearchOnlyReachableSums() {
    let top = Int64(Int32.max) - 100
    let f: (Int64) -> Int = { z in z >= top ? 0 : (z >= 100 ? 2 : (z >= -7 ? 1 : 0)) }
    #expect(EngineExport.thresholds(levels: 2, descending: false, code: f) == [Int64(Int32.max) + 1, Int64(Int32.max) + 1])
    #expect(EngineExport.thresholds(levels: 2, descending: false, range: -3072...3072, code: f) == [-7, 100])
    let g: (Int64) -> Int = { z in z <= -top ? 0 : (z <= -100 ? 2 : (z <= 7 ? 1 : 0)) }
    #expect(EngineExport.thresholds(levels: 3, descending: true, range: -3072...3072, code: g) == [7, -100, Int64(Int32.min) - 1])
  }

  /// A wider model (--width-multiplier 2) converts and runs bit-exact too; comparing it with a checkpoint of
  /// another width is refused with a message naming the layer and both shapes, not a crash.
  @Test func widerModelsMatchAndMismatchedWidthsAreRefused() throws {
    let wide = try WrapModel(config: ModelConfig(architecture: "cnn", accumulatorBits: 8, accumulatorMode: .cyclic,
                                                 widthMultiplier: 2), seed: 3)
    let engine = try EngineFixture.engine(wide)
    let images = EngineFixture.images(6, for: "cnn")
    let report = try EngineComparison.run(engine: engine, trainer: wide, dataset: images,
                                          options: InferenceOptions(path: .portable, lanes: 8))
    #expect(report.mismatches == 0 && report.accumulatorMismatches == 0 && report.logitMismatches == 0,
            "\(report.firstDifference ?? "")")
    #expect(report.accumulatorsCompared > 0)
    let narrow = try WrapModel(config: ModelConfig(architecture: "cnn", accumulatorBits: 8, accumulatorMode: .cyclic), seed: 3)
    #expect {
      _ = try EngineComparison.run(engine: engine, trainer: narrow, dataset: images, options: InferenceOptions(path: .reference))
    } throws: { "\($0)".contains("layer 'input'") && "\($0)".contains("32 outputs") && "\($0)".contains("16 ×") }
  }

  /// Unsupported models are rejected with messages that say why: saturate accumulators, low-bit last layers.
  @Test func unsupportedModelsAreRejected() throws {
    let saturate = try WrapModel(config: ModelConfig(architecture: "mlp", accumulatorMode: .saturate), seed: 1)
    #expect {
      _ = try EngineExport.packedFile(for: saturate)
    } throws: { "\($0)".contains("saturate") }
    let lowBitLast = try WrapModel(config: ModelConfig(architecture: "mlp", wideLastLayer: false), seed: 1)
    #expect {
      _ = try EngineExport.packedFile(for: lowBitLast)
    } throws: { "\($0)".contains("wide (32-bit) last layer") }
  }
}
