import Foundation
import Testing
import WrapNet
import WrapNetEngine
import WrapNetTestSupport

/// The residual stream's own activation clips (`ModelConfig.residualStreamClips`) and their calibration.
@Suite(.serialized) struct ResidualStreamTests {
  static let clips: [Float] = [2.5, 3.1, 1.7, 4.4, 2.9, 5.3, 3.6, 6.2, 4.8, 7.5]

  static func greyImages(_ count: Int, seed: UInt64) -> ImageDataset {
    var rng = SeededGenerator(seed: seed)
    return ImageDataset(
      images: (0..<(count * 28 * 28)).map { _ in UInt8(rng.int(below: 256)) },
      labels: (0..<count).map { _ in UInt8(rng.int(below: 10)) }, channels: 1, height: 28, width: 28, classCount: 10)
  }

  static func pixels(_ data: ImageDataset) -> Tensor {
    Tensor(shape: [data.count, 1, 28, 28], data: data.images.map(Float.init))
  }

  /// Every layer that reads stream k takes its scale: block k's first convolution and shortcut, the logits layer
  /// for the last one; the stem's and each block's output quantizer have the stream's clip.
  @Test func eachStreamSetsItsQuantizerAndItsReaders() throws {
    var config = ModelConfig(architecture: "resnet20", activationBits: 3)
    config.residualStreamClips = Self.clips
    let model = try WrapModel(config: config, seed: 1)
    let scale = { (k: Int) in ActivationCodes(bits: 3, clip: Self.clips[k]).scale }
    let layers = model.network.layers
    #expect((layers.first { $0.name == "act0" }?.layer as? ActivationCodes)?.clip == Self.clips[0])
    let blocks = layers.compactMap { $0.layer as? ResidualBlock }
    #expect(blocks.count == 9)
    for (k, block) in blocks.enumerated() {
      let conv1 = try #require(block.body.layers.first?.layer as? WrapLayer)
      let act1 = try #require(block.body.layers.first { $0.name == "act1" }?.layer as? ActivationCodes)
      let conv2 = try #require(block.body.layers.first { $0.name == "conv2" }?.layer as? WrapLayer)
      #expect(conv1.inputScale == scale(k) && block.inputScale == scale(k), "block \(k)")
      #expect(block.output.clip == Self.clips[k + 1], "block \(k)")
      // Inside the body the codes keep the model's clip.
      #expect(act1.clip == 2 && conv2.inputScale == ActivationCodes(bits: 3, clip: 2).scale)
    }
    let logits = try #require(layers.last?.layer as? WrapLayer)
    #expect(logits.inputScale == scale(9) / Float(7 * 7))
  }

  /// Clips equal to the activation clip are the default network, bit for bit; the clips survive a checkpoint and
  /// come with the weights into a model initialized from it.
  @Test func clipsAreKeptThroughCheckpointsAndInitialization() throws {
    let data = Self.greyImages(4, seed: 3)
    var plain = try WrapModel(config: ModelConfig(architecture: "resnet20", accumulatorBits: 8), seed: 2)
    var same = try plain.withResidualStreamClips([Float](repeating: 2, count: 10))
    let a = plain.forward(Self.pixels(data), phase: .evaluation)
    let b = same.forward(Self.pixels(data), phase: .evaluation)
    #expect(a.data.map(\.bitPattern) == b.data.map(\.bitPattern))

    var clipped = try plain.withResidualStreamClips(Self.clips)
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    try Checkpoint.save(&clipped, to: dir.file("m.safetensors"))
    var loaded = try Checkpoint.load(from: dir.file("m.safetensors")).model
    #expect(loaded.config.residualStreamClips == Self.clips)
    let c = clipped.forward(Self.pixels(data), phase: .evaluation)
    #expect(loaded.forward(Self.pixels(data), phase: .evaluation).data.map(\.bitPattern) == c.data.map(\.bitPattern))
    #expect(c.data.map(\.bitPattern) != a.data.map(\.bitPattern), "other clips must change the codes")

    // A fine-tuning model built from flags (no clips, another accumulator) takes the source's clips.
    var fresh = try WrapModel(config: ModelConfig(architecture: "resnet20", accumulatorBits: 6, accumulatorMode: .wrap), seed: 9)
    try fresh.loadWeights(from: loaded, sourcePath: "m.safetensors")
    #expect(fresh.config.residualStreamClips == Self.clips)
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
      ([Float](repeating: 2, count: 9), "has 10 (the stem and 9 blocks), got 9"),
      ([2, 2, 2, 0, 2, 2, 2, 2, 2, 2], "residual stream clip 3 must be finite and > 0"),
      ([2, 2, 2, 2, 2, 2, .nan, 2, 2, 2], "residual stream clip 6 must be finite and > 0"),
      ([2, 2, 2, 2, 2, 2, 2, 2, 2, .infinity], "residual stream clip 9 must be finite and > 0"),
    ] as [([Float], String)] {
      config.residualStreamClips = clips
      #expect { try config.validate() } throws: { "\($0)".contains(term) }
    }
    var mlp = ModelConfig(architecture: "mlp")
    mlp.residualStreamClips = Self.clips
    #expect { try mlp.validate() } throws: { "\($0)".contains("apply to 'resnet20' only") }
    // A checkpoint whose configuration was written without the field reads as nil (every stream at the clip).
    let json = String(decoding: try JSONEncoder().encode(ModelConfig(architecture: "resnet20")), as: UTF8.self)
    #expect(!json.contains("residual_stream_clips"))
    #expect(try JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8)).residualStreamClips == nil)
  }

  /// code-step calibration narrows each residual-fed convolution's sums by enlarging its stream's clip: the batch
  /// norms that end the bodies (and the stem's) keep their γ and β, and the clips are in the configuration.
  @Test func codeStepCalibrationEnlargesTheStreamClips() throws {
    let grey = Self.greyImages(8, seed: 4)
    let config = ModelConfig(architecture: "resnet20", activationBits: 3, accumulatorBits: 6)
    let original = try WrapModel(config: config, seed: 1)
    var model = original
    let results = try RangeCalibration.calibrate(
      &model, train: grey, batchSize: 4, calibrationImages: 8, reestimationBatches: 1, residual: .codeStep)
    let conv1 = results.filter { $0.name.hasSuffix(".conv1") }
    #expect(conv1.map(\.stream) == Array(0..<9).map(Optional.some))
    #expect(conv1.allSatisfy { $0.batchNorm == nil })
    #expect(results.filter { $0.name.hasSuffix(".conv2") }.allSatisfy { $0.stream == nil && $0.batchNorm != nil })
    let scaled = conv1.filter { $0.factor < 1 }
    #expect(!scaled.isEmpty, "a 6-bit resnet20 with 3-bit activations must need larger clips somewhere")
    let clips = try #require(model.config.residualStreamClips)
    for r in conv1 {
      let k = r.stream!
      #expect(Double(clips[k]) == r.streamClip)
      if r.factor < 1 {
        #expect(abs(Double(clips[k]) - 2 / r.factor) < 1e-4 * Double(clips[k]), "\(r.name)")
        #expect(r.rmsAfter < r.rmsBefore, "\(r.name): \(r.rmsBefore) → \(r.rmsAfter)")
        #expect(r.rmsAfter <= r.target * 1.1, "\(r.name): \(r.rmsAfter) against \(r.target)")
      } else {
        #expect(clips[k] == 2)
      }
    }
    // Only the bodies' first batch norms are scaled (for the second convolutions): the stem's and the ones that
    // end each body are the original's.
    var before: [String: [Float]] = [:]
    var after: [String: [Float]] = [:]
    var o = original
    o.network.visitParameters { name, value, _ in before[name] = value.data }
    model.network.visitParameters { name, value, _ in after[name] = value.data }
    for (name, value) in before where name.hasSuffix("bn2.gamma") || name.hasSuffix("bn2.beta") || name.hasPrefix("bn0.") {
      #expect(after[name] == value, "\(name) changed")
    }
    // The calibrated model is a valid checkpoint and runs on the integer engine bit for bit.
    let engine = try InferenceModel(bytes: try EngineExport.packedFile(for: model).serialized(), source: "test")
    let r = try EngineComparison.run(
      engine: engine, trainer: model, dataset: Self.greyImages(3, seed: 8), options: InferenceOptions(path: .reference))
    #expect(r.mismatches == 0 && r.logitMismatches == 0 && r.accumulatorMismatches == 0, "\(r.firstDifference ?? "")")
  }

  /// A model whose residual-fed sums already fit is given back as it came (no clips written).
  @Test func codeStepLeavesAFittingModelAlone() throws {
    let grey = Self.greyImages(8, seed: 4)
    var model = try WrapModel(config: ModelConfig(architecture: "resnet20", accumulatorBits: 16), seed: 1)
    let results = try RangeCalibration.calibrate(
      &model, train: grey, batchSize: 4, calibrationImages: 8, reestimationBatches: 1, residual: .codeStep)
    #expect(results.allSatisfy { $0.factor == 1 })
    #expect(model.config.residualStreamClips == nil)
  }
}
