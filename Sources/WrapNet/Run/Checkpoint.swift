import Foundation

/// Problems with a checkpoint file: what was expected, what was found, and the file.
public struct CheckpointError: Error, CustomStringConvertible {
  public var path: String
  public var reason: String
  public init(path: String, reason: String) {
    self.path = path
    self.reason = reason
  }
  public var description: String { "\(path): \(reason)" }
}

/// WrapNet checkpoints: safetensors files (readable with `safetensors.numpy.load_file`) holding every parameter
/// ("input.weight", "bn0.weight", ...), every buffer ("bn0.running_mean", ...), and in `__metadata__`:
///
/// | key              | value                                                          |
/// |------------------|----------------------------------------------------------------|
/// | `format`         | `"wrapnet.checkpoint"`                                         |
/// | `format_version` | `"1"`                                                          |
/// | `config`         | `ModelConfig` as JSON (architecture and quantization)          |
/// | `training`       | `TrainingOptions` as JSON (when written by `wrapnet train`)    |
/// | `epochs_done`    | completed epochs (resume files)                                |
/// | `history`        | per-epoch statistics so far, JSON array (resume files)         |
///
/// Resume files (`checkpoint.safetensors`) also hold the optimizer state as tensors named "optimizer.<key>".
public enum Checkpoint {
  public static let format = "wrapnet.checkpoint"
  public static let formatVersion = "1"

  /// Every parameter and buffer of `model` by name.
  public static func tensors(of model: inout WrapModel) -> [String: Tensor] {
    var out: [String: Tensor] = [:]
    model.network.visitParameters { name, value, _ in out[name] = value }
    model.network.visitBuffers { name, value in out[name] = value }
    return out
  }

  /// Writes `model` (and optional training options, optimizer state, epochs done) atomically to `path`.
  public static func save(
    _ model: inout WrapModel, to path: String, training: TrainingOptions? = nil,
    optimizerState: [String: Tensor] = [:], epochsDone: Int? = nil,
    history: String? = nil
  ) throws {
    var file = SafeTensorsFile()
    for (name, t) in tensors(of: &model) { file.tensors[name] = SafeTensor(t) }
    for (name, t) in optimizerState { file.tensors["optimizer.\(name)"] = SafeTensor(t) }
    file.metadata["format"] = format
    file.metadata["format_version"] = formatVersion
    file.metadata["config"] = try jsonString(model.config)
    if let training { file.metadata["training"] = try jsonString(training) }
    if let epochsDone { file.metadata["epochs_done"] = String(epochsDone) }
    if let history { file.metadata["history"] = history }
    try file.write(to: path)
  }

  /// What a checkpoint holds besides the model.
  public struct Contents {
    public var model: WrapModel
    public var training: TrainingOptions?
    public var optimizerState: [String: Tensor]
    public var epochsDone: Int?
    /// Per-epoch history of the run so far, as JSON (resume files).
    public var history: String?
  }

  /// Reads a checkpoint and rebuilds its model. Throws a `CheckpointError` naming the file and the problem
  /// (not a safetensors file, not a WrapNet checkpoint, newer format, bad configuration, missing or mis-shaped
  /// tensors, tensors the model does not have).
  public static func load(from path: String) throws -> Contents {
    guard FileManager.default.fileExists(atPath: path) else {
      throw CheckpointError(path: path, reason: "no such file (expected a model.safetensors written by `wrapnet train`)")
    }
    let file: SafeTensorsFile
    do { file = try SafeTensorsFile.read(from: path) } catch let error as SafeTensorsError {
      // The error's own description repeats the path.
      throw CheckpointError(
        path: path,
        reason: error.kind == .unreadable ? error.reason : "not a valid safetensors file: \(error.reason)")
    }
    guard file.metadata["format"] == format else {
      throw CheckpointError(
        path: path,
        reason: "not a WrapNet checkpoint (metadata 'format' is \(file.metadata["format"].map { "'\($0)'" } ?? "missing"), expected '\(format)')")
    }
    guard file.metadata["format_version"] == formatVersion else {
      throw CheckpointError(
        path: path,
        reason: "checkpoint format version \(file.metadata["format_version"] ?? "missing") is not supported (this wrapnet reads version \(formatVersion))")
    }
    guard let configText = file.metadata["config"] else {
      throw CheckpointError(path: path, reason: "metadata has no 'config' (architecture and quantization)")
    }
    let config: ModelConfig
    do { config = try JSONDecoder().decode(ModelConfig.self, from: Data(configText.utf8)) } catch {
      throw CheckpointError(path: path, reason: "metadata 'config' is not a valid model configuration: \(error)")
    }
    var model: WrapModel
    do { model = try WrapModel(config: config, seed: 0) } catch {
      throw CheckpointError(path: path, reason: "metadata 'config': \(error)")
    }
    var expected = Set<String>()
    var problem: String? = nil
    func assign(_ name: String, _ value: inout Tensor) {
      expected.insert(name)
      guard problem == nil else { return }
      guard let st = file.tensors[name] else { problem = "tensor '\(name)' is missing"; return }
      guard let t = st.floatTensor else { problem = "tensor '\(name)' has dtype \(st.dtype), expected F32"; return }
      guard t.shape == value.shape else {
        problem = "tensor '\(name)' has shape \(t.shape), the model needs \(value.shape)"
        return
      }
      guard t.data.allSatisfy({ $0.isFinite }) else { problem = "tensor '\(name)' holds NaN or infinity"; return }
      value = t
    }
    model.network.visitParameters { name, value, _ in assign(name, &value) }
    model.network.visitBuffers { name, value in assign(name, &value) }
    if let problem { throw CheckpointError(path: path, reason: problem) }
    var optimizerState: [String: Tensor] = [:]
    for (name, st) in file.tensors where !expected.contains(name) {
      if name.hasPrefix("optimizer."), let t = st.floatTensor {
        optimizerState[String(name.dropFirst("optimizer.".count))] = t
      } else {
        throw CheckpointError(path: path, reason: "tensor '\(name)' does not belong to a '\(config.architecture)' model")
      }
    }
    var training: TrainingOptions? = nil
    if let text = file.metadata["training"] {
      do { training = try JSONDecoder().decode(TrainingOptions.self, from: Data(text.utf8)) } catch {
        throw CheckpointError(path: path, reason: "metadata 'training' is not valid: \(error)")
      }
    }
    let epochs = file.metadata["epochs_done"].flatMap { Int($0) }
    return Contents(
      model: model, training: training, optimizerState: optimizerState, epochsDone: epochs,
      history: file.metadata["history"])
  }

  static func jsonString<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
  }
}

extension WrapModel {
  /// Copies every parameter and buffer from `source` (same architecture, any quantization): fine-tuning a
  /// 32-bit-accumulator model for b-bit accumulators. Throws when the architectures differ.
  public mutating func loadWeights(from source: WrapModel, sourcePath: String) throws {
    var src = source
    let tensors = Checkpoint.tensors(of: &src)
    var problem: String? = nil
    func take(_ name: String, _ value: inout Tensor) {
      guard problem == nil else { return }
      guard let t = tensors[name], t.shape == value.shape else {
        problem = "tensor '\(name)' \(tensors[name].map { "has shape \($0.shape), expected \(value.shape)" } ?? "is missing")"
        return
      }
      value = t
    }
    network.visitParameters { name, value, _ in take(name, &value) }
    network.visitBuffers { name, value in take(name, &value) }
    if let problem {
      throw CheckpointError(
        path: sourcePath,
        reason: "cannot initialize a '\(config.displayName)' model from this '\(source.config.displayName)' checkpoint: \(problem)"
          + (source.config.widthMultiplier != config.widthMultiplier
            ? " (it was trained with --width-multiplier \(source.config.widthMultiplier))" : ""))
    }
  }
}
