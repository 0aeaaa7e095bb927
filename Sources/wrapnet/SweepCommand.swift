import ArgumentParser
import Foundation
import WrapNet
import WrapNetReport

/// `wrapnet sweep`: accuracy against accumulator width and mode, without and with adaptation.
struct SweepCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "sweep",
    abstract: "Accuracy against accumulator bits and mode: no retraining vs fine-tuning, with tables and SVG plots.",
    discussion: """
      1. Trains one 32-bit-accumulator model into OUT/base (or reuses --base).
      2. Evaluates it unchanged under every (bits, mode): "no retraining".
      3. Fine-tunes that same model for every (bits, mode) with the same
         budget (--epochs, --limit-train, --lr) and seed, then evaluates it.
      4. Appends one line per finished cell to OUT/results.jsonl and rewrites
         OUT/results.md and the SVG plots (accuracy vs bits, overflow per
         layer before/after adaptation, the cyclic activation's shape).
      A killed sweep resumes when run again with the same command: finished
      cells are skipped, and the results equal an uninterrupted run's.

      Modes:
        exact     32-bit accumulators (the baseline)
        wrap      naive b-bit wrap-around accumulator
        cyclic    WrapNet: wrap + cyclic activation (slope k), fine-tuned with
                  the overflow penalty λ (other modes are fine-tuned with λ=0)
        clamp     wide accumulator + one clamp (not a b-bit accumulator)
        saturate  real b-bit saturating accumulator (clamps at every add)
        avoid     weights constrained so that ‖w‖₁·(2^a−1) ≤ 2^(b−1)−1: a
                  b-bit accumulator can never overflow (infeasible for binary
                  weights with a large fan-in; reported as such)

      Examples:
        wrapnet sweep --dataset mnist --model cnn --bits 6,7,8,10,12 \\
            --epochs 1 --limit-train 10000 --out sweeps/mnist-cnn
        # slope and penalty ablation at 8 bits, reusing the base model
        wrapnet sweep --model cnn --bits 8 --modes cyclic --slopes 1,2,4 \\
            --penalties 0,0.001,0.01,0.1 --epochs 1 \\
            --base sweeps/mnist-cnn/base/model.safetensors \\
            --out sweeps/mnist-cnn-ablation
      """)

  @Option(help: "Dataset: mnist, fashion-mnist or cifar10.")
  var dataset: String = "mnist"

  @OptionGroup var data: DataDirOptions
  @OptionGroup var architecture: ArchitectureOptions

  @Option(help: "Accumulator widths, comma-separated.")
  var bits: String = "4,5,6,7,8,10,12,16"

  @Option(help: "Accumulator modes, comma-separated: exact, clamp, saturate, wrap, cyclic, avoid.")
  var modes: String = "exact,clamp,saturate,wrap,cyclic,avoid"

  @Option(help: "Cyclic slopes k, comma-separated.")
  var slopes: String = "2"

  @Option(help: "Overflow penalties λ for cyclic fine-tuning, comma-separated (the headline shows the first nonzero one, with k = 2 when swept).")
  var penalties: String = "0.001"
  @OptionGroup var penaltySchedule: PenaltyScheduleOptions

  @Option(parsing: .unconditional, help: "Fine-tuning epochs per cell.") var epochs: Int = 1
  @Option(name: .customLong("lr"), parsing: .unconditional, help: "Fine-tuning peak learning rate (cosine schedule).") var learningRate: Float = 3e-4
  @Option(parsing: .unconditional, help: "Images per batch (at least 2; a last partial batch of one image is dropped, as batch norm needs two).")
  var batchSize: Int = 128
  @Option(help: "Optimizer: adam or sgd.") var optimizer: String = "adam"
  @Option(parsing: .unconditional, help: "Random seed (base initialization and every cell's batch order).") var seed: UInt64 = 0
  @Option(parsing: .unconditional, help: "Train (base and cells) on the first N training images only.") var limitTrain: Int?
  @Option(parsing: .unconditional, help: "Evaluate on the first N test images only (default: the full test set).") var limitTest: Int?
  @Flag(inversion: .prefixedNo, help: "Random crop (and flip for colour data) when training (default: on for 32×32 colour data).")
  var augment: Bool?

  @Option(help: "Reuse this 32-bit model instead of training OUT/base.") var base: String?
  @Flag(inversion: .prefixedNo, help: "Range-calibrate the base model for each fine-tuning cell's accumulator first, as `wrapnet train --init` does.")
  var calibrate = true
  @Option(parsing: .unconditional, help: "Calibration target: the largest RMS of a low-bit layer's sums, as a fraction of 2^(b−1), in (0, 1] (default 1/3).")
  var calibrationTarget: Double?
  @Option(parsing: .unconditional, help: ArgumentHelp(
    "With calibration: how layers fed by a residual sum (resnet20) are calibrated (see `wrapnet train --help`).",
    valueName: "mode"))
  var residualCalibration: RangeCalibration.ResidualCalibration = .codeStep
  @Flag(inversion: .prefixedNo, help: "Per-channel accumulator preloads, set by calibration, for the low-bit layers of every wrap, cyclic, clamp and saturate cell (default: on with calibration; see `wrapnet train --help`).")
  var preload: Bool?
  @Option(parsing: .unconditional, help: "Epochs for the base model (when trained here).") var baseEpochs: Int = 5
  @Option(parsing: .unconditional, help: "Peak learning rate of the base model.") var baseLr: Float = 1e-3

  @Option(parsing: .unconditional, help: "Threads. Results are identical for any value.") var threads: Int = 2
  @Option(parsing: .unconditional, help: "Run at most N cells not yet done, then stop (resume later with the same command).")
  var maxCells: Int?
  @Option(help: "Output directory.") var out: String

  func validate() throws {
    guard DatasetName(rawValue: dataset) != nil else {
      throw ValidationError("unknown --dataset '\(dataset)'; choose mnist, fashion-mnist or cifar10")
    }
    do { try grid().validate() } catch let e as ConfigError { throw ValidationError(e.message) }
    guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1") }
    guard baseEpochs >= 1 else { throw ValidationError("--base-epochs must be at least 1") }
    if let t = calibrationTarget, !(t > 0 && t <= 1) {
      throw ValidationError("--calibration-target must be in (0, 1], got \(t)")
    }
    if preload == true && !calibrate {
      throw ValidationError("--preload needs range calibration, which sets the preloads (drop --no-calibrate)")
    }
    if let n = maxCells, n < 0 { throw ValidationError("--max-cells must be >= 0") }
    if let n = limitTest, n < 1 { throw ValidationError("--limit-test must be at least 1, got \(n)") }
    guard batchSize >= 2 else {
      throw ValidationError("--batch-size must be at least 2 (batch norm needs two images per batch), got \(batchSize)")
    }
    if let n = limitTrain, n < 2 {
      throw ValidationError("--limit-train must be at least 2 (batch norm needs two images per batch), got \(n)")
    }
    if let base, !FileManager.default.fileExists(atPath: base) {
      throw ValidationError("--base \(base) does not exist")
    }
  }

  func grid() throws -> SweepGrid {
    func list<T>(_ text: String, _ flag: String, _ parse: (String) -> T?) throws -> [T] {
      try text.split(separator: ",").map {
        let s = $0.trimmingCharacters(in: .whitespaces)
        guard let v = parse(s) else { throw ValidationError("\(flag): cannot read '\(s)' in '\(text)'") }
        return v
      }
    }
    let m = try list(modes, "--modes") { AccumulatorMode(rawValue: $0) }
    return SweepGrid(
      bits: try list(bits, "--bits") { Int($0) }, modes: m, slopes: try list(slopes, "--slopes") { Float($0) },
      penalties: try list(penalties, "--penalties") { Float($0) })
  }

  mutating func run() throws {
    let grid = try grid()
    guard let name = DatasetName(rawValue: dataset) else { throw ValidationError("unknown dataset '\(dataset)'") }
    setBLASThreads(threads)
    try AtomicFile.createOutputDirectory(out)
    for name in AtomicFile.removeStaleTemporaries(in: out) {
      stderrLine("removed \(name), a temporary file left by an interrupted run")
    }
    let splits = try DatasetSplits.load(name, dataDirectory: data.resolved)
    var train = splits.train
    var test = splits.test
    if let n = limitTrain { train = train.subset(first: min(n, train.count)) }
    if let n = limitTest { test = test.subset(first: min(n, test.count)) }

    // 1. The 32-bit base model.
    let basePath = try baseModel()
    let baseModel = try Checkpoint.load(from: basePath).model
    var expected = try architecture.config(
      channels: train.channels, height: train.height, width: train.width, classes: train.classCount,
      accumulatorWidth: .wide, accumulatorMode: .exact, slope: 2, penalty: 0)
    expected.slope = baseModel.config.slope
    expected.penalty = baseModel.config.penalty
    guard baseModel.config.accumulatorMode == .exact || baseModel.config.accumulatorBits == 32 else {
      throw ValidationError("\(basePath) was trained with \(baseModel.config.accumulatorBits)-bit \(baseModel.config.accumulatorMode.rawValue) accumulators; the base must be a 32-bit (exact) model")
    }
    var baseConfig = baseModel.config
    baseConfig.accumulatorWidth = .wide
    baseConfig.accumulatorMode = .exact
    guard baseConfig == expected else {
      throw ValidationError("\(basePath) is a \(baseConfig.displayName) model with \(WeightFormat(bits: baseConfig.weightBits).name) weights and \(baseConfig.activationBits)-bit activations on \(baseConfig.inputChannels)×\(baseConfig.inputHeight)×\(baseConfig.inputWidth) images; it does not match --model \(architecture.model) --width-multiplier \(architecture.widthMultiplier) --width-divisor \(architecture.widthDivisor) --weight-bits \(architecture.weightBits) --act-bits \(architecture.actBits) on \(dataset)")
    }

    // 2–3. The cells, resumed from the journal.
    var options = TrainingOptions()
    options.dataset = dataset
    options.epochs = epochs
    options.batchSize = batchSize
    options.optimizer = optimizer
    options.learningRate = learningRate
    options.seed = seed
    options.threads = 1  // not part of the results: keep the settings line independent of --threads
    options.limitTrain = limitTrain
    options.augment = augment ?? (train.channels == 3)
    penaltySchedule.apply(to: &options)
    do { try options.validate() } catch { throw ValidationError("\(error)") }
    let settings = SweepSettings(
      dataset: dataset, model: baseConfig, training: options, limitTest: limitTest, baseDigest: try fileDigest(basePath),
      calibrate: calibrate ? true : nil, calibrationTarget: calibrate ? calibrationTarget : nil,
      residualCalibration: calibrate && baseConfig.architecture == "resnet20" && residualCalibration != .none
        ? residualCalibration : nil, preload: calibrate && (preload ?? true) ? true : nil)
    let journalPath = (out as NSString).appendingPathComponent("results.jsonl")
    var journal = try SweepJournal(path: journalPath, settings: settings)
    let runner = SweepRunner(base: baseModel, settings: settings, train: train, test: test)
    let cells = grid.cells()
    let todo = cells.filter { journal.result(for: $0) == nil }
    stderrLine("sweep \(baseConfig.displayName) on \(dataset): \(cells.count) cells (\(cells.count - todo.count) already done), base \(basePath)")
    try writeReport(grid: grid, journal: journal)

    var ran = 0
    var spent: [SweepCell.Phase: (seconds: Double, cells: Int)] = [:]
    for r in journal.results { spent[r.phase, default: (0, 0)].seconds += r.seconds; spent[r.phase, default: (0, 0)].cells += 1 }
    for cell in cells where journal.result(for: cell) == nil {
      if let n = maxCells, ran >= n {
        stderrLine("stopped after \(n) cells (--max-cells); run the same command again to continue")
        break
      }
      let index = journal.results.count + 1
      let prefix = "[\(index)/\(cells.count)] \(cell.phase == .eval ? "no retraining" : "fine-tune") \(cell.label)"
      var bar: ProgressBar? = nil
      let result = try runner.run(cell) { epoch, done, batches, stats in
        if bar == nil || done == 1 {
          bar = ProgressBar(total: batches, label: "\(prefix) epoch \(epoch)/\(options.epochs)")
        }
        bar!.update(done: done, metrics: TrainCommand.metrics(stats))
        if done == batches { bar!.finish(metrics: TrainCommand.metrics(stats)) }
      }
      try journal.append(result)
      ran += 1
      spent[cell.phase, default: (0, 0)].seconds += result.seconds
      spent[cell.phase, default: (0, 0)].cells += 1
      try writeReport(grid: grid, journal: journal)
      let remaining = cells.filter { journal.result(for: $0) == nil }
      var eta = 0.0
      for phase in [SweepCell.Phase.eval, .finetune] {
        let left = remaining.filter { $0.phase == phase }.count
        // Fine-tuning cells not yet timed are guessed at 20× an evaluation.
        let per = spent[phase].map { $0.seconds / Double(max($0.cells, 1)) }
          ?? (spent[.eval].map { 20 * $0.seconds / Double(max($0.cells, 1)) } ?? 0)
        eta += per * Double(left)
      }
      let outcome = result.status == "ok"
        ? String(format: "%.2f%%, overflow %.3f%%", 100 * (result.accuracy ?? 0), 100 * (result.overflowRate ?? 0))
          + (result.forcedZeroShare.map { String(format: ", %.1f%% of weights forced to 0", 100 * $0) } ?? "")
        : "infeasible: \(result.reason ?? "")"
      stderrLine("\(prefix): \(outcome) (\(String(format: "%.0f", result.seconds)) s); \(remaining.count) cells left, ETA \(ProgressBar.formatDuration(eta))")
    }
    let done = cells.filter { journal.result(for: $0) != nil }.count
    print("\(done)/\(cells.count) cells done; wrote \(journalPath), \(out)/results.md and SVG plots")
  }

  /// The base model's path: --base, OUT/base/model.safetensors when finished, or trained (resumed) now.
  func baseModel() throws -> String {
    if let base { return base }
    let dir = (out as NSString).appendingPathComponent("base")
    let model = (dir as NSString).appendingPathComponent("model.safetensors")
    if FileManager.default.fileExists(atPath: model) {
      stderrLine("reusing the base model \(model)")
      return model
    }
    let checkpoint = (dir as NSString).appendingPathComponent("checkpoint.safetensors")
    var args: [String]
    if FileManager.default.fileExists(atPath: checkpoint) {
      args = ["--resume", "--out", dir]
    } else {
      stderrLine("training the 32-bit base model into \(dir) (\(baseEpochs) epochs)")
      args = [
        "--dataset", dataset, "--model", architecture.model, "--weight-bits", "\(architecture.weightBits)",
        "--ternary-threshold", "\(architecture.ternaryThreshold)", "--act-bits", "\(architecture.actBits)",
        "--act-clip", "\(architecture.actClip)", "--width-multiplier", "\(architecture.widthMultiplier)",
        "--width-divisor", "\(architecture.widthDivisor)",
        "--acc-mode", "exact", "--penalty", "0",
        "--epochs", "\(baseEpochs)", "--lr", "\(baseLr)", "--batch-size", "\(batchSize)", "--optimizer", optimizer,
        "--seed", "\(seed)", "--threads", "\(threads)", "--out", dir,
      ]
      if architecture.lowBitFirstLayer { args.append("--low-bit-first-layer") }
      if architecture.lowBitLastLayer { args.append("--low-bit-last-layer") }
      if let n = limitTrain { args += ["--limit-train", "\(n)"] }
      if let a = augment { args.append(a ? "--augment" : "--no-augment") }
    }
    if let d = data.dataDir { args += ["--data-dir", d] }
    var train = try TrainCommand.parse(args)
    try train.run()
    return model
  }

  func writeReport(grid: SweepGrid, journal: SweepJournal) throws {
    let report = SweepReport(
      settings: journal.settings, grid: grid, results: journal.results,
      command: "wrapnet " + Self.resultFlags(Array(CommandLine.arguments.dropFirst())).map(Self.quoted).joined(separator: " "))
    try AtomicFile.write(Data(report.markdown().utf8), to: (out as NSString).appendingPathComponent("results.md"))
    for plot in report.plots() {
      try AtomicFile.write(Data(plot.svg.utf8), to: (out as NSString).appendingPathComponent(plot.name))
    }
  }

  /// The command's arguments without `--max-cells N`, which changes when a sweep stops, not what it computes.
  static func resultFlags(_ arguments: [String]) -> [String] {
    var out: [String] = []
    var skipNext = false
    for a in arguments {
      if skipNext { skipNext = false; continue }
      if a == "--max-cells" { skipNext = true; continue }
      if a.hasPrefix("--max-cells=") { continue }
      out.append(a)
    }
    return out
  }

  static func quoted(_ s: String) -> String {
    s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./,=:".contains($0) }) ? s : "'\(s)'"
  }
}

/// MD5 of a file's bytes, hex (identifies a sweep's base model).
func fileDigest(_ path: String) throws -> String {
  guard let data = FileManager.default.contents(atPath: path) else {
    throw ValidationError("cannot read \(path)")
  }
  return MD5.digest([UInt8](data)).hexString
}
