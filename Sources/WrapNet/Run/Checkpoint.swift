import Foundation
import WrapNetEngine

/// Problems with a checkpoint file: what was expected, what was found, and the file.
public typealias CheckpointError = FileError

/// WrapNet checkpoints: safetensors files (readable with `safetensors.numpy.load_file`) holding every parameter
/// ("input.weight", "bn0.weight", ...), every buffer ("bn0.running_mean", ...), and in `__metadata__`:
///
/// | key              | value                                                          |
/// |------------------|----------------------------------------------------------------|
/// | `format`         | `"wrapnet.checkpoint"`                                         |
/// | `format_version` | `"1"`                                                          |
/// | `config`         | `ModelConfig` as JSON (architecture and quantization)          |
/// | `config_md5`     | MD5 of `config` (an edited configuration is refused)           |
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
    let configText = try jsonString(model.config)
    file.metadata["config"] = configText
    file.metadata["config_md5"] = MD5.digest(Array(configText.utf8)).hexString
    if let training { file.metadata["training"] = try jsonString(training) }
    if let epochsDone { file.metadata["epochs_done"] = String(epochsDone) }
    if let history { file.metadata["history"] = history }
    try file.write(to: path)
  }

  /// Writes `message` and a newline to standard error.
  public static func printWarning(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
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
  ///
  /// A file without `config_md5` is read as written, and `warning` is called once with a message saying that an
  /// edited configuration cannot be detected in it (the default prints it on standard error).
  public static func load(from path: String, warning: (String) -> Void = Checkpoint.printWarning) throws -> Contents {
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
    if let digest = file.metadata["config_md5"], digest != MD5.digest(Array(configText.utf8)).hexString {
      throw CheckpointError(
        path: path,
        reason: "metadata 'config' was changed after the checkpoint was written (its MD5 is not 'config_md5'); the weights were trained for the original configuration: restore the file, evaluate other accumulators with `wrapnet eval --acc-bits/--acc-mode`, or fine-tune with `wrapnet train --init`")
    }
    if file.metadata["config_md5"] == nil {
      warning("warning: \(path) has no 'config_md5', so an edit of its 'config' cannot be detected; the model is read as its 'config' says")
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
    var parameterShapes: [String: [Int]] = [:]
    model.network.visitParameters { name, value, _ in
      assign(name, &value)
      parameterShapes[name] = value.shape
    }
    model.network.visitBuffers { name, value in assign(name, &value) }
    model.network.visitWrapLayers { layer in
      if problem == nil, let p = layer.preloadProblem { problem = p }
    }
    if let problem { throw CheckpointError(path: path, reason: problem) }
    var optimizerState: [String: Tensor] = [:]
    for (name, st) in file.tensors where !expected.contains(name) {
      if name.hasPrefix("optimizer."), let t = st.floatTensor {
        let key = String(name.dropFirst("optimizer.".count))
        if let problem = optimizerStateProblem(key, t, parameterShapes: parameterShapes) {
          throw CheckpointError(path: path, reason: "tensor '\(name)' \(problem)")
        }
        optimizerState[key] = t
      } else {
        throw CheckpointError(path: path, reason: "tensor '\(name)' does not belong to a '\(config.architecture)' model")
      }
    }
    var training: TrainingOptions? = nil
    if let text = file.metadata["training"] {
      let options: TrainingOptions
      do { options = try JSONDecoder().decode(TrainingOptions.self, from: Data(text.utf8)) } catch {
        throw CheckpointError(path: path, reason: "metadata 'training' is not valid: \(error)")
      }
      do { try options.validate(for: config) } catch {
        throw CheckpointError(path: path, reason: "metadata 'training': \(error)")
      }
      training = options
    }
    var epochs: Int? = nil
    if let text = file.metadata["epochs_done"] {
      let limit = training?.epochs ?? TrainingOptions.maxEpochs
      guard let done = Int(text), (0...limit).contains(done) else {
        throw CheckpointError(
          path: path, reason: "metadata 'epochs_done' must be an integer in 0...\(limit) (the run's epochs), found '\(text)'")
      }
      epochs = done
    }
    return Contents(
      model: model, training: training, optimizerState: optimizerState, epochsDone: epochs,
      history: file.metadata["history"])
  }

  /// Why optimizer state `key` (without "optimizer.") cannot belong to this model, or nil: "adam.m.<p>",
  /// "adam.v.<p>" and "sgd.momentum.<p>" must have parameter p's shape, "adam.step.<p>" one value; every value
  /// finite, Adam's second moments and steps not negative.
  static func optimizerStateProblem(_ key: String, _ t: Tensor, parameterShapes: [String: [Int]]) -> String? {
    let kinds = ["adam.m.", "adam.v.", "adam.step.", "sgd.momentum."]
    guard let kind = kinds.first(where: { key.hasPrefix($0) }) else {
      return "is not optimizer state of the form \(kinds.map { $0 + "<parameter>" }.joined(separator: ", "))"
    }
    let parameter = String(key.dropFirst(kind.count))
    guard let shape = parameterShapes[parameter] else { return "names parameter '\(parameter)', which the model does not have" }
    if kind == "adam.step." {
      guard t.count == 1 else { return "must hold one step count, found shape \(t.shape)" }
    } else if t.shape != shape {
      return "has shape \(t.shape), but parameter '\(parameter)' has shape \(shape)"
    }
    guard t.data.allSatisfy({ $0.isFinite }) else { return "holds NaN or infinity" }
    if kind == "adam.v." || kind == "adam.step.", t.data.contains(where: { $0 < 0 }) {
      return "holds negative values (Adam's second moments and step counts are never negative)"
    }
    return nil
  }

  static func jsonString<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
  }
}

extension WrapModel {
  /// Copies every parameter and buffer from `source` (same architecture, any quantization): fine-tuning a
  /// 32-bit-accumulator model for b-bit accumulators. Throws when the architectures differ. Accumulator preloads
  /// the source lacks stay 0; preloads it has that this model lacks are not taken.
  /// The source's residual input clips come with its weights (they set the codes its first convolutions were
  /// trained on).
  public mutating func loadWeights(from source: WrapModel, sourcePath: String) throws {
    // (Another architecture is refused below, by the tensors it lacks.)
    if source.config.architecture == config.architecture, source.config.residualInputClips != config.residualInputClips {
      self = try withResidualInputClips(source.config.residualInputClips)
    }
    if let problem = copyTensors(from: source) {
      throw CheckpointError(
        path: sourcePath,
        reason: "cannot initialize a '\(config.displayName)' model from this '\(source.config.displayName)' checkpoint: \(problem)"
          + (source.config.widthMultiplier != config.widthMultiplier || source.config.widthDivisor != config.widthDivisor
            ? " (it was trained with --width-multiplier \(source.config.widthMultiplier) --width-divisor \(source.config.widthDivisor))" : ""))
    }
  }

  /// This model with residual input clips `clips` (`ModelConfig.residualInputClips`; nil: none), rebuilt from its
  /// configuration with every parameter and buffer carried over by name. A block's first convolution then reads
  /// its input at the new code step and its input scale follows, so with exact accumulators it computes the same
  /// function up to the rounding of the coarser codes.
  public func withResidualInputClips(_ clips: [Float]?) throws -> WrapModel {
    var config = self.config
    config.residualInputClips = clips
    var out = try WrapModel(config: config, seed: 0)
    if let problem = out.copyTensors(from: self) {
      throw ConfigError(message: "rebuilding '\(config.displayName)' with residual input clips: \(problem)")
    }
    return out
  }

  /// Copies every parameter and buffer of this model from `source` by name; nil, or why a tensor could not be
  /// taken (missing or of another shape; the tensors before it are copied).
  private mutating func copyTensors(from source: WrapModel) -> String? {
    var src = source
    let tensors = Checkpoint.tensors(of: &src)
    var problem: String? = nil
    func take(_ name: String, _ value: inout Tensor) {
      guard problem == nil else { return }
      // A source without accumulator preloads (a 32-bit model) leaves them at 0: registers that start at 0.
      if tensors[name] == nil, name.hasSuffix(".preload") { return }
      guard let t = tensors[name], t.shape == value.shape else {
        problem = "tensor '\(name)' \(tensors[name].map { "has shape \($0.shape), expected \(value.shape)" } ?? "is missing")"
        return
      }
      value = t
    }
    network.visitParameters { name, value, _ in take(name, &value) }
    network.visitBuffers { name, value in take(name, &value) }
    return problem
  }
}
