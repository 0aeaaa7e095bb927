import Foundation
import Testing
import WrapNet
import WrapNetEngine
import WrapNetTestSupport

/// A small synthetic 28×28 dataset whose label is a function of the image (which quadrant is brightest), so a
/// model can learn it; deterministic from the seed.
func syntheticDataset(count: Int, seed: UInt64) -> ImageDataset {
  var rng = SeededGenerator(seed: seed)
  var images = [UInt8](repeating: 0, count: count * 784)
  var labels = [UInt8](repeating: 0, count: count)
  for i in 0..<count {
    let label = rng.int(below: 4)
    labels[i] = UInt8(label)
    let (qy, qx) = (label / 2, label % 2)
    for y in 0..<28 {
      for x in 0..<28 {
        let bright = (y / 14 == qy && x / 14 == qx)
        images[i * 784 + y * 28 + x] = UInt8(bright ? 128 + rng.int(below: 128) : rng.int(below: 100))
      }
    }
  }
  return ImageDataset(images: images, labels: labels, channels: 1, height: 28, width: 28, classCount: 10)
}

@Suite(.serialized) struct TrainerTests {
  static func trainer(mode: AccumulatorMode, threads: Int, steps: Int, seed: UInt64 = 1) throws -> (Trainer, [Double]) {
    let data = syntheticDataset(count: 16 * steps, seed: 42)
    let config = ModelConfig(architecture: "mlp", accumulatorBits: 8, accumulatorMode: mode, penalty: 0.01)
    var options = TrainingOptions()
    options.epochs = 1
    options.batchSize = 16
    options.seed = seed
    options.threads = threads
    setBLASThreads(threads)
    var t = try Trainer(model: try WrapModel(config: config, seed: seed), options: options, train: data)
    var losses: [Double] = []
    for batch in t.pipeline.epoch(0) {
      let r = t.trainStep(batch)
      losses.append(r.loss + r.penalty)
    }
    setBLASThreads(2)
    return (t, losses)
  }

  /// A seeded 10-step run reproduces recorded losses (regenerate only on purpose: print `losses` and paste).
  @Test func goldenTenSteps() throws {
    let (_, losses) = try Self.trainer(mode: .cyclic, threads: 2, steps: 10)
    let recorded: [Double] = GoldenRun.losses
    #expect(losses.count == 10)
    if recorded.isEmpty {
      Issue.record("no recorded losses; got \(losses)")
      return
    }
    for (i, (a, b)) in zip(losses, recorded).enumerated() {
      #expect(abs(a - b) <= 1e-5 * max(1, abs(b)), "step \(i): loss \(a), recorded \(b)")
    }
    #expect(losses.last! < losses.first!, "training on a learnable task must lower the loss")
  }

  /// Weights after training are bit-identical with 1 and 2 threads.
  @Test(arguments: [AccumulatorMode.exact, .cyclic])
  func identicalWeightsForAnyThreadCount(mode: AccumulatorMode) throws {
    var (a, _) = try Self.trainer(mode: mode, threads: 1, steps: 4)
    var (b, _) = try Self.trainer(mode: mode, threads: 2, steps: 4)
    let ta = Checkpoint.tensors(of: &a.model), tb = Checkpoint.tensors(of: &b.model)
    #expect(ta.keys.sorted() == tb.keys.sorted())
    for (name, t) in ta {
      // Compare without printing the tensors (they are large).
      let same = t == tb[name]
      #expect(same, "\(name) differs between 1 and 2 threads")
    }
  }

  /// A run interrupted after epoch 1 and resumed from its checkpoint ends with the same weights as an uninterrupted
  /// two-epoch run.
  @Test func resumeEqualsUninterruptedRun() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let data = syntheticDataset(count: 48, seed: 9)
    let config = ModelConfig(architecture: "mlp", accumulatorBits: 8, accumulatorMode: .cyclic, penalty: 0.01)
    var options = TrainingOptions()
    options.epochs = 2
    options.batchSize = 16
    options.seed = 3
    var straight = try Trainer(model: try WrapModel(config: config, seed: 3), options: options, train: data)
    _ = try straight.trainEpoch()
    _ = try straight.trainEpoch()

    var first = try Trainer(model: try WrapModel(config: config, seed: 3), options: options, train: data)
    _ = try first.trainEpoch()
    let path = dir.file("checkpoint.safetensors")
    try Checkpoint.save(&first.model, to: path, training: options, optimizerState: first.optimizer.stateTensors(),
                        epochsDone: first.epochsDone)
    let c = try Checkpoint.load(from: path)
    #expect(c.epochsDone == 1)
    var resumed = try Trainer(model: c.model, options: try #require(c.training), train: data)
    try resumed.optimizer.loadState(c.optimizerState)
    resumed.restore(epochsDone: 1)
    _ = try resumed.trainEpoch()
    let a = Checkpoint.tensors(of: &straight.model), b = Checkpoint.tensors(of: &resumed.model)
    for (name, t) in a {
      let same = t == b[name]
      #expect(same, "\(name) differs after resume")
    }
  }

  /// The low-bit MAC share of every zoo model is well above 70%.
  @Test(arguments: ModelConfig.architectures)
  func lowBitShareOfZooModels(architecture: String) throws {
    let size = ["mlp", "cnn"].contains(architecture) ? 28 : 32
    let channels = size == 28 ? 1 : 3
    var model = try WrapModel(
      config: ModelConfig(architecture: architecture, inputChannels: channels, inputHeight: size, inputWidth: size),
      seed: 0)
    let (low, total) = model.macCounts()
    #expect(Double(low) / Double(total) > 0.75, "\(architecture): \(low) of \(total) MACs in low-bit accumulators")
    let logits = model.forward(Tensor(shape: [2, channels, size, size], repeating: 100), phase: .evaluation)
    #expect(logits.shape == [2, 10])
  }

  /// The width multiplier scales every hidden width (so the low-bit MACs of mlp grow by m², of cnn by m² in its
  /// low-bit convs); configurations written before the field existed decode as 1; bad values are refused.
  @Test func widthMultiplierScalesHiddenWidths() throws {
    var narrow = try WrapModel(config: ModelConfig(architecture: "mlp"), seed: 0)
    var wide = try WrapModel(config: ModelConfig(architecture: "mlp", widthMultiplier: 2), seed: 0)
    #expect(narrow.macCounts().lowBit == 3 * 1024 * 1024)
    #expect(wide.macCounts().lowBit == 3 * 2048 * 2048)
    #expect(wide.macCounts().total == 784 * 2048 + 3 * 2048 * 2048 + 2048 * 10)
    var cnn = try WrapModel(config: ModelConfig(architecture: "cnn", widthMultiplier: 2), seed: 0)
    var cnn1 = try WrapModel(config: ModelConfig(architecture: "cnn"), seed: 0)
    #expect(cnn.macCounts().lowBit == 4 * cnn1.macCounts().lowBit)
    let logits = cnn.forward(Tensor(shape: [1, 1, 28, 28], repeating: 100), phase: .evaluation)
    #expect(logits.shape == [1, 10])

    var json = String(decoding: try JSONEncoder().encode(ModelConfig(architecture: "mlp", widthMultiplier: 3)), as: UTF8.self)
    #expect(try JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8)).widthMultiplier == 3)
    json = json.replacingOccurrences(of: "\"width_multiplier\":3,", with: "")
      .replacingOccurrences(of: ",\"width_multiplier\":3", with: "")
    #expect(!json.contains("width_multiplier"))
    #expect(try JSONDecoder().decode(ModelConfig.self, from: Data(json.utf8)).widthMultiplier == 1)

    // Fine-tuning (--init) from a model of another width names the multiplier it was trained with.
    do {
      try wide.loadWeights(from: narrow, sourcePath: "narrow.safetensors")
      Issue.record("initialized a ×2 model from a ×1 checkpoint")
    } catch {
      #expect("\(error)".contains("narrow.safetensors") && "\(error)".contains("--width-multiplier 1"), "\(error)")
    }

    #expect(throws: ConfigError.self) { try ModelConfig(architecture: "mlp", widthMultiplier: 0).validate() }
    #expect(throws: ConfigError.self) { try ModelConfig(architecture: "mlp", widthMultiplier: 17).validate() }
  }

  /// Checkpoints round-trip, and broken ones are rejected with a message naming the problem.
  @Test func checkpointRoundTripAndErrors() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wrapnet-ckpt-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var (t, _) = try Self.trainer(mode: .cyclic, threads: 2, steps: 2)
    let path = dir + "/model.safetensors"
    try Checkpoint.save(&t.model, to: path, training: t.options)
    var loaded = try Checkpoint.load(from: path)
    #expect(loaded.model.config == t.model.config)
    #expect(Checkpoint.tensors(of: &loaded.model) == Checkpoint.tensors(of: &t.model))
    #expect(loaded.training == t.options)

    func expectError(_ bytes: [UInt8], _ fragment: String) throws {
      let p = dir + "/bad.safetensors"
      try Data(bytes).write(to: URL(fileURLWithPath: p))
      do {
        _ = try Checkpoint.load(from: p)
        Issue.record("accepted a bad checkpoint (\(fragment))")
      } catch {
        #expect("\(error)".contains(p), "error names the file: \(error)")
        #expect("\(error)".contains(fragment), "error '\(error)' should mention '\(fragment)'")
      }
    }
    try expectError([1, 2, 3], "safetensors")
    let good = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    try expectError(Array(good.prefix(good.count - 10)), "safetensors")
    // A valid safetensors file that is not a WrapNet checkpoint.
    var other = SafeTensorsFile()
    other.tensors["x"] = SafeTensor(Tensor(shape: [2], data: [1, 2]))
    try expectError(other.serialized(), "not a WrapNet checkpoint")
    // A WrapNet checkpoint with a tensor missing.
    var file = try SafeTensorsFile.read(from: path)
    file.tensors["logits.bias"] = nil
    try expectError(file.serialized(), "logits.bias")
    // Wrong shape.
    file = try SafeTensorsFile.read(from: path)
    file.tensors["logits.bias"] = SafeTensor(Tensor(shape: [3], data: [0, 0, 0]))
    try expectError(file.serialized(), "shape")
    // Newer format version.
    file = try SafeTensorsFile.read(from: path)
    file.metadata["format_version"] = "99"
    try expectError(file.serialized(), "version")
    #expect(throws: CheckpointError.self) { try Checkpoint.load(from: dir + "/missing.safetensors") }
  }
}
