import Foundation
import Testing
import WrapNet
import WrapNetEngine

@Suite(.serialized) struct RangeCalibrationTests {
  /// A fresh mlp with 3-bit activations: its low-bit sums spread far wider than 2^(b−1)/3 at 8 bits.
  static func mlp(bits: Int, mode: AccumulatorMode = .cyclic) throws -> WrapModel {
    try WrapModel(config: ModelConfig(architecture: "mlp", activationBits: 3, accumulatorBits: bits, accumulatorMode: mode), seed: 3)
  }

  /// √(mean z²) of every low-bit layer's exact sums for one training-mode forward of `images`, computed here.
  static func rms(_ model: inout WrapModel, _ images: Tensor) -> [String: Double] {
    model.network.visitWrapLayers { $0.keepSums = $0.accumulator.isLowBit }
    _ = model.forward(images, phase: .training)
    var out: [String: Double] = [:]
    model.network.visitWrapLayers { layer in
      guard let z = layer.lastSums, layer.accumulator.isLowBit else { return }
      out[layer.name] = (z.data.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(z.count)).squareRoot()
      layer.keepSums = false
    }
    return out
  }

  static func firstImages(_ data: ImageDataset, _ n: Int) -> Tensor {
    let sub = data.subset(first: n)
    return Tensor(shape: [n, sub.channels, sub.height, sub.width], data: sub.images.map(Float.init))
  }

  static func batchNorm(_ model: WrapModel, _ name: String) -> BatchNorm {
    model.network.layers.first { $0.name == name }!.layer as! BatchNorm
  }

  @Test func shrinksEveryLowBitLayerToItsTargetAndNoFurther() throws {
    let data = syntheticDataset(count: 96, seed: 5)
    var model = try Self.mlp(bits: 8)
    var reference = model
    let before = Self.rms(&reference, Self.firstImages(data, 64))
    let results = try RangeCalibration.calibrate(&model, train: data, batchSize: 32, calibrationImages: 64, reestimationBatches: 2)
    #expect(results.map(\.name) == ["fc2", "fc3", "fc4"])
    #expect(results.map(\.batchNorm) == ["bn0", "bn2", "bn3"])
    let after = Self.rms(&model, Self.firstImages(data, 64))
    for r in results {
      #expect(r.target == 128.0 / 3)
      #expect(abs(r.rmsBefore - before[r.name]!) <= 1e-9 * r.rmsBefore, "\(r.name): reported RMS before")
      #expect(r.rmsBefore > r.target * 1.2, "\(r.name): the fresh 3-bit model must start above the target")
      #expect(r.factor < 1 && r.factor > 0.1, "\(r.name): factor \(r.factor)")
      #expect(abs(r.rmsAfter - after[r.name]!) <= 1e-9 * r.rmsAfter, "\(r.name): reported RMS after")
      #expect(r.rmsAfter <= r.target * 1.03 && r.rmsAfter >= r.target * 0.8, "\(r.name): RMS \(r.rmsAfter) vs target \(r.target)")
    }
    // γ and β of the feeding batch norms were multiplied by the factor; the last one (feeding the wide logits) not.
    for r in results {
      let scaled = Self.batchNorm(model, r.batchNorm!), original = Self.batchNorm(reference, r.batchNorm!)
      for c in [0, 17, 1023] {
        #expect(abs(scaled.gamma.data[c] - original.gamma.data[c] * Float(r.factor)) <= 1e-6)
        #expect(abs(scaled.beta.data[c] - original.beta.data[c] * Float(r.factor)) <= 1e-6)
      }
    }
    #expect(Self.batchNorm(model, "bn4").gamma == Self.batchNorm(reference, "bn4").gamma)
  }

  @Test func runningStatisticsAreTheExactAverageOfTheBatches() throws {
    // bn0 follows the wide first layer, whose output does not depend on calibration: its re-estimated running mean
    // must be the plain average of the per-batch channel means of that output.
    let data = syntheticDataset(count: 96, seed: 6)
    var model = try Self.mlp(bits: 8)
    _ = try RangeCalibration.calibrate(&model, train: data, batchSize: 32, calibrationImages: 64, reestimationBatches: 3)
    var first = Sequential(Array(model.network.layers[0..<2]))  // flatten, input
    var expected = [Double](repeating: 0, count: 1024)
    for b in 0..<3 {
      let images = Tensor(
        shape: [32, 1, 28, 28], data: data.images[(b * 32 * 784)..<((b + 1) * 32 * 784)].map(Float.init))
      let out = first.forward(images, phase: .evaluation)
      for c in 0..<1024 {
        var s = 0.0
        for i in 0..<32 { s += Double(out.data[i * 1024 + c]) }
        expected[c] += s / 32 / 3
      }
    }
    let bn0 = Self.batchNorm(model, "bn0")
    #expect(bn0.momentum == 0.1, "momentum restored")
    for c in [0, 1, 500, 1023] {
      #expect(abs(Double(bn0.runningMean.data[c]) - expected[c]) <= 1e-4 * max(1, abs(expected[c])),
              "channel \(c): running mean \(bn0.runningMean.data[c]), average of batch means \(expected[c])")
    }
  }

  @Test func aWiderTargetScalesLess() throws {
    let data = syntheticDataset(count: 64, seed: 10)
    var third = try Self.mlp(bits: 8), half = try Self.mlp(bits: 8)
    let a = try RangeCalibration.calibrate(&third, train: data, batchSize: 32, calibrationImages: 64, reestimationBatches: 1)
    let b = try RangeCalibration.calibrate(&half, train: data, target: 0.5, batchSize: 32, calibrationImages: 64, reestimationBatches: 1)
    for (x, y) in zip(a, b) {
      #expect(y.target == 64 && x.target == 128.0 / 3)
      #expect(y.factor > x.factor, "\(x.name): factor \(y.factor) at 1/2 vs \(x.factor) at 1/3")
      #expect(y.rmsAfter <= 64 * 1.03 && y.rmsAfter > x.rmsAfter)
    }
  }

  @Test func leavesLayersThatFitAlone() throws {
    // At 16 bits the same sums are far below 2^15/3: nothing is scaled.
    let data = syntheticDataset(count: 64, seed: 7)
    var model = try Self.mlp(bits: 16)
    let reference = model
    let results = try RangeCalibration.calibrate(&model, train: data, batchSize: 32, calibrationImages: 64, reestimationBatches: 1)
    #expect(results.count == 3)
    for r in results {
      #expect(r.factor == 1 && r.rmsAfter == r.rmsBefore, "\(r.name)")
    }
    // Nothing scaled, so nothing re-estimated either: every batch norm is as it was.
    for name in ["bn0", "bn2", "bn3", "bn4"] {
      let a = Self.batchNorm(model, name), b = Self.batchNorm(reference, name)
      #expect(a.gamma == b.gamma && a.beta == b.beta && a.runningMean == b.runningMean && a.runningVar == b.runningVar, "\(name)")
    }
    // A 32-bit model has no low-bit layer: no results, no change.
    var wide = try Self.mlp(bits: 32, mode: .exact)
    #expect(try RangeCalibration.calibrate(&wide, train: data, batchSize: 32, calibrationImages: 32, reestimationBatches: 1).isEmpty)
  }

  @Test func isDeterministicWhateverTheThreadCount() throws {
    let data = syntheticDataset(count: 64, seed: 8)
    var results: [[RangeCalibration.LayerResult]] = []
    var gammas: [[Float]] = []
    for threads in [1, 2] {
      setBLASThreads(threads)
      var model = try Self.mlp(bits: 7)
      results.append(try RangeCalibration.calibrate(&model, train: data, batchSize: 16, calibrationImages: 48, reestimationBatches: 2))
      gammas.append(Self.batchNorm(model, "bn2").gamma.data + Self.batchNorm(model, "bn4").runningVar.data)
    }
    setBLASThreads(2)
    #expect(results[0] == results[1])
    #expect(gammas[0] == gammas[1])
  }

  @Test func findsTheFeedingBatchNormThroughPoolingAndSkipsResidualInputs() throws {
    let grey = syntheticDataset(count: 16, seed: 9)
    var cnn = try WrapModel(config: ModelConfig(architecture: "cnn", activationBits: 3, accumulatorBits: 8), seed: 1)
    let c = try RangeCalibration.calibrate(&cnn, train: grey, batchSize: 8, calibrationImages: 8, reestimationBatches: 1)
    #expect(c.map(\.name) == ["conv2", "conv3", "conv4"])
    #expect(c.map(\.batchNorm) == ["bn0", "bn2", "bn3"])  // conv2 after pool1, conv4 after pool2

    var rng = SeededGenerator(seed: 2)
    let colour = ImageDataset(
      images: (0..<(8 * 3 * 32 * 32)).map { _ in UInt8(rng.int(below: 256)) }, labels: [UInt8](repeating: 1, count: 8),
      channels: 3, height: 32, width: 32, classCount: 10)
    var resnet = try WrapModel(
      config: ModelConfig(architecture: "resnet20", inputChannels: 3, inputHeight: 32, inputWidth: 32, accumulatorBits: 8), seed: 1)
    let r = try RangeCalibration.calibrate(&resnet, train: colour, batchSize: 4, calibrationImages: 4, reestimationBatches: 1)
    #expect(r.count == 18)
    #expect(r[0].name == "stage1.block1.conv1" && r[0].batchNorm == nil && r[0].factor == 1)
    #expect(r[1].name == "stage1.block1.conv2" && r[1].batchNorm == "stage1.block1/bn1")
  }
  /// With `residual`, each block's first convolution is given the batch norm that ends the layer before the block
  /// (the stem's for the first block, the previous body's last one after that), and calibration shrinks its sums.
  @Test func residualCalibrationScalesTheBatchNormBeforeEachBlock() throws {
    var rng = SeededGenerator(seed: 4)
    let grey = ImageDataset(
      images: (0..<(8 * 28 * 28)).map { _ in UInt8(rng.int(below: 256)) }, labels: [UInt8](repeating: 1, count: 8),
      channels: 1, height: 28, width: 28, classCount: 10)
    let config = ModelConfig(architecture: "resnet20", activationBits: 3, accumulatorBits: 6)
    var plain = try WrapModel(config: config, seed: 1)
    var scaled = plain
    let a = try RangeCalibration.calibrate(&plain, train: grey, batchSize: 4, calibrationImages: 8, reestimationBatches: 1)
    let b = try RangeCalibration.calibrate(
      &scaled, train: grey, batchSize: 4, calibrationImages: 8, reestimationBatches: 1, residual: .batchNorm)
    let feeds = Dictionary(uniqueKeysWithValues: b.map { ($0.name, $0.batchNorm) })
    #expect(feeds["stage1.block1.conv1"] == "bn0")
    #expect(feeds["stage1.block2.conv1"] == "stage1.block1/bn2")
    #expect(feeds["stage2.block1.conv1"] == "stage1.block3/bn2")
    #expect(feeds["stage1.block2.conv2"] == "stage1.block2/bn1")
    let residualFed = b.filter { $0.name.hasSuffix(".conv1") && $0.name != "stage1.block1.conv1" }
    #expect(a.filter { $0.name.hasSuffix(".conv1") }.allSatisfy { $0.factor == 1 && $0.batchNorm == nil })
    #expect(residualFed.contains { $0.factor < 1 }, "a 6-bit resnet20 must need scaling before some block")
    for r in residualFed where r.factor < 1 {
      #expect(r.rmsAfter < r.rmsBefore, "\(r.name): \(r.rmsBefore) → \(r.rmsAfter)")
    }
  }
}
