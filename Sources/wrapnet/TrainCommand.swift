import ArgumentParser
import Foundation
import WrapNet

extension RangeCalibration.ResidualCalibration: ExpressibleByArgument {}

/// `wrapnet train`: quantization-aware training of a zoo model with b-bit accumulators.
struct TrainCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract: "Train a WrapNet model (quantized weights and activations, b-bit accumulators).",
    discussion: """
      Trains a zoo model whose low-bit layers sum integer codes in b-bit accumulators, and writes
      OUT/model.safetensors, OUT/summary.json and (after every epoch) OUT/checkpoint.safetensors.

      Examples:
        # 32-bit-accumulator baseline, binary weights, 2-bit activations
        wrapnet train --dataset mnist --model mlp --acc-mode exact --epochs 10 --out runs/mlp-exact
        # WrapNet: range calibration, then 8-bit wrap-around accumulators + cyclic activation + overflow penalty
        wrapnet train --dataset mnist --model mlp --acc-bits 8 --acc-mode cyclic --slope 2 --penalty 0.001 \\
            --init runs/mlp-exact/model.safetensors --epochs 1 --lr 1e-3 --out runs/mlp-cyclic8
        # continue a run that was killed
        wrapnet train --resume --out runs/mlp-cyclic8
      """)

  @Option(help: "Dataset: mnist, fashion-mnist or cifar10.")
  var dataset: String = "mnist"

  @OptionGroup var data: DataDirOptions
  @OptionGroup var modelOptions: ModelOptions

  @Option(parsing: .unconditional, help: "Number of epochs.") var epochs: Int = 10
  @Option(parsing: .unconditional, help: "Images per batch (at least 2). A last partial batch of a single image is dropped, as batch norm needs two images; any larger partial batch is kept.")
  var batchSize: Int = 128
  @Option(help: "Optimizer: adam or sgd.") var optimizer: String = "adam"
  @Option(name: .customLong("lr"), parsing: .unconditional, help: "Peak learning rate.") var learningRate: Float = 1e-3
  @Option(parsing: .unconditional, help: "SGD momentum.") var momentum: Float = 0.9
  @Flag(help: "Nesterov momentum (SGD).") var nesterov = false
  @Option(parsing: .unconditional, help: "Weight decay (L2, added to the gradient).") var weightDecay: Float = 0
  @Option(help: "Learning-rate schedule: cosine, step or constant.") var schedule: String = "cosine"
  @Option(parsing: .unconditional, help: "Linear warm-up epochs.") var warmupEpochs: Int = 0
  @Option(help: "Step schedule: comma-separated epochs where the rate is multiplied by --step-gamma.")
  var stepEpochs: String = ""
  @Option(parsing: .unconditional, help: "Step schedule factor.") var stepGamma: Float = 0.1
  @Option(parsing: .unconditional, help: "Random seed: fixes initialization, batch order and augmentation.") var seed: UInt64 = 0
  @Option(parsing: .unconditional, help: "Threads (BLAS). Results are identical for any value.") var threads: Int = 2
  @Option(parsing: .unconditional, help: "Use only the first N training images (at least 2).") var limitTrain: Int?
  @Option(parsing: .unconditional, help: "Use only the first N test images (evaluation).") var limitTest: Int?
  @Flag(inversion: .prefixedNo, help: "Random crop and horizontal flip (default: on for 32×32 colour data).")
  var augment: Bool?
  @Option(name: .customLong("init"), help: "Start from this checkpoint's weights (e.g. a 32-bit-accumulator model) and fine-tune.")
  var initFrom: String?
  @Flag(inversion: .prefixedNo, help: ArgumentHelp(
    "With --init: first scale the batch norms that feed the low-bit layers so that their sums fit the accumulator (default: on with --init).",
    discussion: """
      For every low-bit layer, the batch norm before its activation codes gets γ, β × r (r ≤ 1) until the RMS of \
      the layer's sums over the first 512 training images is at most 2^(b−1)/3; then every batch norm's running \
      statistics are re-estimated over 40 batches. A 32-bit model's sums are as wide as its activations make them \
      (with 3-bit activations 11 % of the mlp's sums leave 8 bits); calibration narrows them at once instead of \
      leaving it to the overflow penalty. Layers whose sums already fit are left alone. The factors are printed \
      and kept in OUT/calibration.json and summary.json.
      """))
  var calibrate: Bool?
  @Option(parsing: .unconditional, help: "Calibration target: the largest RMS of a low-bit layer's sums, as a fraction of 2^(b−1), in (0, 1].")
  var calibrationTarget: Double = RangeCalibration.defaultTarget
  @Option(parsing: .unconditional, help: ArgumentHelp(
    "With calibration: how the layers fed by a residual sum (ResNets) are calibrated.",
    discussion: """
      The first convolution of a residual block reads the block input, the codes of the residual stream, which \
      also feed the block's shortcut. code-step (the default) lets the convolution read them re-coded at a larger \
      clip: coarser, smaller codes, each worth more, so its output keeps its value and only its integer sums \
      shrink, while the shortcut keeps the fine codes (the nine clips are kept in the model's configuration, \
      residual_input_clips). batch-norm scales the batch norm that ends the previous block's body (or the \
      stem's), which reweights that body against its shortcut. none leaves those layers alone.
      """, valueName: "mode"))
  var residualCalibration: RangeCalibration.ResidualCalibration = .codeStep
  @OptionGroup var penaltySchedule: PenaltyScheduleOptions
  @Flag(help: "Continue the run in --out from its last checkpoint (configuration taken from the checkpoint).")
  var resume = false
  @Option(help: "Output directory.") var out: String

  func validate() throws {
    guard DatasetName(rawValue: dataset) != nil else {
      throw ValidationError("unknown --dataset '\(dataset)'; choose mnist, fashion-mnist or cifar10")
    }
    guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1") }
    if resume && initFrom != nil { throw ValidationError("--resume and --init cannot be combined: --resume continues OUT's own run") }
    guard calibrationTarget > 0 && calibrationTarget <= 1 else {
      throw ValidationError("--calibration-target must be in (0, 1], got \(calibrationTarget)")
    }
    if modelOptions.preload == true && !resume && (initFrom == nil || calibrate == false) {
      throw ValidationError("--preload needs --init with range calibration: calibration sets the preloads from the initial model's sums (drop --no-calibrate)")
    }
    if calibrate == true && initFrom == nil {
      throw ValidationError("--calibrate needs --init: it fits a trained model's sums into the accumulator before fine-tuning")
    }
    guard batchSize >= 2 else {
      throw ValidationError("--batch-size must be at least 2 (batch norm needs two images per batch), got \(batchSize)")
    }
    if let n = limitTrain, n < 2 {
      throw ValidationError("--limit-train must be at least 2 (batch norm needs two images per batch), got \(n)")
    }
    if let n = limitTest, n < 1 { throw ValidationError("--limit-test must be at least 1, got \(n)") }
    _ = try parsedStepEpochs()
  }

  func parsedStepEpochs() throws -> [Int] {
    try stepEpochs.split(separator: ",").map {
      guard let e = Int($0.trimmingCharacters(in: .whitespaces)), e >= 0 else {
        throw ValidationError("--step-epochs must be comma-separated non-negative integers, got '\(stepEpochs)'")
      }
      return e
    }
  }

  mutating func run() throws {
    let checkpointPath = (out as NSString).appendingPathComponent("checkpoint.safetensors")
    let modelPath = (out as NSString).appendingPathComponent("model.safetensors")
    let summaryPath = (out as NSString).appendingPathComponent("summary.json")
    var model: WrapModel? = nil
    var options = TrainingOptions()
    var resumedEpochs = 0
    var optimizerState: [String: Tensor] = [:]
    var history: [[String: Any]] = []
    if resume {
      guard FileManager.default.fileExists(atPath: checkpointPath) else {
        throw ValidationError("--resume: \(checkpointPath) does not exist; start the run without --resume")
      }
      let c = try Checkpoint.load(from: checkpointPath)
      guard let t = c.training, let done = c.epochsDone else {
        throw ValidationError("--resume: \(checkpointPath) has no training state")
      }
      do { try t.validate() } catch {
        throw CheckpointError(path: checkpointPath, reason: "metadata 'training': \(error)")
      }
      model = c.model
      options = t
      resumedEpochs = done
      optimizerState = c.optimizerState
      if let text = c.history, let h = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]] {
        history = h
      }
      if done >= t.epochs {
        // A run killed while writing its final files is finished from its last checkpoint.
        if fileExists(modelPath) && fileExists(summaryPath) {
          print("\(out): all \(t.epochs) epochs are done; nothing to resume (model: \(modelPath))")
          return
        }
        stderrLine("\(out): all \(t.epochs) epochs are done; writing the missing final model and summary")
      } else {
        stderrLine("resuming \(out) after epoch \(done) of \(t.epochs)")
      }
    } else {
      try AtomicFile.createOutputDirectory(out)
    }
    for name in AtomicFile.removeStaleTemporaries(in: out) {
      stderrLine("removed \(name), a temporary file left by an interrupted run")
    }
    // The dataset of a resumed run is the one it was started on.
    let datasetName = resume ? options.dataset : dataset
    guard let name = DatasetName(rawValue: datasetName) else {
      throw ValidationError("unknown dataset '\(datasetName)'")
    }
    let splits = try DatasetSplits.load(name, dataDirectory: data.resolved)
    var train = splits.train
    var test = splits.test
    if let n = resume ? options.limitTrain : limitTrain { train = train.subset(first: min(n, train.count)) }
    if let n = limitTest { test = test.subset(first: min(n, test.count)) }
    guard test.count >= 1 else {
      throw ValidationError("the \(datasetName) test set has no images; check the dataset files (`wrapnet data info --dataset \(datasetName)`)")
    }
    if !resume {
      let config = try modelOptions.config(
        channels: train.channels, height: train.height, width: train.width, classes: train.classCount,
        calibrating: calibrate ?? (initFrom != nil))
      var fresh = try WrapModel(config: config, seed: seed)
      if let initFrom {
        let source = try Checkpoint.load(from: initFrom)
        try fresh.loadWeights(from: source.model, sourcePath: initFrom)
        stderrLine("initialized from \(initFrom) (\(source.model.config.accumulatorMode.rawValue), \(source.model.config.accumulatorBits)-bit)")
      }
      model = fresh
      options.dataset = dataset
      options.epochs = epochs
      options.batchSize = batchSize
      options.optimizer = optimizer
      options.learningRate = learningRate
      options.momentum = momentum
      options.nesterov = nesterov
      options.weightDecay = weightDecay
      options.schedule = schedule
      options.warmupEpochs = warmupEpochs
      options.stepEpochs = try parsedStepEpochs()
      options.stepGamma = stepGamma
      options.seed = seed
      options.threads = threads
      options.limitTrain = limitTrain
      options.augment = augment ?? (train.channels == 3)
      penaltySchedule.apply(to: &options)
    }
    do { try options.validate() } catch { throw ValidationError("\(error)") }
    setBLASThreads(options.threads)

    let calibrationPath = (out as NSString).appendingPathComponent("calibration.json")
    var calibration: Any = NSNull()
    if (calibrate ?? (initFrom != nil)) && !resume {
      let results = try RangeCalibration.calibrate(
        &model!, train: train, target: calibrationTarget, batchSize: options.batchSize, residual: residualCalibration)
      for r in results { stderrLine(Self.calibrationLine(r)) }
      calibration = try jsonObject(results)
      try JSONFile.write(jsonObject: calibration, to: calibrationPath)
    } else if resume, fileExists(calibrationPath) {
      calibration = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: calibrationPath)))
    }
    var trainer = try Trainer(model: model!, options: options, train: train)
    if resume {
      try trainer.optimizer.loadState(optimizerState)
      trainer.restore(epochsDone: resumedEpochs)
    }
    let macs = trainer.model.macCounts()
    let cfg = trainer.model.config
    stderrLine(
      "\(cfg.displayName) on \(options.dataset): \(train.count) train / \(test.count) test images; weights \(WeightFormat(bits: cfg.weightBits).name), \(cfg.activationBits)-bit activations, accumulator \(cfg.accumulatorMode.rawValue) \(cfg.accumulatorBits)-bit (\(cfg.accumulatorMode.hardware)); \(String(format: "%.1f", 100 * Double(macs.lowBit) / Double(max(macs.total, 1))))% of \(macs.total) MACs/image in low-bit accumulators"
    )

    var trainSeconds = history.reduce(0.0) { $0 + (($1["seconds"] as? Double) ?? 0) }
    var imagesPerSecond = (history.last?["images_per_second"] as? Double) ?? 0
    while trainer.epochsDone < options.epochs {
      let e = trainer.epochsDone + 1
      var bar = ProgressBar(total: trainer.pipeline.batchesPerEpoch, label: "epoch \(e)/\(options.epochs)")
      let stats: EpochStats
      do {
        stats = try trainer.trainEpoch { done, s in
          bar.update(done: done, metrics: Self.metrics(s))
        }
      } catch let error as TrainingDivergedError {
        let kept = trainer.epochsDone > 0
          ? "\(checkpointPath) (after epoch \(trainer.epochsDone)) is kept unchanged"
          : "no checkpoint was written"
        throw CommandError("\(error); \(kept)")
      }
      bar.finish(metrics: Self.metrics(stats))
      trainSeconds += stats.seconds
      imagesPerSecond = stats.imagesPerSecond
      let eval = trainer.model.evaluate(test)
      stderrLine(String(format: "epoch %d: test accuracy %.2f%%, overflow %.3f%%", e, 100 * eval.accuracy, 100 * eval.overflowRateLowBit))
      history.append([
        "epoch": e, "loss": stats.loss, "penalty": stats.penalty, "train_accuracy": stats.accuracy,
        "overflow_rate": stats.overflowRate, "images_per_second": stats.imagesPerSecond, "seconds": stats.seconds,
        "test_accuracy": eval.accuracy,
      ])
      try Checkpoint.save(
        &trainer.model, to: checkpointPath, training: options, optimizerState: trainer.optimizer.stateTensors(),
        epochsDone: trainer.epochsDone,
        history: String(decoding: try JSONSerialization.data(withJSONObject: history, options: [.sortedKeys]), as: UTF8.self))
    }

    let eval = trainer.model.evaluate(test)
    try Checkpoint.save(&trainer.model, to: modelPath, training: options)
    let summary: [String: Any] = [
      "test_accuracy": eval.accuracy,
      "test_loss": eval.loss,
      "test_count": eval.count,
      "epochs": options.epochs,
      "train_seconds": trainSeconds,
      "images_per_second": imagesPerSecond,
      "dataset": options.dataset,
      "train_count": train.count,
      "low_bit_mac_share": Double(macs.lowBit) / Double(max(macs.total, 1)),
      "macs_per_image": macs.total,
      "config": try jsonObject(trainer.model.config),
      "training": try jsonObject(options),
      "layers": try jsonObject(eval.layers),
      "history": history,
      "resumed_from_epoch": resume ? resumedEpochs : NSNull(),
      "calibration": calibration,
    ]
    try JSONFile.write(jsonObject: summary, to: summaryPath)
    print(String(format: "test accuracy %.2f%% (%d/%d)", 100 * eval.accuracy, eval.correct, eval.count))
    for l in eval.layers where l.accumulatorBits < 32 {
      print(layerLine(l))
    }
    print("wrote \(modelPath) and \(summaryPath)")
  }

  static func calibrationLine(_ r: RangeCalibration.LayerResult) -> String {
    let rms = r.preloadRMS.map {
      String(format: "sums RMS %.1f → %.1f around the preloads (RMS %.1f; target %.1f)", r.rmsBefore, r.rmsAfter, $0, r.target)
    } ?? String(format: "sums RMS %.1f → %.1f (target %.1f)", r.rmsBefore, r.rmsAfter, r.target)
    if let clip = r.inputClip {
      if r.factor == 1 { return "calibrate \(r.name): \(rms); fits, reads the block input as it is" }
      return "calibrate \(r.name): \(rms); reads the block input at clip \(String(format: "%.3f", clip)) (codes × \(String(format: "%.3f", r.factor)))"
    }
    guard let bn = r.batchNorm else { return "calibrate \(r.name): \(rms); input is a residual sum, left unscaled" }
    if r.factor == 1 { return "calibrate \(r.name): \(rms); fits, \(bn) unchanged" }
    return "calibrate \(r.name): \(rms); \(bn) γ, β × \(String(format: "%.3f", r.factor))"
  }

  static func metrics(_ s: EpochStats) -> [(String, String)] {
    [
      ("loss", String(format: "%.4f", s.loss)), ("acc", String(format: "%.2f%%", 100 * s.accuracy)),
      ("overflow", String(format: "%.3f%%", 100 * s.overflowRate)), ("img/s", String(format: "%.0f", s.imagesPerSecond)),
    ]
  }
}

/// One report line for a quantized layer: name, accumulator, overflow rate.
func layerLine(_ l: LayerOverflow) -> String {
  "  " + l.name.padding(toLength: 24, withPad: " ", startingAt: 0) + String(format: "%2d-bit ", l.accumulatorBits)
    + l.accumulatorMode.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
    + String(format: "overflow rate %8.4f%%", 100 * l.overflowRate)
}

/// A run-time failure of a command (exit status 1); the message says what happened and what to do.
struct CommandError: Error, CustomStringConvertible {
  var description: String
  init(_ message: String) { description = message }
}

/// Whether a regular file (not a directory) exists at `path`.
func fileExists(_ path: String) -> Bool {
  var isDirectory: ObjCBool = false
  return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
}

/// Writes one line to stderr (progress and notes; stdout carries results).
func stderrLine(_ s: String) {
  FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// A Codable value as a JSON object (for mixing into [String: Any] documents).
func jsonObject<T: Encodable>(_ value: T) throws -> Any {
  let data = try JSONEncoder().encode(value)
  return try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
}
