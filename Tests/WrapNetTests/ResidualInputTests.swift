import Foundation
import Testing
import WrapNet
import WrapNetEngine
import WrapNetTestSupport

/// Residual blocks whose first convolution reads the block input re-coded (`ModelConfig.residualInputClips`,
/// `CodeRequantizer`), and their calibration.
@Suite(.serialized) struct ResidualInputTests {
  static let clips: [Float] = [2.5, 3.1, 1.7, 4.4, 2.9, 5.3, 3.6, 6.2, 4.8]

  static func greyImages(_ count: Int, seed: UInt64) -> ImageDataset {
    var rng = SeededGenerator(seed: seed)
    return ImageDataset(
      images: (0..<(count * 28 * 28)).map { _ in UInt8(rng.int(below: 256)) },
      labels: (0..<count).map { _ in UInt8(rng.int(below: 10)) }, channels: 1, height: 28, width: 28, classCount: 10)
  }

  static func pixels(_ data: ImageDataset) -> Tensor {
    Tensor(shape: [data.count, 1, 28, 28], data: data.images.map(Float.init))
  }

  /// Block k starts with a recode at clip k, its first convolution takes that code step, and the shortcut, the
  /// block output and everything after keep the activation clip.
  @Test func eachBlockReadsItsInputAtItsClip() throws {
    var config = ModelConfig(architecture: "resnet20", activationBits: 3)
    config.residualInputClips = Self.clips
    let model = try WrapModel(config: config, seed: 1)
    let fine = ActivationCodes(bits: 3, clip: 2).scale
    let blocks = model.network.layers.compactMap { $0.layer as? ResidualBlock }
    #expect(blocks.count == 9)
    for (k, block) in blocks.enumerated() {
      #expect(block.body.layers.map(\.name) == ["recode", "conv1", "bn1", "act1", "conv2", "bn2"])
      let recode = try #require(block.body.layers[0].layer as? CodeRequantizer)
      let conv1 = try #require(block.body.layers[1].layer as? WrapLayer)
      #expect(recode.inputScale == fine && recode.output.clip == Self.clips[k] && recode.output.bits == 3)
      #expect(conv1.inputScale == ActivationCodes(bits: 3, clip: Self.clips[k]).scale, "block \(k)")
      #expect(block.inputScale == fine && block.output.clip == 2, "block \(k)")
    }
    let plain = try WrapModel(config: ModelConfig(architecture: "resnet20", activationBits: 3), seed: 1)
    let plainBlock = try #require(plain.network.layers.compactMap { $0.layer as? ResidualBlock }.first)
    #expect(plainBlock.body.layers.map(\.name) == ["conv1", "bn1", "act1", "conv2", "bn2"])
  }

  /// The recode's forward is the quantizer on the codes' values; its backward is the clipped straight-through
  /// gradient, checked against finite differences of the value the codes approximate.
  @Test func recodeForwardAndBackward() {
    var r = CodeRequantizer(inputScale: 2.0 / 7, output: ActivationCodes(bits: 3, clip: 5))
    let codes: [Float] = [0, 1, 2, 3, 4, 5, 6, 7]
    let y = r.forward(Tensor(shape: [8], data: codes), phase: .training)
    let q = UnsignedActivationQuantizer(bits: 3, clip: 5)
    #expect(y.data == codes.map { Float(q.code($0 * 2 / 7)) })
    #expect(y.data == [0, 0, 1, 1, 2, 2, 2, 3])
    // Inside [0, clip/inputScale] = [0, 17.5] the gradient is inputScale · 7 / clip; outside it is 0.
    var wide = CodeRequantizer(inputScale: 0.5, output: ActivationCodes(bits: 2, clip: 1))
    _ = wide.forward(Tensor(shape: [4], data: [0.5, 1, 2, 3]), phase: .training)
    let g = wide.backward(Tensor(shape: [4], data: [1, 2, 3, 4]))
    let expected: [Float] = [1.5, 3, 4.5, 0]
    #expect(g.data == expected)
  }

  /// Clips equal to the activation clip give the plain network's logits bit for bit; clips survive a checkpoint
  /// and come with the weights into a model initialized from it.
  @Test func clipsAreKeptThroughCheckpointsAndInitialization() throws {
    let data = Self.greyImages(4, seed: 3)
    var plain = try WrapModel(config: ModelConfig(architecture: "resnet20", accumulatorBits: 8), seed: 2)
    var same = try plain.withResidualInputClips([Float](repeating: 2, count: 9))
    let a = plain.forward(Self.pixels(data), phase: .evaluation)
    #expect(same.forward(Self.pixels(data), phase: .evaluation).data.map(\.bitPattern) == a.data.map(\.bitPattern))

    var clipped = try plain.withResidualInputClips(Self.clips)
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    try Checkpoint.save(&clipped, to: dir.file("m.safetensors"))
    var loaded = try Checkpoint.load(from: dir.file("m.safetensors")).model
    #expect(loaded.config.residualInputClips == Self.clips)
    let c = clipped.forward(Self.pixels(data), phase: .evaluation)
    #expect(loaded.forward(Self.pixels(data), phase: .evaluation).data.map(\.bitPattern) == c.data.map(\.bitPattern))
    #expect(c.data.map(\.bitPattern) != a.data.map(\.bitPattern), "other clips must change the codes")

    // A fine-tuning model built from flags (no clips, another accumulator) takes the source's clips.
    var fresh = try WrapModel(config: ModelConfig(architecture: "resnet20", accumulatorBits: 6, accumulatorMode: .wrap), seed: 9)
    try fresh.loadWeights(from: loaded, sourcePath: "m.safetensors")
    #expect(fresh.config.residualInputClips == Self.clips)
    #expect(fresh.config.accumulatorBits == 6 && fresh.config.accumulatorMode == .wrap)
    var (x, y) = (fresh, loaded)
    x.setLowBitAccumulator(.wide)
    y.setLowBitAccumulator(.wide)
    #expect(x.forward(Self.pixels(data), phase: .evaluation).data.map(\.bitPattern)
      == y.forward(Self.pixels(data), phase: .evaluation).data.map(\.bitPattern))
  }

  @Test func badClipsAreRefusedWithTheReason() throws {
    var config = ModelConfig(architecture: "resnet20")
    for (clips, term) in [
      ([Float](repeating: 2, count: 10), "has 9 residual blocks, got 10 clips"),
      ([2, 2, 2, 0, 2, 2, 2, 2, 2], "residual input clip 3 must be finite and > 0"),
      ([2, 2, 2, 2, 2, 2, .nan, 2, 2], "residual input clip 6 must be finite and > 0"),
      ([2, 2, 2, 2, 2, 2, 2, 2, .infinity], "residual input clip 8 must be finite and > 0"),
    ] as [([Float], String)] {
      config.residualInputClips = clips
      #expect { try config.validate() } throws: { "\($0)".contains(term) }
    }
    var cnn = ModelConfig(architecture: "cnn")
    cnn.residualInputClips = Self.clips
    #expect { try cnn.validate() } throws: { "\($0)".contains("apply to 'resnet20' only") }
    // A configuration written without the field reads as nil (every block reads its input as it is).
    let json = String(decoding: try JSONEncoder().encode(ModelConfig(architecture: "resnet20")), as: UTF8.self)
    #expect(!json.contains("residual_input_clips"))
    #expect(try JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8)).residualInputClips == nil)
  }

  /// code-step calibration narrows each residual-fed convolution's sums by re-coding its input at a larger clip:
  /// only the bodies' first batch norms are scaled (for the second convolutions), and the clips are in the
  /// configuration; the calibrated model runs on the integer engine bit for bit.
  @Test func codeStepCalibrationSetsTheInputClips() throws {
    let grey = Self.greyImages(8, seed: 4)
    let config = ModelConfig(architecture: "resnet20", activationBits: 3, accumulatorBits: 6)
    let original = try WrapModel(config: config, seed: 1)
    var model = original
    let results = try RangeCalibration.calibrate(
      &model, train: grey, batchSize: 4, calibrationImages: 8, reestimationBatches: 1, residual: .codeStep)
    let conv1 = results.filter { $0.name.hasSuffix(".conv1") }
    #expect(conv1.count == 9 && conv1.allSatisfy { $0.batchNorm == nil && $0.inputClip != nil })
    #expect(results.filter { $0.name.hasSuffix(".conv2") }.allSatisfy { $0.inputClip == nil && $0.batchNorm != nil })
    let clips = try #require(model.config.residualInputClips)
    #expect(conv1.contains { $0.factor < 1 }, "a 6-bit resnet20 with 3-bit activations must need larger clips somewhere")
    for (k, r) in conv1.enumerated() {
      #expect(Double(clips[k]) == r.inputClip)
      if r.factor < 1 {
        #expect(abs(Double(clips[k]) - 2 / r.factor) < 1e-4 * Double(clips[k]), "\(r.name)")
        #expect(r.rmsAfter < r.rmsBefore, "\(r.name): \(r.rmsBefore) → \(r.rmsAfter)")
        // The codes are few and coarse on 8 images, so five rounds come near the target, not onto it.
        #expect(r.rmsAfter <= r.target * 1.5, "\(r.name): \(r.rmsAfter) against \(r.target)")
      } else {
        #expect(clips[k] == 2)
      }
    }
    var before: [String: [Float]] = [:]
    var after: [String: [Float]] = [:]
    var o = original
    o.network.visitParameters { name, value, _ in before[name] = value.data }
    model.network.visitParameters { name, value, _ in after[name] = value.data }
    for (name, value) in before where name.hasSuffix("bn2.gamma") || name.hasSuffix("bn2.beta") || name.hasPrefix("bn0.") {
      #expect(after[name] == value, "\(name) changed")
    }
    let file = try EngineExport.packedFile(for: model)
    #expect(file.metadata["format_version"] == "3")
    let engine = try InferenceModel(bytes: file.serialized(), source: "test")
    let r = try EngineComparison.run(
      engine: engine, trainer: model, dataset: Self.greyImages(3, seed: 8), options: InferenceOptions(path: .reference))
    #expect(r.mismatches == 0 && r.logitMismatches == 0 && r.accumulatorMismatches == 0, "\(r.firstDifference ?? "")")
  }

  /// A model whose residual-fed sums already fit is given back as it came (no clips written), and its packed
  /// file keeps format version 2.
  @Test func codeStepLeavesAFittingModelAlone() throws {
    let grey = Self.greyImages(8, seed: 4)
    var model = try WrapModel(config: ModelConfig(architecture: "resnet20", accumulatorBits: 16), seed: 1)
    let results = try RangeCalibration.calibrate(
      &model, train: grey, batchSize: 4, calibrationImages: 8, reestimationBatches: 1, residual: .codeStep)
    #expect(results.allSatisfy { $0.factor == 1 })
    #expect(model.config.residualInputClips == nil)
    #expect(try EngineExport.packedFile(for: model).metadata["format_version"] == "2")
  }

  /// A damaged recode step is refused with the reason.
  @Test func damagedRecodeStepsAreRefused() throws {
    var config = ModelConfig(architecture: "resnet20", activationBits: 3, accumulatorBits: 8)
    config.residualInputClips = Self.clips
    let file = try EngineExport.packedFile(for: try WrapModel(config: config, seed: 1))
    func rejects(_ f: SafeTensorsFile, _ needle: String) {
      #expect {
        _ = try InferenceModel(bytes: f.serialized(), source: "r.safetensors")
      } throws: { "\($0)".contains(needle) }
    }
    var high = file
    var t = high.tensors["stage1.block1.recode.codes"]!
    t.bytes[7] = 8
    high.tensors["stage1.block1.recode.codes"] = t
    rejects(high, "holds codes above 7")
    var short = file
    short.tensors["stage1.block1.recode.codes"] = SafeTensor(shape: [7], values: [UInt8](repeating: 0, count: 7))
    rejects(short, "expected U8 [8]")
    var missing = file
    missing.tensors["stage1.block1.recode.codes"] = nil
    rejects(missing, "tensor 'stage1.block1.recode.codes' is missing")
    var bits = file
    var layers = try JSONDecoder().decode([PackedLayerDescriptor].self, from: Data(bits.metadata["layers"]!.utf8))
    let i = try #require(layers.firstIndex { $0.kind == "recode" })
    layers[i].activationBits = 9
    bits.metadata["layers"] = String(decoding: try JSONEncoder().encode(layers), as: UTF8.self)
    rejects(bits, "a recode needs activation_bits in 1...8")
    var old = file
    old.metadata["format_version"] = "4"
    rejects(old, "reads versions 1, 2, 3")
  }

  /// `wrapnet convert` shows each re-coding on the layer that reads it, and the engine model evaluates.
  @Test func convertShowsTheRecodedInputs() throws {
    var config = ModelConfig(architecture: "resnet20", activationBits: 3, accumulatorBits: 8)
    config.residualInputClips = Self.clips
    var model = try WrapModel(config: config, seed: 1)
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    try Checkpoint.save(&model, to: dir.file("m.safetensors"))
    let (status, out, err) = try runWrapnet(["convert", dir.file("m.safetensors"), "--out", dir.file("m.wrapnet")])
    #expect(status == 0, "\(err)")
    // Block 1 reads its 3-bit input at clip 2.5 instead of 2: codes 0…7 become 0 1 2 2 3 4 5 6.
    let line = out.split(separator: "\n").first { $0.contains("stage1.block1.conv1") }.map(String.init) ?? ""
    #expect(line.hasSuffix("input codes re-coded as [0 1 2 2 3 4 5 6]"), "\(out)")
    #expect(out.split(separator: "\n").filter { $0.contains("re-coded") }.count == 9, "\(out)")
    #expect(!(out.split(separator: "\n").first { $0.contains("stage1.block1.conv2") } ?? "").contains("re-coded"))
  }
}
