import Foundation
import Testing
import WrapNet
import WrapNetEngine
import WrapNetTestSupport

/// Per-channel accumulator preloads (`ModelConfig.accumulatorPreload`, `WrapLayer.preload`): the register starts
/// at p[c], the accumulator acts on z + p[c], and p[c] is taken off after it.
@Suite(.serialized) struct AccumulatorPreloadTests {
  static let geometry = WrapGeometry.conv(inChannels: 5, outChannels: 3, kernel: 3, stride: 1, padding: 1)

  /// A 4-bit layer with preloads −8 (a register limit), 5 and −3, so that sums overflow on both sides.
  static func layer(_ mode: AccumulatorMode, seed: UInt64 = 3) -> WrapLayer {
    var rng = SeededGenerator(seed: seed)
    var layer = WrapLayer(
      name: "t", geometry: geometry, weightFormat: .binary,
      accumulator: Accumulator(width: AccumulatorWidth(bits: 4), mode: mode, slope: 2), maxInputCode: 3,
      inputScale: 0.5, penaltyWeight: 0.3, generator: &rng)
    layer.preload = Tensor(shape: [3], data: [-8, 5, -3])
    return layer
  }

  static func codes(_ seed: UInt64) -> Tensor {
    var rng = SeededGenerator(seed: seed)
    return Tensor(shape: [2, 5, 4, 4], data: (0..<160).map { _ in Float(rng.int(below: 4)) })
  }

  /// Every mode: y = acc(z + p) − p (saturate: the sequential clamp started at p, in the documented order), and
  /// the overflow statistics and the penalty count z + p, not z.
  @Test(arguments: AccumulatorMode.allCases)
  func forwardActsOnTheRegisterContents(mode: AccumulatorMode) {
    var layer = Self.layer(mode)
    layer.keepSums = true
    let x = Self.codes(5)
    let (codes, scales) = layer.quantizedWeights()
    let out = layer.forward(x, phase: .training)
    let z = layer.exactSums(x, codes: codes)
    #expect(layer.lastSums!.data == z.data, "lastSums keeps the exact sums")
    let acc = layer.accumulator
    let p: [Float] = [-8, 5, -3]
    // Sequential saturation in the order channel, row, column, from the preload.
    func saturated(_ n: Int, _ o: Int, _ y: Int, _ xx: Int) -> Float {
      var r = Int(p[o])
      for c in 0..<5 {
        for ky in 0..<3 {
          for kx in 0..<3 {
            let (iy, ix) = (y + ky - 1, xx + kx - 1)
            guard iy >= 0, iy < 4, ix >= 0, ix < 4 else { continue }
            r += Int(x.data[((n * 5 + c) * 4 + iy) * 4 + ix]) * Int(codes[((o * 5 + c) * 3 + ky) * 3 + kx])
            r = min(max(r, -8), 7)
          }
        }
      }
      return Float(r)
    }
    var overflows = 0
    var excess = 0.0
    for i in 0..<out.count {
      let (n, o, pos) = (i / 48, (i / 16) % 3, i % 16)
      let m = z.data[i] + p[o]
      let y = mode == .saturate ? saturated(n, o, pos / 4, pos % 4) : acc.apply(m)
      #expect(out.data[i] == (y - p[o]) * (scales[o] * 0.5), "\(mode) output \(i)")
      if mode != .exact && (m < -8 || m > 7) { overflows += 1 }
      if mode != .exact { excess += Double(max(abs(m) - 8, 0)) }
    }
    #expect(layer.overflowsSeen == overflows)
    #expect(abs(layer.penaltyValue - Double(Float(0.3)) * excess / 2) <= 1e-9)
    if mode != .exact {
      #expect(overflows > 0 && overflows < out.count, "the test should overflow somewhere")
      // The preloads move overflows: counting z alone would give another number.
      #expect(overflows != z.data.filter { $0 < -8 || $0 > 7 }.count)
    }
  }

  /// dL/dx against central differences with preloads, away from the kinks of acc(z + p) and the penalty.
  @Test(arguments: [AccumulatorMode.wrap, .cyclic, .clamp])
  func inputGradientMatchesFiniteDifferences(mode: AccumulatorMode) {
    var layer = Self.layer(mode, seed: 7)
    var rng = SeededGenerator(seed: 9)
    layer.keepSums = true
    let x = Tensor(shape: [2, 5, 4, 4], data: rng.uniformArray(count: 160, low: 0, high: 3))
    let out = layer.forward(x, phase: .training)
    let r = rng.uniformArray(count: out.count, low: -1, high: 1)
    layer.zeroGradients()
    let gx = layer.backward(Tensor(shape: out.shape, data: r))
    let acc = layer.accumulator
    let p: [Float] = [-8, 5, -3]
    // The smooth piece of acc(m) and of the penalty that the register contents m fall on.
    func pieces(_ z: Tensor) -> [Int] {
      z.data.indices.map { i in
        let m = z.data[i] + p[(i / 16) % 3]
        let wraps = Int(((m + 8) / 16).rounded(.down))
        let w = m.wrapped(toBits: 4)
        let knee: Float = 2 * 8 / 3
        let piece = w > knee ? 1 : (w < -knee ? -1 : 0)
        let rail = m > 7 ? 1 : (m < -8 ? -1 : 0)
        let over = abs(m) > 8 ? (m > 0 ? 1 : -1) : 0
        return ((wraps * 3 + piece) * 3 + rail) * 3 + over
      }
    }
    let h: Float = 1e-3
    var checked = 0
    for i in 0..<x.count {
      var xp = x, xm = x
      xp.data[i] += h
      xm.data[i] -= h
      var lp = layer, lm = layer
      let up = lp.forward(xp, phase: .training), um = lm.forward(xm, phase: .training)
      if pieces(lp.lastSums!) != pieces(lm.lastSums!) { continue }
      let sum = { (t: Tensor) in zip(t.data, r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }
      let fd = ((sum(up) + lp.penaltyValue) - (sum(um) + lm.penaltyValue)) / Double(2 * h)
      #expect(abs(fd - Double(gx.data[i])) <= 1e-2 * max(1, abs(fd)), "\(acc.mode) x[\(i)]: fd \(fd) vs \(gx.data[i])")
      checked += 1
    }
    #expect(checked > x.count / 2, "too few samples away from kinks: \(checked) of \(x.count)")
  }

  /// The configuration says which models have preloads; other modes and widths are refused with the reason, and a
  /// configuration without preloads does not mention them.
  @Test func configurationAndValidation() throws {
    var config = ModelConfig(architecture: "mlp", accumulatorBits: 6, accumulatorMode: .cyclic)
    config.accumulatorPreload = true
    var model = try WrapModel(config: config, seed: 1)
    var named: [String: [Int]] = [:]
    model.network.visitWrapLayers { if let p = $0.preload { named[$0.name] = p.shape } }
    #expect(named == ["fc2": [1024], "fc3": [1024], "fc4": [1024]], "low-bit layers only")
    let json = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
    #expect(json.contains("\"accumulator_preload\":true"))
    #expect(try JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8)).accumulatorPreload)
    let plain = String(decoding: try JSONEncoder().encode(ModelConfig(architecture: "mlp")), as: UTF8.self)
    #expect(!plain.contains("preload"))
    for (mode, bits, term) in [
      (AccumulatorMode.avoid, 8, "overflow avoidance bounds the sums themselves"),
      (.exact, 32, "got exact 32-bit"), (.cyclic, 32, "got cyclic 32-bit"),
    ] {
      var bad = ModelConfig(architecture: "cnn", accumulatorBits: bits, accumulatorMode: mode)
      bad.accumulatorPreload = true
      #expect { try bad.validate() } throws: { "\($0)".contains(term) && "\($0)".contains("needs a low-bit") }
    }
  }

  /// Preloads survive a checkpoint; edited ones (not integers, outside the register, NaN) are refused naming the
  /// layer and channel; a model initialized from a checkpoint without preloads starts with registers at 0.
  @Test func checkpointsKeepAndCheckThePreloads() throws {
    let data = syntheticDataset(count: 4, seed: 2)
    let pixels = Tensor(shape: [4, 1, 28, 28], data: data.images.map(Float.init))
    var config = ModelConfig(architecture: "cnn", accumulatorBits: 6, accumulatorMode: .wrap)
    config.accumulatorPreload = true
    var model = try WrapModel(config: config, seed: 4)
    model.network.visitWrapLayers { layer in
      guard let p = layer.preload else { return }
      layer.preload = Tensor(shape: p.shape, data: (0..<p.count).map { Float($0 % 64 - 32) })
    }
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    try Checkpoint.save(&model, to: dir.file("m.safetensors"))
    var loaded = try Checkpoint.load(from: dir.file("m.safetensors")).model
    #expect(loaded.config.accumulatorPreload)
    let want = model.forward(pixels, phase: .evaluation).data.map(\.bitPattern)
    #expect(loaded.forward(pixels, phase: .evaluation).data.map(\.bitPattern) == want)

    let file = try SafeTensorsFile.read(from: dir.file("m.safetensors"))
    for (value, term) in [(Float(2.5), "preload of channel 3 is 2.5"), (32, "preload of channel 3 is 32.0"),
                          (-33, "preload of channel 3 is -33.0")] {
      var edited = file
      var t = edited.tensors["conv2.preload"]!.floatTensor!
      t.data[3] = value
      edited.tensors["conv2.preload"] = SafeTensor(t)
      try edited.write(to: dir.file("bad.safetensors"))
      #expect { try Checkpoint.load(from: dir.file("bad.safetensors")) } throws: {
        "\($0)".contains("layer 'conv2': \(term), expected an integer in [-32, 31]")
      }
    }

    var base = try WrapModel(config: ModelConfig(architecture: "cnn", accumulatorMode: .exact), seed: 4)
    var fresh = try WrapModel(config: config, seed: 9)
    try fresh.loadWeights(from: base, sourcePath: "base.safetensors")
    fresh.network.visitWrapLayers { if let p = $0.preload { #expect(p.data.allSatisfy { $0 == 0 }) } }
    // Registers at 0 compute what the model without preloads computes.
    var unloaded = try WrapModel(config: ModelConfig(architecture: "cnn", accumulatorBits: 6, accumulatorMode: .wrap), seed: 9)
    try unloaded.loadWeights(from: base, sourcePath: "base.safetensors")
    #expect(fresh.forward(pixels, phase: .evaluation).data.map(\.bitPattern)
      == unloaded.forward(pixels, phase: .evaluation).data.map(\.bitPattern))
    _ = base.forward(pixels, phase: .evaluation)
  }

  /// Calibration sets p[c] = −round(mean of the channel's sums) and measures the RMS around them; with preloads
  /// the batch norms shrink less than without, since only the spread has to fit.
  @Test func calibrationCentresEveryChannel() throws {
    let data = syntheticDataset(count: 96, seed: 5)
    var config = ModelConfig(architecture: "mlp", activationBits: 3, accumulatorBits: 8, accumulatorMode: .cyclic)
    config.accumulatorPreload = true
    var model = try WrapModel(config: config, seed: 3)
    var plain = try WrapModel(config: ModelConfig(architecture: "mlp", activationBits: 3, accumulatorBits: 8), seed: 3)
    let results = try RangeCalibration.calibrate(&model, train: data, batchSize: 32, calibrationImages: 64, reestimationBatches: 2)
    let plainResults = try RangeCalibration.calibrate(&plain, train: data, batchSize: 32, calibrationImages: 64, reestimationBatches: 2)
    #expect(results.map(\.name) == ["fc2", "fc3", "fc4"])
    // The sums of the calibrated model on the calibration images, measured here.
    let images = Tensor(shape: [64, 1, 28, 28], data: data.subset(first: 64).images.map(Float.init))
    var probe = model
    probe.network.visitWrapLayers { $0.keepSums = true }
    _ = probe.forward(images, phase: .training)
    for r in results {
      let preloadRMS = try #require(r.preloadRMS)
      var layer: WrapLayer? = nil
      probe.network.visitWrapLayers { if $0.name == r.name { layer = $0 } }
      let l = try #require(layer)
      let z = try #require(l.lastSums), p = try #require(l.preload)
      #expect(p.data.allSatisfy { $0 == $0.rounded() && $0 >= -128 && $0 <= 127 })
      #expect(abs(preloadRMS - (p.data.reduce(0.0) { $0 + Double($1 * $1) } / 1024).squareRoot()) <= 1e-9)
      // Each preload is within one of minus the channel mean of these sums (rounding, and the last round's
      // preloads upstream), and the register contents have the reported RMS.
      var mean = [Double](repeating: 0, count: 1024)
      for (i, v) in z.data.enumerated() { mean[i % 1024] += Double(v) / 64 }
      #expect(zip(mean, p.data).allSatisfy { abs($0 + Double($1)) <= 1.5 }, "\(r.name)")
      let rms = (z.data.enumerated().reduce(0.0) { s, e in
        let m = Double(e.element + p.data[e.offset % 1024])
        return s + m * m
      } / Double(z.count)).squareRoot()
      #expect(abs(rms - r.rmsAfter) <= 1e-6 * rms + 1e-9, "\(r.name): \(rms) vs \(r.rmsAfter)")
      #expect(r.rmsAfter <= r.target * 1.03)
      #expect(preloadRMS > 1, "\(r.name): a binary mlp's channel means are not all 0")
    }
    for (a, b) in zip(results, plainResults) where b.factor < 1 {
      #expect(a.factor > b.factor, "\(a.name): centred sums should need less shrinking (\(a.factor) vs \(b.factor))")
    }
  }

  /// A sweep with `preload` gives the wrap, cyclic, clamp and saturate cells preloads (reported by calibration)
  /// and the other cells none; the journal's settings line names it only when it is on.
  @Test func sweepCellsTakeThePreloads() throws {
    let data = syntheticDataset(count: 48, seed: 6)
    let base = try WrapModel(config: ModelConfig(architecture: "mlp", accumulatorMode: .exact), seed: 2)
    var options = TrainingOptions()
    options.epochs = 1
    options.batchSize = 16
    let settings = SweepSettings(
      dataset: "mnist", model: base.config, training: options, limitTest: nil, baseDigest: "x", calibrate: true,
      preload: true)
    let runner = SweepRunner(base: base, settings: settings, train: data, test: data)
    for (mode, preloaded) in [(AccumulatorMode.cyclic, true), (.saturate, true), (.avoid, false), (.exact, false)] {
      let r = try runner.run(SweepCell(phase: .finetune, mode: mode, bits: mode == .exact ? 32 : 6, slope: mode == .cyclic ? 2 : nil, penalty: 0))
      #expect(r.status == "ok" || mode == .avoid, "\(mode): \(r.reason ?? "")")
      if r.status == "ok" {
        #expect((r.calibration ?? []).allSatisfy { ($0.preloadRMS != nil) == preloaded }, "\(mode)")
      }
    }
    let line = String(decoding: try JSONEncoder().encode(settings), as: UTF8.self)
    #expect(line.contains("\"preload\":true"))
    var off = settings
    off.preload = nil
    #expect(!String(decoding: try JSONEncoder().encode(off), as: UTF8.self).contains("preload"))
  }

  /// Engine vs trainer on preloaded models: the engine folds the preloads into its tables, with every kernel path
  /// giving the trainer's predictions, logits and accumulators; a clamp model's preloads cannot be folded.
  @Test(.tags(.engineVsTrainer), arguments: [
    ("mlp", AccumulatorMode.cyclic, 6, 1), ("mlp", .wrap, 8, 2), ("cnn", .cyclic, 8, 1), ("cnn", .wrap, 5, 2),
    // Residual tables (indexed by the shortcut code) with the preloads folded in.
    ("resnet20", .cyclic, 6, 1),
  ])
  func engineFoldsThePreloads(architecture: String, mode: AccumulatorMode, bits: Int, weightBits: Int) throws {
    var model = try EngineFixture.trained(
      architecture, mode: mode, bits: bits, weightBits: weightBits, activationBits: 3, preload: true)
    var nonzero = 0
    model.network.visitWrapLayers { nonzero += $0.preload?.data.filter { $0 != 0 }.count ?? 0 }
    #expect(nonzero > 0)
    let engine = try EngineFixture.engine(model)
    let data = EngineFixture.images(3, for: architecture)
    #expect(model.evaluate(data).overflowRateLowBit > 0)
    for options in EngineFixture.configurations(bits: bits) {
      let r = try EngineComparison.run(engine: engine, trainer: model, dataset: data, options: options)
      let label = "\(options.path) lanes \(options.lanes.map(String.init) ?? "default")"
      #expect(r.mismatches == 0 && r.logitMismatches == 0, "\(label): \(r.firstDifference ?? "")")
      #expect(r.accumulatorMismatches == 0 && r.accumulatorsCompared > 0, "\(label): \(r.firstDifference ?? "")")
    }
    // The same weights with registers at 0 give other codes: the preloads matter in this test.
    var zeroed = model
    zeroed.network.visitWrapLayers { if let p = $0.preload { $0.preload = Tensor(shape: p.shape) } }
    let tables = { (m: WrapModel) throws -> [[UInt8]] in
      let t = try EngineExport.packedFile(for: m).tensors
      return t.keys.filter { $0.hasSuffix(".table") }.sorted().map { t[$0]!.bytes }
    }
    #expect(try tables(zeroed) != tables(model))
    if architecture == "mlp" {
      var clamp = model
      clamp.setLowBitAccumulator(Accumulator(width: AccumulatorWidth(bits: bits), mode: .clamp))
      #expect { try EngineExport.packedFile(for: clamp) } throws: {
        "\($0)".contains("has an accumulator preload with a clamp accumulator")
      }
    }
  }
}
