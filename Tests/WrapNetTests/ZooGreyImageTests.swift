import Foundation
import Testing
import WrapNet
import WrapNetEngine
import WrapNetTestSupport

/// `resnet20` and `vgg-small` on 1×28×28 images (MNIST, Fashion-MNIST): built for the input size, trained,
/// converted, and run bit-exact by the engine; input sizes they cannot take refused with the reason.
@Suite struct ZooGreyImageTests {
  typealias Case = EngineExportTests.Case

  static let cases: [Case] = [
    // 2-bit codes sum to 3 · 49 = 147 over the 7×7 plane: the engine's sum pool.
    Case(architecture: "resnet20", mode: .cyclic, bits: 8, weightBits: 2, activationBits: 2),
    // 3-bit codes sum to 7 · 49 = 343: folded into the logits layer.
    Case(architecture: "resnet20", mode: .wrap, bits: 8, weightBits: 1, activationBits: 3),
    Case(architecture: "vgg-small", mode: .cyclic, bits: 6, weightBits: 2, activationBits: 3, widthDivisor: 8),
    Case(architecture: "vgg-small", mode: .wrap, bits: 6, weightBits: 1, activationBits: 2, widthDivisor: 4),
  ]

  /// A few training steps, then every kernel path: identical predictions, logits and accumulators.
  @Test(arguments: cases) func trainsAndTheEngineMatchesTheTrainer(_ c: Case) throws {
    var model = try EngineFixture.trained(
      c.architecture, mode: c.mode, bits: c.bits, weightBits: c.weightBits, activationBits: c.activationBits,
      steps: 2, grey: true, widthDivisor: c.widthDivisor)
    let data = syntheticDataset(count: 3, seed: 99)
    let report = model.evaluate(data)
    #expect(report.loss.isFinite)
    #expect(report.overflowRateLowBit > 0, "no low-bit overflow in \(c.testDescription)")
    let engine = try EngineFixture.engine(model)
    #expect(engine.inputShape == [1, 28, 28])
    let sumPools = engine.operations.filter { $0 == .sumPool }.count
    let logits = try #require(engine.denseLayers.last)
    if c.architecture == "resnet20" {
      let folded = 7 * 49 > 255 && c.activationBits == 3
      #expect(sumPools == (folded ? 0 : 1))
      #expect(logits.weights.k == 64 * (folded ? 49 : 1))
    } else {
      // 512/d channels on a 3×3 plane (28 → 14 → 7 → 3).
      #expect(logits.weights.k == 512 / c.widthDivisor * 9)
    }
    for options in EngineFixture.configurations(bits: c.bits) {
      let r = try EngineComparison.run(engine: engine, trainer: model, dataset: data, options: options)
      let label = "\(options.path) lanes \(options.lanes.map(String.init) ?? "default")"
      #expect(r.mismatches == 0 && r.logitMismatches == 0, "\(label): \(r.firstDifference ?? "")")
      #expect(r.accumulatorMismatches == 0 && r.exactSumMismatches == 0, "\(label): \(r.firstDifference ?? "")")
      #expect(r.accumulatorsCompared > 0)
    }
  }

  /// The sizes each architecture takes, and the reasons for the ones it does not.
  @Test func inputSizesAreCheckedWithTheReason() throws {
    func config(_ architecture: String, _ h: Int, _ w: Int, channels: Int = 1) -> ModelConfig {
      ModelConfig(architecture: architecture, inputChannels: channels, inputHeight: h, inputWidth: w)
    }
    for architecture in ["resnet20", "vgg-small"] {
      try config(architecture, 28, 28).validate()
      try config(architecture, 32, 32, channels: 3).validate()
    }
    try config("resnet20", 12, 8).validate()
    try config("vgg-small", 9, 30).validate()
    #expect { try config("resnet20", 30, 30).validate() } throws: {
      "\($0)".contains("multiples of 4") && "\($0)".contains("30×30")
    }
    #expect { try config("resnet20", 28, 1024).validate() } throws: { "\($0)".contains("up to 512") }
    #expect { try config("vgg-small", 6, 28).validate() } throws: {
      "\($0)".contains("8×8") && "\($0)".contains("6×28")
    }
    #expect { try config("cnn", 32, 32).validate() } throws: { "\($0)".contains("expects 28×28") }
    // The dataset and the model must agree (MNIST is 1×28×28).
    var options = TrainingOptions()
    options.dataset = "fashion-mnist"
    try options.validate(for: config("resnet20", 28, 28))
    #expect { try options.validate(for: config("resnet20", 32, 32, channels: 3)) } throws: {
      "\($0)".contains("[1, 28, 28]") && "\($0)".contains("[3, 32, 32]")
    }
  }

  /// The built model's layer sizes follow the input: vgg-small's linear layer reads ⌊H/8⌋·⌊W/8⌋ positions,
  /// resnet20's logits layer the sums of (H/4)·(W/4) codes; the estimate counts exactly the built values.
  @Test func layerSizesFollowTheInput() throws {
    for (h, w, plane) in [(28, 28, 9), (32, 32, 16), (16, 40, 10)] {
      var model = try WrapModel(config: ModelConfig(architecture: "vgg-small", inputHeight: h, inputWidth: w, widthDivisor: 8), seed: 1)
      let sizes = model.wrapLayerInputSizes()
      #expect(sizes.last?.2.geometry == .linear(inFeatures: 64 * plane, outFeatures: 10), "\(h)×\(w)")
      #expect(model.config.parameterCount == Checkpoint.tensors(of: &model).values.reduce(0) { $0 + $1.count })
    }
    for (h, w, plane) in [(28, 28, 49), (32, 32, 64), (8, 12, 6)] {
      var model = try WrapModel(config: ModelConfig(architecture: "resnet20", inputHeight: h, inputWidth: w, activationBits: 3), seed: 1)
      let last = try #require(model.wrapLayerInputSizes().last?.2)
      #expect(last.maxInputCode == 7 * plane && last.inputScale == ActivationCodes(bits: 3, clip: 2).scale / Float(plane))
    }
  }

  /// --width-divisor: hidden widths B·m/d, kept through a checkpoint, in the display name, refused outside its set.
  @Test func widthDivisorNarrowsAndIsSaved() throws {
    let config = ModelConfig(architecture: "vgg-small", widthMultiplier: 2, widthDivisor: 8)
    #expect(config.hiddenWidth(128) == 32 && config.hiddenWidth(512) == 128)
    #expect(config.displayName == "vgg-small ×1/4")
    #expect(ModelConfig(architecture: "resnet20", widthMultiplier: 4, widthDivisor: 2).displayName == "resnet20 ×2")
    var model = try WrapModel(config: config, seed: 2)
    var channels: [Int] = []
    model.network.visitWrapLayers { channels.append($0.geometry.outChannels) }
    #expect(channels == [32, 32, 64, 64, 128, 128, 10])
    #expect(model.config.parameterCount == Checkpoint.tensors(of: &model).values.reduce(0) { $0 + $1.count })
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    try Checkpoint.save(&model, to: dir.file("model.safetensors"))
    #expect(try Checkpoint.load(from: dir.file("model.safetensors")).model.config == config)
    for d in [0, 3, 16] {
      #expect { try ModelConfig(architecture: "vgg-small", widthDivisor: d).validate() } throws: {
        "\($0)".contains("width divisor must be one of 1, 2, 4, 8")
      }
    }
  }
}
