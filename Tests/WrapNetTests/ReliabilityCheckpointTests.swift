import Foundation
import Testing
import WrapNet
import WrapNetEngine
import WrapNetTestSupport

/// `text` (a JSON object) with `key` set to `value`.
func editedJSON(_ text: String, _ key: String, _ value: Any) -> String {
  var object = (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
  object[key] = value
  let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
  return String(decoding: data, as: UTF8.self)
}

/// A checkpoint file with `config` replaced and its digest recomputed (as a deliberate editor would), so that the
/// range checks behind the digest are reached.
func withConfig(_ file: SafeTensorsFile, _ config: String) -> SafeTensorsFile {
  var out = file
  out.metadata["config"] = config
  out.metadata["config_md5"] = MD5.digest(Array(config.utf8)).hexString
  return out
}

/// Every field of a checkpoint is checked against its range and against the tensors before anything is built;
/// a packed model's shapes are checked with overflow-checked arithmetic; models too large for the memory are
/// refused with the estimate.
@Suite(.serialized) struct ReliabilityCheckpointTests {
  /// A resume file of a 2-epoch run after one epoch (Adam state included).
  static func resumeFile() throws -> SafeTensorsFile {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let path = dir.file("checkpoint.safetensors")
    try writeResumeCheckpoint(to: path, images: syntheticDataset(count: 32, seed: 3), batchSize: 16)
    return try SafeTensorsFile.read(from: path)
  }

  func expectRefused(_ file: SafeTensorsFile, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let path = dir.file("edited.safetensors")
    try file.write(to: path)
    #expect(sourceLocation: sourceLocation) { _ = try Checkpoint.load(from: path) } throws: { error in
      "\(error)".contains(path) && "\(error)".contains(fragment)
    }
  }

  @Test func editedMetadataIsRefused() throws {
    let good = try Self.resumeFile()
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    try good.write(to: dir.file("good.safetensors"))
    #expect(try Checkpoint.load(from: dir.file("good.safetensors")).epochsDone == 1)
    let config = try #require(good.metadata["config"]), training = try #require(good.metadata["training"])

    // The configuration edited without its digest: the weights were trained for another one.
    var file = good
    file.metadata["config"] = editedJSON(config, "weight_bits", 7)
    try expectRefused(file, "changed after the checkpoint was written")
    // Out-of-range configuration values (digest recomputed).
    for (key, value, fragment) in [
      ("input_channels", 1 << 62, "input channels must be in"), ("input_channels", -1, "input channels must be in"),
      ("classes", -1, "classes must be in"), ("classes", 1_000_000, "classes must be in"),
      ("accumulator_bits", 64, "accumulator_bits must be in 2...32, got 64"),
    ] as [(String, Int, String)] {
      try expectRefused(withConfig(good, editedJSON(config, key, value)), fragment)
    }
    // Training options.
    for (key, value, fragment) in [
      ("epochs", 1 << 62, "--epochs must be in"), ("epochs", -3, "--epochs must be in"),
      ("step_epochs", [1 << 62], "--step-epochs"), ("step_epochs", [-1], "--step-epochs"),
      ("batch_size", 0, "--batch-size"), ("dataset", "cifar10", "[3, 32, 32]"), ("dataset", "imagenet", "dataset must be"),
    ] as [(String, Any, String)] {
      file = good
      file.metadata["training"] = editedJSON(training, key, value)
      try expectRefused(file, fragment)
    }
    for value in ["-1", "\(Int.min)", "3", "x"] {
      file = good
      file.metadata["epochs_done"] = value
      try expectRefused(file, "'epochs_done' must be an integer in 0...2")
    }
  }

  /// A file without `config_md5` is read, and the reader is told once that an edit cannot be detected in it; with
  /// the digest there is no warning.
  @Test func missingDigestIsReadWithAWarning() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    var file = try Self.resumeFile()
    var warnings: [String] = []
    try file.write(to: dir.file("digest.safetensors"))
    _ = try Checkpoint.load(from: dir.file("digest.safetensors"), warning: { warnings.append($0) })
    #expect(warnings.isEmpty)
    file.metadata["config_md5"] = nil
    try file.write(to: dir.file("plain.safetensors"))
    let contents = try Checkpoint.load(from: dir.file("plain.safetensors"), warning: { warnings.append($0) })
    #expect(contents.epochsDone == 1)
    #expect(warnings.count == 1 && warnings[0].contains("plain.safetensors has no 'config_md5'"), "\(warnings)")
  }

  @Test func inconsistentOptimizerStateIsRefused() throws {
    let good = try Self.resumeFile()
    let name = "optimizer.adam.m.fc2.weight", v = "optimizer.adam.v.fc2.weight"
    let m = try #require(good.tensors[name]?.floatTensor)
    // m and v consistent with each other, but not with the parameter.
    var file = good
    let wrong = Tensor(shape: [m.count / 2, 2], data: Array(m.data))
    file.tensors[name] = SafeTensor(wrong)
    file.tensors[v] = SafeTensor(wrong)
    try expectRefused(file, "but parameter 'fc2.weight' has shape")
    file = good
    var bad = m
    bad.data[5] = .nan
    file.tensors[name] = SafeTensor(bad)
    try expectRefused(file, "holds NaN or infinity")
    file = good
    bad = try #require(good.tensors[v]?.floatTensor)
    bad.data[0] = -1
    file.tensors[v] = SafeTensor(bad)
    try expectRefused(file, "negative")
    file = good
    file.tensors["optimizer.adam.m.nothing"] = SafeTensor(Tensor(shape: [1], data: [0]))
    try expectRefused(file, "which the model does not have")
    file = good
    var weight = try #require(good.tensors["fc3.weight"]?.floatTensor)
    weight.data[0] = .infinity
    file.tensors["fc3.weight"] = SafeTensor(weight)
    try expectRefused(file, "NaN or infinity")
  }

  /// The estimate counts exactly the values of the built model.
  @Test(arguments: ModelConfig.architectures)
  func parameterCountMatchesTheBuiltModel(architecture: String) throws {
    for m in [1, 2] {
      let colour = ["vgg-small", "resnet20"].contains(architecture)
      let config = ModelConfig(
        architecture: architecture, inputChannels: colour ? 3 : 1, inputHeight: colour ? 32 : 28,
        inputWidth: colour ? 32 : 28, classes: 7, widthMultiplier: m)
      var model = try WrapModel(config: config, seed: 1)
      let built = Checkpoint.tensors(of: &model).values.reduce(0) { $0 + $1.count }
      #expect(config.parameterCount == built, "\(architecture) ×\(m)")
    }
  }

  /// Under a 4 GB address-space limit, a model inside the documented ranges but too large for it is refused with
  /// the estimate, before anything is allocated: by its parameters (mlp ×16), or by the activations of one batch
  /// (vgg-small at 2,048 images per batch: 351,232 values per image × 3 copies × 4 bytes ≈ 8 GiB).
  @Test(arguments: [
    (["--model", "mlp", "--width-multiplier", "16"], 96, "parameters × 2 copies"),
    (["--model", "vgg-small", "--batch-size", "2048"], 2048, "2048 images × 351232 activations × 3 copies"),
  ])
  func tooLargeModelIsRefusedWithTheEstimate(flags: [String], trainImages: Int, term: String) throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let data = try writeSyntheticMNIST(in: dir, train: trainImages)
    let script = "ulimit -v 4000000; exec '\(wrapnetExecutable().path)' train --data-dir '\(data)' \(flags.joined(separator: " ")) --out '\(dir.file("run"))'"
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/bash")
    p.arguments = ["-c", script]
    let err = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    #expect(p.terminationReason == .exit && p.terminationStatus == 1, "\(text)")
    #expect(text.contains("needs at least") && text.contains("GiB of memory is available"), "\(text)")
    #expect(text.contains(term), "\(text)")
    #expect(!FileManager.default.fileExists(atPath: dir.file("run") + "/model.safetensors"))
  }

  /// The activation estimate counts the hidden layers' output planes of the built model, image by image.
  @Test(arguments: ModelConfig.architectures)
  func activationCountMatchesTheBuiltModel(architecture: String) throws {
    let zoo28 = ["mlp", "cnn"].contains(architecture)
    for (h, m) in [(28, 1), (28, 2)] + (zoo28 ? [] : [(32, 2)]) {
      let config = ModelConfig(
        architecture: architecture, inputChannels: 1, inputHeight: h, inputWidth: h, classes: 7, widthMultiplier: m)
      var model = try WrapModel(config: config, seed: 1)
      var counted = 0
      model.network.visitWrapLayers { $0.keepSums = true }
      _ = model.forward(Tensor(shape: [1, 1, h, h]), phase: .evaluation)
      model.network.visitWrapLayers { layer in
        if layer.name != "logits" { counted += layer.lastSums!.count }
      }
      #expect(config.activationValuesPerImage == counted, "\(architecture) \(h)×\(h) ×\(m)")
    }
  }

  /// Packed models whose convolution geometry would overflow the loader's arithmetic are refused.
  @Test func hugePackedShapesAreRefused() throws {
    let model = try WrapModel(config: ModelConfig(architecture: "cnn"), seed: 1)
    let good = try EngineExport.packedFile(for: model)
    let layers = try #require(good.metadata["layers"])
    for (key, value) in [("kernel", 1 << 32), ("padding", 1 << 62), ("stride", 1 << 62), ("kernel", -1)] {
      var list = try #require(try JSONSerialization.jsonObject(with: Data(layers.utf8)) as? [[String: Any]])
      list[0][key] = value
      var file = good
      file.metadata["layers"] = String(decoding: try JSONSerialization.data(withJSONObject: list), as: UTF8.self)
      #expect { _ = try InferenceModel(bytes: file.serialized(), source: "m") } throws: { error in
        "\(error)".contains("layer 0") && "\(error)".contains("conv needs")
      }
    }
  }
}
