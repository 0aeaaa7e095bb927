import Foundation
import Testing
import WrapNet
import WrapNetEngine
import WrapNetTestSupport

/// Mutated checkpoints, packed models, IDX and CIFAR-10 files (see `FuzzMutator`) are either accepted and then
/// usable — evaluated, converted, resumed, run by the engine — or refused with an error; a trap anywhere ends the
/// test process, so any crash fails CI. Each loader sees `fuzzMutantCount(ci: 200)` mutants of a fixed seed here;
/// scripts/fuzz.sh runs 10,000 per loader in release under a 4 GB memory limit, and also runs the command line on
/// them.
@Suite(.serialized) struct FuzzTests {
  static let seed: UInt64 = 0xF022
  static let images = syntheticDataset(count: 4, seed: 5)

  /// Runs `body` on `count` mutants of `input`; writes them under `$WRAPNET_FUZZ_WRITE/<name>/` when asked.
  /// Returns how many `body` accepted (the rest threw, as they should when the file is broken).
  static func fuzz(
    _ name: String, _ input: [UInt8], format: FuzzMutator.Format, count: Int, extension ext: String,
    body: ([UInt8], String) throws -> Void
  ) throws -> Int {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    var accepted = 0
    for index in 0..<count {
      var mutator = FuzzMutator(seed: seed, index: index)
      let bytes = mutator.mutate(input, format: format)
      let path = try dir.write(bytes, to: "mutant-\(index)\(ext)")
      if let out = fuzzOutputDirectory {
        try FileManager.default.createDirectory(atPath: out + "/" + name, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: "\(out)/\(name)/\(index)\(ext)"))
      }
      do {
        try body(bytes, path)
        accepted += 1
      } catch {
        #expect(!"\(error)".isEmpty)
      }
    }
    print("fuzz \(name): \(count) mutants, \(accepted) accepted, \(count - accepted) refused with an error")
    return accepted
  }

  /// A small resume file (cnn, Adam state, 1 of 2 epochs) to mutate.
  static func checkpointBytes() throws -> [UInt8] {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    try writeResumeCheckpoint(to: dir.file("c"), architecture: "cnn", images: images, batchSize: 4)
    return fileBytes(dir.file("c"))
  }

  /// Checkpoints as `eval`, `convert` and `train --resume` use them.
  @Test func mutatedCheckpoints() throws {
    let accepted = try Self.fuzz(
      "checkpoint", try Self.checkpointBytes(), format: .safetensors, count: fuzzMutantCount(ci: 200),
      extension: ".safetensors"
    ) { _, path in
      let contents = try Checkpoint.load(from: path, warning: { _ in })
      var model = contents.model
      let cfg = model.config
      // `eval` checks the dataset's shape and classes against the model, as here.
      let fitsImages = [cfg.inputChannels, cfg.inputHeight, cfg.inputWidth, cfg.classes] == [1, 28, 28, 10]
      if fitsImages {
        _ = model.evaluate(Self.images)
      }
      // `train --resume`: validated options, the optimizer's state restored, then one more epoch.
      if let training = contents.training, let done = contents.epochsDone {
        try training.validate()
        var trainer = try Trainer(model: model, options: training, train: Self.images)
        try trainer.optimizer.loadState(contents.optimizerState)
        trainer.restore(epochsDone: done)
        if fitsImages && done < training.epochs { _ = try trainer.trainEpoch() }
      }
      let packed = try EngineExport.packedFile(for: model)
      _ = try InferenceModel(bytes: packed.serialized())
    }
    #expect(accepted > 0, "no mutant was accepted: the harness only tests the first checks")
  }

  /// Packed engine models, loaded and run on images of their input shape.
  @Test func mutatedPackedModels() throws {
    let model = try WrapModel(config: ModelConfig(architecture: "cnn", accumulatorBits: 6), seed: 3)
    let accepted = try Self.fuzz(
      "packed", try EngineExport.packedFile(for: model).serialized(), format: .safetensors,
      count: fuzzMutantCount(ci: 200), extension: ".safetensors"
    ) { bytes, _ in
      let engine = try InferenceModel(bytes: bytes, source: "mutant")
      if engine.inputShape == [1, 28, 28] {
        _ = try engine.run(pixels: Self.images.images, count: Self.images.count)
      }
    }
    #expect(accepted > 0)
  }

  /// IDX images and labels, raw and gzip-compressed.
  @Test func mutatedIDXFiles() throws {
    let images = IDXArray(dimensions: [4, 28, 28], bytes: Self.images.images).encoded()
    let labels = idxLabels(Self.images.labels).encoded()
    var accepted = 0
    for (name, input) in [("idx-images", images), ("idx-labels", labels)] {
      accepted += try Self.fuzz(name, input, format: .idx, count: fuzzMutantCount(ci: 100), extension: "") { _, path in
        _ = name == "idx-images" ? try IDXReader.readImages(path: path, height: 28, width: 28).bytes.count
          : try IDXReader.readLabels(path: path, classCount: 10).count
      }
      accepted += try Self.fuzz(
        name + "-gz", input, format: .gzipIDX, count: fuzzMutantCount(ci: 50), extension: ".gz"
      ) { _, path in
        _ = name == "idx-images" ? try IDXReader.readImages(path: path, height: 28, width: 28).bytes.count
          : try IDXReader.readLabels(path: path, classCount: 10).count
      }
    }
    #expect(accepted > 0)
  }

  /// CIFAR-10 batch files.
  @Test func mutatedCIFARBatches() throws {
    var file: [UInt8] = []
    for i in 0..<3 {
      file.append(UInt8(i))
      file += testBytes(count: 3072, seed: UInt64(i + 1))
    }
    let accepted = try Self.fuzz(
      "cifar", file, format: .raw, count: fuzzMutantCount(ci: 200), extension: ".bin"
    ) { _, path in _ = try CIFAR10Reader.readBatch(path: path) }
    #expect(accepted > 0)
  }
}
