import Testing
import WrapNet
import WrapNetEngine

extension Tag {
  /// Engine-vs-trainer sweeps over modes, bits, kernel paths and lane widths (minutes in debug builds).
  @Tag static var engineVsTrainer: Self
}

/// Tiny trained models for the engine tests: a zoo model trained a few steps on the synthetic quadrant task, so
/// batch-norm statistics are non-trivial.
enum EngineFixture {
  /// A model of `architecture` with low-bit `mode`/`bits` and `weightBits`, after `steps` Adam steps on `grey`
  /// 28×28 images or the architecture's default (`dataset(for:count:seed:)`).
  static func trained(
    _ architecture: String, mode: AccumulatorMode, bits: Int, weightBits: Int = 1, activationBits: Int = 2,
    steps: Int = 3, seed: UInt64 = 5, grey: Bool = false, widthDivisor: Int = 1, residualInputClips: [Float]? = nil,
    preload: Bool = false
  ) throws -> WrapModel {
    let data =
      grey ? syntheticDataset(count: 16 * steps, seed: 11) : dataset(for: architecture, count: 16 * steps, seed: 11)
    var config = ModelConfig(
      architecture: architecture, inputChannels: data.channels, inputHeight: data.height, inputWidth: data.width,
      weightBits: weightBits, activationBits: activationBits, accumulatorBits: mode == .exact ? 32 : bits,
      accumulatorMode: mode, penalty: 0.001, widthDivisor: widthDivisor)
    config.residualInputClips = residualInputClips
    config.accumulatorPreload = preload
    var model = try WrapModel(config: config, seed: seed)
    if preload {
      // Range calibration sets the preloads (−round(mean) of each channel's sums).
      _ = try RangeCalibration.calibrate(&model, train: data, batchSize: 16, calibrationImages: 32, reestimationBatches: 1)
    }
    var options = TrainingOptions()
    options.epochs = 1
    options.batchSize = 16
    options.seed = seed
    options.threads = 2
    var trainer = try Trainer(model: model, options: options, train: data)
    for batch in trainer.pipeline.epoch(0) { _ = trainer.trainStep(batch) }
    return trainer.model
  }

  /// A few synthetic test images (not the training ones) for `architecture`.
  static func images(_ count: Int, for architecture: String = "mlp") -> ImageDataset {
    dataset(for: architecture, count: count, seed: 99)
  }

  /// 28×28 grey images for mlp and cnn, 32×32 colour images for vgg-small and resnet20.
  static func dataset(for architecture: String, count: Int, seed: UInt64) -> ImageDataset {
    ["vgg-small", "resnet20"].contains(architecture)
      ? syntheticColorDataset(count: count, seed: seed) : syntheticDataset(count: count, seed: seed)
  }

  /// The quadrant task in colour, 32×32×3 (CIFAR-shaped): the bright quadrant is the label, each channel with
  /// its own noise.
  static func syntheticColorDataset(count: Int, seed: UInt64) -> ImageDataset {
    var rng = SeededGenerator(seed: seed)
    let size = 3 * 32 * 32
    var images = [UInt8](repeating: 0, count: count * size)
    var labels = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
      let label = rng.int(below: 4)
      labels[i] = UInt8(label)
      for ch in 0..<3 {
        for y in 0..<32 {
          for x in 0..<32 {
            let bright = (y / 16 == label / 2 && x / 16 == label % 2)
            images[i * size + (ch * 32 + y) * 32 + x] = UInt8(bright ? 120 + rng.int(below: 136) : rng.int(below: 110))
          }
        }
      }
    }
    return ImageDataset(images: images, labels: labels, channels: 3, height: 32, width: 32, classCount: 10)
  }

  /// The packed engine model of `model`, through the serialized bytes (as a file would hold them).
  static func engine(_ model: WrapModel) throws -> InferenceModel {
    try InferenceModel(bytes: try EngineExport.packedFile(for: model).serialized(), source: "test.safetensors")
  }

  /// Every kernel path available here with every lane width valid for `bits` (exact models: lanes do not apply,
  /// every layer runs 32-bit lanes); avx2 with 8-bit lanes runs binary and ternary layers with the lookup kernel.
  static func configurations(bits: Int) -> [InferenceOptions] {
    var out: [InferenceOptions] = [InferenceOptions(path: .reference)]
    for path in [KernelPath.portable, .avx2] where path.isAvailable {
      if bits == 32 {
        out.append(InferenceOptions(path: path))
      } else {
        for lanes in [8, 16, 32] where lanes >= bits { out.append(InferenceOptions(path: path, lanes: lanes)) }
      }
    }
    return out
  }
}
