import Foundation
import Testing
import WrapNet
import WrapNetEngine
import WrapNetHardware

/// Small trained models, packed for the engine, with a few synthetic 28×28 images.
enum HardwareFixture {
  /// A zoo model trained two Adam steps on random images (so batch norm has real statistics), then packed.
  /// With `preload`, range calibration first sets per-channel accumulator preloads, which the packed tables fold in.
  static func engineModel(
    _ architecture: String, mode: AccumulatorMode, bits: Int, weightBits: Int = 1, preload: Bool = false
  ) throws -> InferenceModel {
    let data = images(32, seed: 11)
    var config = ModelConfig(
      architecture: architecture, weightBits: weightBits, accumulatorBits: mode == .exact ? 32 : bits,
      accumulatorMode: mode, penalty: 0.001)
    config.accumulatorPreload = preload
    var model = try WrapModel(config: config, seed: 5)
    if preload {
      _ = try RangeCalibration.calibrate(&model, train: data, batchSize: 16, calibrationImages: 32, reestimationBatches: 1)
      var nonzero = false
      model.network.visitWrapLayers { nonzero = nonzero || ($0.preload?.data.contains { $0 != 0 } ?? false) }
      precondition(nonzero, "the preloaded fixture should have nonzero preloads")
    }
    var options = TrainingOptions()
    options.epochs = 1
    options.batchSize = 16
    options.seed = 5
    options.threads = 2
    var trainer = try Trainer(model: model, options: options, train: data)
    for batch in trainer.pipeline.epoch(0) { _ = trainer.trainStep(batch) }
    return try InferenceModel(bytes: try EngineExport.packedFile(for: trainer.model).serialized(), source: "test")
  }

  /// Random 28×28 grey images, a bright blob in one quadrant per label.
  static func images(_ count: Int, seed: UInt64) -> ImageDataset {
    var rng = SplitMix64(seed: seed)
    var pixels = [UInt8](repeating: 0, count: count * 784)
    var labels = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
      let label = Int(rng.next() % 4)
      labels[i] = UInt8(label)
      for y in 0..<28 {
        for x in 0..<28 {
          let bright = y / 14 == label / 2 && x / 14 == label % 2
          pixels[i * 784 + y * 28 + x] = UInt8(bright ? 100 + rng.next() % 156 : rng.next() % 90)
        }
      }
    }
    return ImageDataset(images: pixels, labels: labels, channels: 1, height: 28, width: 28, classCount: 10)
  }
}

@Suite struct OutputStepTests {
  /// Every value a b-bit accumulator can hold gets the engine's code from the comparators (tables, cyclic), and
  /// thresholds of the 32-bit layers are met at and around every threshold.
  /// Preloaded wrap-around layers (their tables shifted by the preloads) likewise.
  @Test(arguments: [
    (AccumulatorMode.cyclic, 8, false), (.wrap, 6, false), (.clamp, 7, false), (.cyclic, 12, false),
    (.exact, 32, false), (.cyclic, 8, true), (.wrap, 6, true), (.cyclic, 5, true),
  ])
  func stepsEqualTheEnginesCodes(mode: AccumulatorMode, bits: Int, preload: Bool) throws {
    let model = try HardwareFixture.engineModel("mlp", mode: mode, bits: bits, preload: preload)
    for layer in model.denseLayers {
      if case .logits = layer.output { continue }
      let valueBits = LayerUnit.nativeMode(layer) == .exact ? 32 : layer.accumulatorBits
      let steps = try OutputSteps(layer: layer, valueBits: valueBits)
      for c in stride(from: 0, to: layer.outChannels, by: 37) {
        var values: [Int64] = []
        if valueBits <= 16 {
          values = Array(-(Int64(1) << (valueBits - 1))...((Int64(1) << (valueBits - 1)) - 1))
        } else {
          for i in 0..<steps.steps { let t = steps.thresholds[c * steps.steps + i]; values += [t - 1, t, t + 1] }
          values += [Int64(Int32.min), Int64(Int32.max), 0, -1, 1]
        }
        for v in values where v >= Int64(Int32.min) && v <= Int64(Int32.max) {
          let engine = Int(layer.code(forAccumulator: v, channel: c))
          #expect(steps.code(v, channel: c) == engine, "\(layer.name) channel \(c) value \(v)")
        }
      }
    }
  }

  @Test func residualAndLogitLayersAreRefused() throws {
    let model = try HardwareFixture.engineModel("mlp", mode: .cyclic, bits: 8)
    let logits = model.denseLayers.last!
    #expect(throws: HardwareError.self) { try OutputSteps(layer: logits, valueBits: 32) }
  }
}

/// Layer units of trained models simulated on real-shaped data: every accumulator value and output code equal to
/// the engine's, and a whole mlp chained layer to layer predicting the engine's classes.
@Suite(.enabled(if: Simulator.isAvailable, "Icarus Verilog is not installed (scripts/setup.sh installs it)"))
struct LayerUnitSimulationTests {
  func run(_ model: InferenceModel, images: Int, request: RTLRequest) throws -> ([LayerRTLReport], NetworkRTLReport?) {
    let data = HardwareFixture.images(images, seed: 99)
    let dir = try temporaryDirectory("model")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let out = try ModelRTL.write(model: model, pixels: data.images, count: images, request: request, to: dir + "/rtl")
    #expect(FileManager.default.fileExists(atPath: dir + "/rtl/rtl.json"))
    return out
  }

  @Test(arguments: [(AccumulatorMode.cyclic, 8, 64), (.wrap, 6, 7), (.clamp, 10, 33), (.cyclic, 12, 16)])
  func mlpLayersEqualTheEngine(mode: AccumulatorMode, bits: Int, parallel: Int) throws {
    let model = try HardwareFixture.engineModel("mlp", mode: mode, bits: bits)
    let (reports, _) = try run(model, images: 2, request: RTLRequest(parallel: parallel, layers: ["fc2", "logits"]))
    #expect(reports.count == 2)
    for r in reports {
      #expect(r.simulated && r.values == r.rows * (r.layer == "logits" ? 10 : 1024))
      #expect(r.accumulatorMismatches == 0 && r.codeMismatches == 0, "\(r)")
    }
    #expect(reports[0].outputStage)
  }

  @Test func cnnConvolutionsEqualTheEngine() throws {
    let model = try HardwareFixture.engineModel("cnn", mode: .cyclic, bits: 8, weightBits: 2)
    let (reports, _) = try run(model, images: 1, request: RTLRequest(parallel: 64, layers: ["input", "conv4"]))
    for r in reports { #expect(r.simulated && r.accumulatorMismatches == 0 && r.codeMismatches == 0, "\(r)") }
  }

  /// The same layer with a saturating PE (P = 1: the trainer's order), checked against the software PE.
  @Test func saturatingLayerEqualsTheSoftwarePE() throws {
    let model = try HardwareFixture.engineModel("cnn", mode: .wrap, bits: 6, weightBits: 2)
    let (reports, _) = try run(model, images: 1, request: RTLRequest(parallel: 1, layers: ["conv4"], mode: .saturate))
    #expect(reports[0].pe.contains("saturate") && reports[0].outputStage)
    #expect(reports[0].accumulatorMismatches == 0 && reports[0].codeMismatches == 0)
  }

  @Test(arguments: [false, true]) func wholeMLPPredictsTheEnginesClasses(preload: Bool) throws {
    let model = try HardwareFixture.engineModel("mlp", mode: .cyclic, bits: 8, preload: preload)
    let (_, network) = try run(model, images: 2, request: RTLRequest(parallel: 64, layers: [], network: true))
    let n = try #require(network)
    #expect(n.simulated && n.images == 2)
    #expect(n.logitMismatches == 0 && n.predictionMismatches == 0)
  }

  @Test func unknownLayersAndConvolutionNetworksAreRefused() throws {
    let cnn = try HardwareFixture.engineModel("cnn", mode: .cyclic, bits: 8)
    let data = HardwareFixture.images(1, seed: 1)
    let dir = try temporaryDirectory("refuse")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    #expect(throws: HardwareError.self) {
      try ModelRTL.write(model: cnn, pixels: data.images, count: 1, request: RTLRequest(layers: ["fc9"]), to: dir + "/a")
    }
    #expect(throws: HardwareError.self) {
      try ModelRTL.write(model: cnn, pixels: data.images, count: 1, request: RTLRequest(layers: [], network: true), to: dir + "/b")
    }
    // Nothing half-written.
    #expect(!FileManager.default.fileExists(atPath: dir + "/a") && !FileManager.default.fileExists(atPath: dir + "/b"))
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
  }
}
