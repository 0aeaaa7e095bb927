import Foundation
import WrapNetEngine

/// One cell of an accumulator sweep: a (phase, bits, mode[, slope, penalty]) point.
///
/// - `eval`: the 32-bit base model evaluated unchanged with this accumulator ("no retraining").
/// - `finetune`: the base model fine-tuned with this accumulator (same budget and seed for every cell), then
///   evaluated with it.
/// The penalty λ applies to `cyclic` fine-tuning only (WrapNet = cyclic activation + overflow penalty); every other
/// mode is fine-tuned with λ = 0, so it shows what that accumulator gets from adaptation alone.
public struct SweepCell: Sendable, Hashable {
  public enum Phase: String, Sendable, Codable { case eval, finetune }
  public var phase: Phase
  public var mode: AccumulatorMode
  /// Accumulator bits (32 for `exact`).
  public var bits: Int
  /// Cyclic slope k (`cyclic` only).
  public var slope: Float?
  /// Overflow penalty λ (`cyclic` fine-tuning only).
  public var penalty: Float?

  public init(phase: Phase, mode: AccumulatorMode, bits: Int, slope: Float? = nil, penalty: Float? = nil) {
    self.phase = phase
    self.mode = mode
    self.bits = mode == .exact ? 32 : bits
    self.slope = slope
    self.penalty = penalty
  }

  /// Stable identifier used to resume: "eval/b8/wrap", "finetune/b8/cyclic/k2/l0.01", "finetune/exact".
  public var key: String {
    if mode == .exact { return "\(phase.rawValue)/exact" }
    var k = "\(phase.rawValue)/b\(bits)/\(mode.rawValue)"
    if let slope { k += "/k\(SweepCell.number(slope))" }
    if let penalty { k += "/l\(SweepCell.number(penalty))" }
    return k
  }

  /// The low-bit layers' accumulator for this cell.
  public var accumulator: Accumulator {
    mode == .exact ? .wide : Accumulator(width: AccumulatorWidth(bits: bits), mode: mode, slope: slope ?? 2)
  }

  /// Short label for tables and progress: "8-bit cyclic k=2 λ=0.01".
  public var label: String {
    if mode == .exact { return "32-bit exact" }
    var s = "\(bits)-bit \(mode.rawValue)"
    if let slope { s += " k=\(SweepCell.number(slope))" }
    if let penalty { s += " λ=\(SweepCell.number(penalty))" }
    return s
  }

  /// Shortest decimal form of a flag value ("2", "0.01").
  package static func number(_ x: Float) -> String {
    x == x.rounded() && abs(x) < 1e6 ? String(Int(x)) : "\(x)"
  }
}

/// The grid of a sweep: which accumulator widths, modes, cyclic slopes and penalties.
public struct SweepGrid: Sendable, Equatable, Codable {
  public var bits: [Int]
  public var modes: [AccumulatorMode]
  public var slopes: [Float]
  public var penalties: [Float]

  public init(bits: [Int], modes: [AccumulatorMode], slopes: [Float] = [2], penalties: [Float] = [0.01]) {
    self.bits = bits
    self.modes = modes
    self.slopes = slopes
    self.penalties = penalties
  }

  /// Checks the lists; messages name the flag.
  public func validate() throws {
    func fail(_ s: String) -> ConfigError { ConfigError(message: s) }
    guard !bits.isEmpty || modes == [.exact] else { throw fail("--bits is empty") }
    // Sweep widths are low-bit accumulators: the supported range less the 32-bit one, which is the exact base.
    let lowBit = AccumulatorWidth.supported.lowerBound...(AccumulatorWidth.wide.bits - 1)
    for b in bits where !lowBit.contains(b) { throw fail("--bits must be in \(lowBit), got \(b)") }
    guard !modes.isEmpty else { throw fail("--modes is empty") }
    guard !slopes.isEmpty, slopes.allSatisfy({ $0 > 0 && $0.isFinite }) else { throw fail("--slopes must be positive numbers") }
    guard !penalties.isEmpty, penalties.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
      throw fail("--penalties must be non-negative numbers")
    }
    for list in [bits.map(String.init), modes.map(\.rawValue), slopes.map { "\($0)" }, penalties.map { "\($0)" }]
    where Set(list).count != list.count {
      throw fail("duplicate value in \(list.joined(separator: ","))")
    }
  }

  /// Every cell, cheap no-retraining evaluations first, then fine-tuning, each in the order the flags list them.
  public func cells() -> [SweepCell] {
    var out: [SweepCell] = []
    for phase in [SweepCell.Phase.eval, .finetune] {
      if modes.contains(.exact) { out.append(SweepCell(phase: phase, mode: .exact, bits: 32)) }
      for b in bits {
        for m in modes where m != .exact {
          if m == .cyclic {
            for k in slopes {
              if phase == .eval {
                out.append(SweepCell(phase: phase, mode: m, bits: b, slope: k))
              } else {
                for l in penalties { out.append(SweepCell(phase: phase, mode: m, bits: b, slope: k, penalty: l)) }
              }
            }
          } else {
            out.append(SweepCell(phase: phase, mode: m, bits: b))
          }
        }
      }
    }
    return out
  }
}

/// Everything that fixes a sweep's results; stored as the first line of `results.jsonl`, so a resumed sweep can
/// refuse to mix results of different settings.
public struct SweepSettings: Sendable, Equatable, Codable {
  public var dataset: String
  /// The base model's configuration (its accumulator is the 32-bit one).
  public var model: ModelConfig
  /// Fine-tuning budget of every cell.
  public var training: TrainingOptions
  public var limitTest: Int?
  /// MD5 of the base model file: cells of different base models never mix.
  public var baseDigest: String
  /// `true`: every fine-tuning cell starts with `RangeCalibration` of the base model for its accumulator. nil (not
  /// false) otherwise, so journals written without the option keep their settings line.
  public var calibrate: Bool?
  /// The calibration target (`RangeCalibration.calibrate`'s `target`); nil: the default.
  public var calibrationTarget: Double?
  /// How calibration treats layers fed by a residual sum; nil: `.none` (and models without residual blocks).
  public var residualCalibration: RangeCalibration.ResidualCalibration?
  /// `true`: every fine-tuning cell whose accumulator takes one (wrap, cyclic, clamp, saturate below 32 bits) gets
  /// per-channel accumulator preloads, set by calibration (`ModelConfig.accumulatorPreload`). nil otherwise.
  public var preload: Bool?

  public init(
    dataset: String, model: ModelConfig, training: TrainingOptions, limitTest: Int?, baseDigest: String,
    calibrate: Bool? = nil, calibrationTarget: Double? = nil,
    residualCalibration: RangeCalibration.ResidualCalibration? = nil, preload: Bool? = nil
  ) {
    self.dataset = dataset
    self.model = model
    self.training = training
    self.limitTest = limitTest
    self.baseDigest = baseDigest
    self.calibrate = calibrate
    self.calibrationTarget = calibrationTarget
    self.residualCalibration = residualCalibration
    self.preload = preload
  }

  enum CodingKeys: String, CodingKey {
    case dataset, model, training
    case limitTest = "limit_test"
    case baseDigest = "base_md5"
    case calibrate
    case calibrationTarget = "calibration_target"
    case residualCalibration = "residual_calibration"
    case preload
  }
}

/// Overflow of one layer in a sweep cell.
public struct SweepLayer: Sendable, Equatable, Codable {
  public var name: String
  public var accumulatorBits: Int
  public var outputs: Int
  public var overflows: Int
  public var overflowRate: Double

  enum CodingKeys: String, CodingKey {
    case name
    case accumulatorBits = "accumulator_bits"
    case outputs, overflows
    case overflowRate = "overflow_rate"
  }
}

/// One line of `results.jsonl`: the outcome of one cell.
public struct SweepResult: Sendable, Equatable, Codable {
  public var key: String
  public var phase: SweepCell.Phase
  public var mode: AccumulatorMode
  public var bits: Int
  public var slope: Float?
  public var penalty: Float?
  /// "ok", or "infeasible" (with `reason`) when the setting cannot be built, e.g. `avoid` with binary weights.
  public var status: String
  public var reason: String?
  /// Test accuracy (0…1) and its parts.
  public var accuracy: Double?
  public var correct: Int?
  public var count: Int?
  /// Share of low-bit outputs whose exact sum left the b-bit range, over the test set; and per quantized layer.
  public var overflowRate: Double?
  public var layers: [SweepLayer]?
  /// `avoid`: share of low-bit weight codes the ‖w‖₁ constraint forces to zero.
  public var forcedZeroShare: Double?
  /// `finetune`: loss of the last epoch (cross-entropy + penalty).
  public var trainLoss: Double?
  /// `finetune` with `SweepSettings.calibrate`: what range calibration did to each low-bit layer.
  public var calibration: [RangeCalibration.LayerResult]?
  /// Wall time of the cell (not part of the results' identity: see `withoutTiming`).
  public var seconds: Double
  /// What the cell's accumulator needs in hardware.
  public var hardware: String

  public init(
    key: String, phase: SweepCell.Phase, mode: AccumulatorMode, bits: Int, slope: Float? = nil, penalty: Float? = nil,
    status: String, reason: String? = nil, accuracy: Double? = nil, correct: Int? = nil, count: Int? = nil,
    overflowRate: Double? = nil, layers: [SweepLayer]? = nil, forcedZeroShare: Double? = nil, trainLoss: Double? = nil,
    seconds: Double, hardware: String
  ) {
    self.key = key
    self.phase = phase
    self.mode = mode
    self.bits = bits
    self.slope = slope
    self.penalty = penalty
    self.status = status
    self.reason = reason
    self.accuracy = accuracy
    self.correct = correct
    self.count = count
    self.overflowRate = overflowRate
    self.layers = layers
    self.forcedZeroShare = forcedZeroShare
    self.trainLoss = trainLoss
    self.seconds = seconds
    self.hardware = hardware
  }

  enum CodingKeys: String, CodingKey {
    case key, phase, mode, bits, slope, penalty, status, reason, accuracy, correct, count
    case overflowRate = "overflow_rate"
    case layers
    case forcedZeroShare = "forced_zero_share"
    case trainLoss = "train_loss"
    case calibration
    case seconds, hardware
  }

  /// The result with its wall time zeroed: two runs of the same sweep give equal values.
  public var withoutTiming: SweepResult {
    var r = self
    r.seconds = 0
    return r
  }
}

/// `results.jsonl`: the settings line, then one line per finished cell, appended (and flushed) as each finishes.
///
/// A sweep killed while writing leaves at most one partial last line; `open` drops it, so the cell runs again.
public struct SweepJournal {
  public let path: String
  public let settings: SweepSettings
  public private(set) var results: [SweepResult]

  /// The settings fields that differ between a journal's `stored` settings and `now`, as
  /// "json.path (journal: X, now: Y)", sorted by path.
  static func differences(_ stored: SweepSettings, _ now: SweepSettings) -> [String] {
    func flat(_ settings: SweepSettings) -> [String: String] {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      guard let data = try? encoder.encode(settings), let object = try? JSONSerialization.jsonObject(with: data) else {
        return [:]
      }
      var out: [String: String] = [:]
      func walk(_ value: Any, _ path: String) {
        if let dict = value as? [String: Any] {
          for (k, v) in dict { walk(v, path.isEmpty ? k : "\(path).\(k)") }
        } else if let text = value as? String {
          out[path] = "\"\(text)\""
        } else if JSONSerialization.isValidJSONObject(value),
          let d = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])
        {
          out[path] = String(decoding: d, as: UTF8.self)
        } else {
          out[path] = "\(value)"
        }
      }
      walk(object, "")
      return out
    }
    let (a, b) = (flat(stored), flat(now))
    return Set(a.keys).union(b.keys).sorted().compactMap { k in
      a[k] == b[k] ? nil : "\(k) (journal: \(a[k] ?? "unset"), now: \(b[k] ?? "unset"))"
    }
  }

  /// Opens (resuming) or creates the journal at `path` for `settings`. Throws when an existing journal was written
  /// with different settings or is corrupt before its last line.
  public init(path: String, settings: SweepSettings) throws {
    self.path = path
    self.settings = settings
    self.results = []
    guard FileManager.default.fileExists(atPath: path) else {
      try AtomicFile.write(Self.line(SettingsLine(sweep: settings)), to: path)
      return
    }
    guard let data = FileManager.default.contents(atPath: path) else {
      throw FileError(path: path, reason: "cannot read the sweep journal")
    }
    var text = String(decoding: data, as: UTF8.self)
    if !text.isEmpty && !text.hasSuffix("\n") {
      // A partial line from a killed write: drop it (that cell runs again).
      text = String(text[..<(text.lastIndex(of: "\n").map { text.index(after: $0) } ?? text.startIndex)])
      try AtomicFile.write(Data(text.utf8), to: path)
    }
    let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
    guard let first = lines.first else {
      try AtomicFile.write(Self.line(SettingsLine(sweep: settings)), to: path)
      return
    }
    let decoder = JSONDecoder()
    guard let stored = try? decoder.decode(SettingsLine.self, from: Data(first.utf8)).sweep else {
      throw FileError(path: path, reason: "line 1 is not a sweep settings line; is this a results.jsonl written by `wrapnet sweep`?")
    }
    guard stored == settings else {
      let fields = Self.differences(stored, settings)
      throw FileError(
        path: path,
        reason: "written by a sweep with different settings: \(fields.isEmpty ? "dataset, model, fine-tuning budget or base" : fields.joined(separator: "; ")); rerun with the same flags to resume, or choose a new --out")
    }
    for (i, line) in lines.dropFirst().enumerated() {
      do {
        results.append(try decoder.decode(SweepResult.self, from: Data(line.utf8)))
      } catch {
        throw FileError(path: path, reason: "line \(i + 2) is not a sweep result (\(error)); delete that line to rerun its cell")
      }
    }
  }

  /// The finished result of `cell`, if any.
  public func result(for cell: SweepCell) -> SweepResult? {
    results.last { $0.key == cell.key }
  }

  /// Appends one result line and flushes it to disk.
  public mutating func append(_ result: SweepResult) throws {
    let bytes = try Self.line(result)
    guard let handle = FileHandle(forWritingAtPath: path) else {
      throw FileError(path: path, reason: "cannot open the sweep journal for appending")
    }
    defer { try? handle.close() }
    do {
      try handle.seekToEnd()
      try handle.write(contentsOf: bytes)
      try handle.synchronize()
    } catch {
      throw FileError(path: path, reason: "cannot append a result: \(error)")
    }
    results.append(result)
  }

  struct SettingsLine: Codable {
    var sweep: SweepSettings
  }

  static func line<T: Encodable>(_ value: T) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    var data = try encoder.encode(value)
    data.append(UInt8(ascii: "\n"))
    return data
  }
}

/// Runs the cells of a sweep from one 32-bit base model.
public struct SweepRunner {
  public var base: WrapModel
  public var settings: SweepSettings
  public var train: ImageDataset
  public var test: ImageDataset

  public init(base: WrapModel, settings: SweepSettings, train: ImageDataset, test: ImageDataset) {
    self.base = base
    self.settings = settings
    self.train = train
    self.test = test
  }

  /// Runs one cell. `batchDone` is called during fine-tuning with (epoch, batches done, batches per epoch).
  public func run(_ cell: SweepCell, batchDone: ((Int, Int, Int, EpochStats) -> Void)? = nil) throws -> SweepResult {
    let start = ContinuousClock.now
    var result = SweepResult(
      key: cell.key, phase: cell.phase, mode: cell.mode, bits: cell.bits, slope: cell.slope, penalty: cell.penalty,
      status: "ok", seconds: 0, hardware: cell.mode.hardware)
    var model: WrapModel
    switch cell.phase {
    case .eval:
      model = base
      model.setLowBitAccumulator(cell.accumulator)
      if let reason = model.avoidInfeasibility() {
        result.status = "infeasible"
        result.reason = reason
        return result
      }
    case .finetune:
      var config = base.config
      config.accumulatorMode = cell.mode
      config.accumulatorWidth = cell.accumulator.width
      config.slope = cell.slope ?? base.config.slope
      config.penalty = cell.penalty ?? 0
      config.accumulatorPreload = settings.preload == true && ModelConfig.acceptsPreload(mode: cell.mode, bits: cell.bits)
      do {
        model = try WrapModel(config: config, seed: settings.training.seed)
      } catch let error as ConfigError {
        result.status = "infeasible"
        result.reason = error.message
        return result
      }
      try model.loadWeights(from: base, sourcePath: "base model")
      if settings.calibrate == true {
        result.calibration = try RangeCalibration.calibrate(
          &model, train: train, target: settings.calibrationTarget ?? RangeCalibration.defaultTarget,
          batchSize: settings.training.batchSize, residual: settings.residualCalibration ?? .none)
      }
      var trainer = try Trainer(model: model, options: settings.training, train: train)
      var last: EpochStats? = nil
      while trainer.epochsDone < settings.training.epochs {
        let epoch = trainer.epochsDone + 1
        let batches = trainer.pipeline.batchesPerEpoch
        last = try trainer.trainEpoch { done, stats in batchDone?(epoch, done, batches, stats) }
      }
      result.trainLoss = last?.loss
      model = trainer.model
    }
    if cell.mode == .avoid { result.forcedZeroShare = model.avoidForcedZeroShare() }
    let report = model.evaluate(test)
    result.accuracy = report.accuracy
    result.correct = report.correct
    result.count = report.count
    result.overflowRate = report.overflowRateLowBit
    result.layers = report.layers.map {
      SweepLayer(name: $0.name, accumulatorBits: $0.accumulatorBits, outputs: $0.outputs, overflows: $0.overflows,
                 overflowRate: $0.overflowRate)
    }
    result.seconds = Trainer.seconds(since: start)
    return result
  }
}
