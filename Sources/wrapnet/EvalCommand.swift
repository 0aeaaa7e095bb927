import ArgumentParser
import Foundation
import WrapNet

/// `wrapnet eval`: accuracy and per-layer overflow of a trained model under any accumulator setting.
struct EvalCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eval",
    abstract: "Evaluate a trained model's simulation under any accumulator setting, without retraining.",
    discussion: """
      Runs the training simulation of CHECKPOINT (a model.safetensors written by `wrapnet train`) on the test set.
      --acc-bits/--acc-mode/--slope replace the low-bit layers' accumulator (first and last layers keep theirs):
      this shows, for example, how a 32-bit-accumulator model collapses on 8-bit wrap-around accumulators.

      Example:
        wrapnet eval runs/mlp-exact/model.safetensors --dataset mnist --acc-mode wrap --acc-bits 8
      """)

  @Argument(help: "A model.safetensors written by `wrapnet train`.")
  var checkpoint: String

  @Option(help: "Dataset: mnist, fashion-mnist or cifar10 (default: the one the model was trained on).")
  var dataset: String?

  @OptionGroup var data: DataDirOptions

  @Option(help: "Accumulator width of the low-bit layers (default: as trained).")
  var accBits: Int?

  @Option(help: "Accumulator mode of the low-bit layers: exact, wrap, cyclic, clamp, saturate (default: as trained).")
  var accMode: AccumulatorMode?

  @Option(help: "Cyclic transition slope k (default: as trained).")
  var slope: Float?

  @Option(help: "Use only the first N test images.")
  var limitTest: Int?

  @Option(help: "Threads (BLAS).")
  var threads: Int = 2

  @Flag(help: "Print one JSON object instead of text.")
  var json = false

  func validate() throws {
    if let dataset, DatasetName(rawValue: dataset) == nil {
      throw ValidationError("unknown --dataset '\(dataset)'; choose mnist, fashion-mnist or cifar10")
    }
    if let b = accBits, !(2...32).contains(b) { throw ValidationError("--acc-bits must be in 2...32, got \(b)") }
    if let k = slope, !(k > 0) { throw ValidationError("--slope must be > 0, got \(k)") }
    if let n = limitTest, n < 1 { throw ValidationError("--limit-test must be at least 1, got \(n)") }
    guard (1...256).contains(threads) else { throw ValidationError("--threads must be in 1...256, got \(threads)") }
  }

  mutating func run() throws {
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
    let trainedMode = cfg.accumulatorMode
    let mode = accMode ?? trainedMode
    let bits = mode == .exact ? 32 : (accBits ?? (cfg.accumulatorBits < 32 ? cfg.accumulatorBits : 8))
    model.setLowBitAccumulator(Accumulator(bits: bits, mode: mode, slope: slope ?? cfg.slope))
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
    print("\(checkpoint): \(cfg.architecture), trained with \(trainedMode.rawValue) \(cfg.accumulatorBits)-bit accumulators")
    print("evaluated with \(mode.rawValue) \(bits)-bit accumulators (\(mode.hardware)) on \(report.count) \(dataset) test images")
    print(String(format: "accuracy %.2f%% (%d/%d), %.0f images/s", 100 * report.accuracy, report.correct, report.count,
                 report.imagesPerSecond))
    for l in report.layers {
      print(layerLine(l))
    }
  }
}
