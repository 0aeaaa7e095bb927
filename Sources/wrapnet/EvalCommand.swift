import ArgumentParser
import Foundation
import WrapNet
import WrapNetEngine

/// `wrapnet eval`: accuracy and per-layer overflow of a trained model under any accumulator setting.
struct EvalCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eval",
    abstract: "Evaluate a trained model's simulation under any accumulator setting, without retraining.",
    discussion: """
      Runs the training simulation of CHECKPOINT (a model.safetensors written by `wrapnet train`) on the test set.
      --acc-bits/--acc-mode/--slope replace the low-bit layers' accumulator (first and last layers keep theirs):
      this shows, for example, how a 32-bit-accumulator model collapses on 8-bit wrap-around accumulators.

      When CHECKPOINT is a packed engine model (written by `wrapnet convert`), runs the integer engine instead:
      --kernel, --lanes and --threads choose how; --compare RUN/model.safetensors also runs the training
      simulation on the same images and counts differing predictions and accumulator values (both must be 0).
      --predictions-out FILE and --logits-out FILE write one CSV row per test image, in dataset order, for
      comparing another implementation image by image (docs/FORMAT.md, "Per-image outputs"):
        FILE of --predictions-out:  index,label,prediction
        FILE of --logits-out:       index,logit_0,...,logit_{C-1}
      Logits are the engine's Float32 values as the shortest decimal that reads back as the same Float32. Each
      file is written whole or not at all (temporary file, then rename).

      Examples:
        wrapnet eval runs/mlp-exact/model.safetensors --dataset mnist --acc-mode wrap --acc-bits 8
        wrapnet eval runs/mlp-cyclic8/engine.safetensors --kernel avx2 --compare runs/mlp-cyclic8/model.safetensors
        wrapnet eval runs/mlp-cyclic8/engine.safetensors --predictions-out pred.csv --logits-out logits.csv
      """)

  @Argument(help: "A model.safetensors written by `wrapnet train`, or a packed engine model from `wrapnet convert`.")
  var checkpoint: String

  @Option(help: "Dataset: mnist, fashion-mnist or cifar10 (default: the one the model was trained on).")
  var dataset: String?

  @OptionGroup var data: DataDirOptions

  @Option(
    parsing: .unconditional, help: "Accumulator width of the low-bit layers, 2...32 (default: as trained).",
    transform: AccumulatorWidth.argument("--acc-bits"))
  var accBits: AccumulatorWidth?

  @Option(help: "Accumulator mode of the low-bit layers: exact, wrap, cyclic, clamp, saturate, avoid (default: as trained).")
  var accMode: AccumulatorMode?

  @Option(parsing: .unconditional, help: "Cyclic transition slope k (default: as trained).")
  var slope: Float?

  @Option(parsing: .unconditional, help: "Use only the first N test images.")
  var limitTest: Int?

  @Option(parsing: .unconditional, help: "Threads (BLAS).")
  var threads: Int = 2

  @Flag(help: "Print one JSON object instead of text.")
  var json = false

  @Option(
    help: """
      Engine models: kernel path reference, portable or avx2 (default: the fastest available). With avx2 and \
      8-bit lanes, binary and ternary layers whose input codes have at most 3 bits run the lookup kernel (16-entry \
      tables of every 4 codes' signed sums indexed by the weights, the next codes computed in the kernel); every \
      path gives the same integers.
      """)
  var kernel: String?

  @Option(parsing: .unconditional, help: "Engine models: lane width 8, 16 or 32 for wrap-around layers (default: the narrowest valid).")
  var lanes: Int?

  @Option(help: "Engine models: also run this trainer checkpoint and count differences (should be 0).")
  var compare: String?

  @Option(help: ArgumentHelp(
    "Engine models: write each test image's label and predicted class to this CSV file.",
    discussion: "Header index,label,prediction; one row per image in dataset order.", valueName: "file"))
  var predictionsOut: String?

  @Option(help: ArgumentHelp(
    "Engine models: write each test image's logits to this CSV file.",
    discussion: "Header index,logit_0,...,logit_{C-1}; one row per image; exact Float32 values.", valueName: "file"))
  var logitsOut: String?

  func validate() throws {
    if let dataset, DatasetName(rawValue: dataset) == nil {
      throw ValidationError("unknown --dataset '\(dataset)'; choose mnist, fashion-mnist or cifar10")
    }
    if let k = slope, !(k > 0) { throw ValidationError("--slope must be > 0, got \(k)") }
    if let n = limitTest, n < 1 { throw ValidationError("--limit-test must be at least 1, got \(n)") }
    guard (1...256).contains(threads) else { throw ValidationError("--threads must be in 1...256, got \(threads)") }
    if let kernel, KernelPath(rawValue: kernel) == nil {
      throw ValidationError("unknown --kernel '\(kernel)'; choose reference, portable or avx2")
    }
    if let lanes, ![8, 16, 32].contains(lanes) { throw ValidationError("--lanes must be 8, 16 or 32, got \(lanes)") }
    for (flag, path) in [("--predictions-out", predictionsOut), ("--logits-out", logitsOut)] {
      if let path, let problem = PerImageOutputs.problem(with: path, flag: flag) { throw ValidationError(problem) }
    }
    if let predictionsOut, predictionsOut == logitsOut {
      throw ValidationError("--predictions-out and --logits-out name the same file \(predictionsOut); give two paths")
    }
  }

  /// Whether `path` is a packed engine model (metadata 'format' is the engine's).
  static func isEngineModel(_ path: String) -> Bool {
    (try? SafeTensorsFile.read(from: path))?.metadata["format"] == PackedModelFormat.name
  }

  mutating func run() throws {
    if Self.isEngineModel(checkpoint) {
      try runEngine()
      return
    }
    if kernel != nil || lanes != nil || compare != nil || predictionsOut != nil || logitsOut != nil {
      throw ValidationError("--kernel, --lanes, --compare, --predictions-out and --logits-out apply to packed engine models; \(checkpoint) is a trainer checkpoint (convert it with `wrapnet convert`: the engine's predictions and logits equal the trainer's)")
    }
    let contents = try Checkpoint.load(from: checkpoint)
    var model = contents.model
    let dataset = self.dataset ?? contents.training?.dataset ?? "mnist"
    guard let name = DatasetName(rawValue: dataset) else {
      throw ValidationError("\(checkpoint) was trained on unknown dataset '\(dataset)'; pass --dataset")
    }
    let splits = try DatasetSplits.load(name, dataDirectory: data.resolved)
    var test = splits.test
    if let n = limitTest { test = test.subset(first: n) }
    let cfg = model.config
    guard test.channels == cfg.inputChannels, test.height == cfg.inputHeight, test.width == cfg.inputWidth else {
      throw ValidationError(
        "\(checkpoint) expects \(cfg.inputChannels)×\(cfg.inputHeight)×\(cfg.inputWidth) images but \(dataset) has \(test.channels)×\(test.height)×\(test.width)")
    }
    guard cfg.classes == test.classCount else {
      throw ValidationError("\(checkpoint) has \(cfg.classes) classes but \(dataset) has \(test.classCount); pass the --dataset it was trained on")
    }
    let trainedMode = cfg.accumulatorMode
    let mode = accMode ?? trainedMode
    let width = mode == .exact ? .wide : (accBits ?? (cfg.accumulatorWidth < .wide ? cfg.accumulatorWidth : AccumulatorWidth(bits: 8)))
    model.setLowBitAccumulator(Accumulator(width: width, mode: mode, slope: slope ?? cfg.slope))
    if let reason = model.avoidInfeasibility() { throw ValidationError(reason) }
    try cfg.checkMemory(
      copies: 2, batchSize: min(WrapModel.evaluationBatchSize, test.count), activationCopies: 2, purpose: "evaluating")
    setBLASThreads(threads)
    let report = model.evaluate(test)
    if json {
      let object: [String: Any] = [
        "checkpoint": checkpoint,
        "dataset": dataset,
        "accuracy": report.accuracy,
        "correct": report.correct,
        "count": report.count,
        "loss": report.loss,
        "overflow_rate": report.overflowRateLowBit,
        "images_per_second": report.imagesPerSecond,
        "layers": try jsonObject(report.layers),
        "config": try jsonObject(model.config),
        "trained_config": try jsonObject(cfg),
      ]
      let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
      print(String(decoding: data, as: UTF8.self))
      return
    }
    print("\(checkpoint): \(cfg.displayName), trained with \(trainedMode.rawValue) \(cfg.accumulatorBits)-bit accumulators")
    print("evaluated with \(mode.rawValue) \(width.bits)-bit accumulators (\(mode.hardware)) on \(report.count) \(dataset) test images")
    print(String(format: "accuracy %.2f%% (%d/%d), %.0f images/s", 100 * report.accuracy, report.correct, report.count,
                 report.imagesPerSecond))
    for l in report.layers {
      print(layerLine(l))
    }
  }
}

extension EvalCommand {
  /// `eval` of a packed engine model: accuracy, images/s, and with --compare the differences from the trainer.
  func runEngine() throws {
    if accBits != nil || accMode != nil || slope != nil {
      throw ValidationError("--acc-bits, --acc-mode and --slope apply to trainer checkpoints; a packed model's accumulators are fixed at conversion")
    }
    let model = try InferenceModel(contentsOf: checkpoint)
    let path = kernel.flatMap { KernelPath(rawValue: $0) } ?? .fastest
    if !path.isAvailable { throw ValidationError("--kernel avx2 is not available on this CPU; use portable or reference") }
    let options = InferenceOptions(path: path, lanes: lanes, threads: threads)
    do { try model.validate(options) } catch { throw ValidationError("\(error)") }
    let dataset = self.dataset ?? "mnist"
    guard let name = DatasetName(rawValue: dataset) else { throw ValidationError("unknown dataset '\(dataset)'") }
    var test = try DatasetSplits.load(name, dataDirectory: data.resolved).test
    if let n = limitTest { test = test.subset(first: n) }
    guard [test.channels, test.height, test.width] == model.inputShape else {
      throw ValidationError("\(checkpoint) expects \(model.inputShape) images but \(dataset) has \([test.channels, test.height, test.width])")
    }
    let start = ContinuousClock.now
    let result = try model.run(pixels: test.images, count: test.count, options: options)
    let elapsed = start.duration(to: .now)
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    let correct = zip(result.predictions, test.labels).filter { $0 == Int($1) }.count
    let accuracy = test.count == 0 ? 0 : Double(correct) / Double(test.count)
    let rate = Double(test.count) / max(seconds, 1e-9)
    if let predictionsOut {
      try PerImageOutputs.write(
        PerImageOutputs.predictionsCSV(labels: test.labels, predictions: result.predictions), to: predictionsOut,
        flag: "--predictions-out")
    }
    if let logitsOut {
      try PerImageOutputs.write(
        PerImageOutputs.logitsCSV(result.logits, classes: result.classes), to: logitsOut, flag: "--logits-out")
    }
    var comparison: EngineComparison? = nil
    if let compare {
      let trainer = try Checkpoint.load(from: compare).model
      guard trainer.config.architecture == model.architecture else {
        throw ValidationError("--compare \(compare) is a '\(trainer.config.architecture)' model but \(checkpoint) is '\(model.architecture)'")
      }
      setBLASThreads(threads)
      comparison = try EngineComparison.run(engine: model, trainer: trainer, dataset: test, options: options)
    }
    let laneText = lanes.map { "\($0)-bit lanes" } ?? "narrowest lanes"
    if json {
      var object: [String: Any] = [
        "model": checkpoint, "dataset": dataset, "engine": true, "accuracy": accuracy, "correct": correct,
        "count": test.count, "images_per_second": rate, "seconds": seconds, "kernel": path.rawValue,
        "lanes": lanes.map { $0 as Any } ?? NSNull(), "threads": threads,
        "layer_lanes": Dictionary(uniqueKeysWithValues: model.denseLayers.map { ($0.name, model.lanes(for: $0, options: options)) }),
      ]
      if let comparison {
        object["compare"] = compare
        object["mismatches"] = comparison.mismatches
        object["accumulator_mismatches"] = comparison.accumulatorMismatches
        object["comparison"] = try jsonObject(comparison)
      }
      let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
      print(String(decoding: data, as: UTF8.self))
    } else {
      print("\(checkpoint): \(model.architecture) integer engine, kernel \(path.rawValue), \(laneText), \(threads) thread(s)")
      print(String(format: "accuracy %.2f%% (%d/%d), %.0f images/s", 100 * accuracy, correct, test.count, rate))
      if let c = comparison {
        print("compared with \(compare!) on \(c.images) images:")
        print("  mismatches \(c.mismatches) (trainer accuracy \(String(format: "%.2f%%", 100 * Double(c.trainerCorrect) / Double(max(c.images, 1)))))")
        print("  accumulator_mismatches \(c.accumulatorMismatches) of \(c.accumulatorsCompared) low-bit accumulator values")
        print("  exact_sum_mismatches \(c.exactSumMismatches) of \(c.exactSumsCompared) 32-bit sums; logit_mismatches \(c.logitMismatches)")
        if let d = c.firstDifference { print("  first difference: \(d)") }
      }
    }
    if let c = comparison, c.mismatches + c.accumulatorMismatches + c.logitMismatches + c.exactSumMismatches > 0 {
      throw ExitCode(1)
    }
  }
}
