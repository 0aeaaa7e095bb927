import WrapNetEngine

/// The integer engine against the trainer's `.evaluation` simulation on the same images.
///
/// - `mismatches`: images whose predicted class (argmax, first maximum wins) differs;
/// - `logitMismatches`: logits whose bit patterns differ;
/// - `accumulatorMismatches`: over every low-bit layer and image, accumulator values where the engine's differs
///   from wrap_b(z_trainer) (wrap, cyclic) or clamp_b(z_trainer) (clamp), z_trainer being `WrapLayer.lastSums`;
/// - `exactSumMismatches`: over the 32-bit hidden layers, sums where Float(z_engine) differs from z_trainer.
public struct EngineComparison: Sendable, Equatable, Encodable {
  /// Images compared.
  public var images = 0
  /// Images whose predicted class differs.
  public var mismatches = 0
  /// Logits that are not bit-equal.
  public var logitMismatches = 0
  /// Low-bit accumulator values compared and those that differ.
  public var accumulatorsCompared = 0
  public var accumulatorMismatches = 0
  /// 32-bit hidden-layer sums compared and those that differ.
  public var exactSumsCompared = 0
  public var exactSumMismatches = 0
  /// Correct predictions of the engine and of the trainer (when labels are given).
  public var engineCorrect = 0
  public var trainerCorrect = 0
  /// The first difference found, for diagnosis.
  public var firstDifference: String? = nil

  /// An empty comparison.
  public init() {}

  enum CodingKeys: String, CodingKey {
    case images, mismatches
    case logitMismatches = "logit_mismatches"
    case accumulatorsCompared = "accumulators_compared"
    case accumulatorMismatches = "accumulator_mismatches"
    case exactSumsCompared = "exact_sums_compared"
    case exactSumMismatches = "exact_sum_mismatches"
    case engineCorrect = "engine_correct"
    case trainerCorrect = "trainer_correct"
    case firstDifference = "first_difference"
  }

  /// Runs `engine` (recording accumulators) and `trainer` (`.evaluation`, keeping sums) on `dataset` in batches
  /// of `batchSize` and counts the differences. Throws `InferenceOptionsError` for invalid engine options and
  /// `EngineExportError` when the two models' layers differ.
  /// Precondition: the dataset's image shape is the model's.
  public static func run(
    engine: InferenceModel, trainer: WrapModel, dataset: ImageDataset, options: InferenceOptions,
    batchSize: Int = 250
  ) throws -> EngineComparison {
    precondition(
      [dataset.channels, dataset.height, dataset.width] == engine.inputShape,
      "EngineComparison: dataset images are \([dataset.channels, dataset.height, dataset.width]), the model expects \(engine.inputShape)")
    var model = trainer
    // The engine's layers must be the trainer's, name for name and shape for shape (e.g. not a model trained
    // with another --width-multiplier), or the accumulators cannot be compared value by value.
    var trainerLayers: [String: (outChannels: Int, fanIn: Int)] = [:]
    model.network.visitWrapLayers { trainerLayers[$0.name] = ($0.geometry.outChannels, $0.geometry.fanIn) }
    for layer in engine.denseLayers {
      guard let t = trainerLayers[layer.name] else {
        throw EngineExportError(message: "the engine model's layer '\(layer.name)' is not in the trainer's \(trainer.config.displayName) model")
      }
      // A logits layer after a sum pool too wide for byte codes reads every position: k = positions · fan-in.
      var folded = false
      if case .logits = layer.output { folded = layer.weights.k % t.fanIn == 0 }
      guard t.outChannels == layer.outChannels, t.fanIn == layer.weights.k || folded else {
        throw EngineExportError(
          message: "layer '\(layer.name)': the engine model has \(layer.outChannels) outputs × \(layer.weights.k) inputs, the trainer's \(trainer.config.displayName) model \(t.outChannels) × \(t.fanIn); compare a packed model with the checkpoint it was converted from")
      }
    }
    model.network.visitWrapLayers { $0.keepSums = true }
    var options = options
    options.recordAccumulators = true
    var report = EngineComparison()
    // One runner for every batch: its plan and scratch memory are kept between them.
    let runner = try InferenceRunner(model: engine, options: options)
    let size = dataset.imageSize
    var start = 0
    while start < dataset.count {
      let n = min(batchSize, dataset.count - start)
      let pixels = Array(dataset.images[(start * size)..<((start + n) * size)])
      let result = runner.run(pixels: pixels, count: n)
      let logits = model.forward(
        Tensor(shape: [n, dataset.channels, dataset.height, dataset.width], data: pixels.map { Float($0) }),
        phase: .evaluation)
      var sums: [String: (Tensor, Accumulator)] = [:]
      model.network.visitWrapLayers { l in if let s = l.lastSums { sums[l.name] = (s, l.accumulator) } }
      report.compare(result: result, logits: logits, sums: sums, labels: dataset.labels[start..<(start + n)], first: start)
      start += n
    }
    return report
  }

  private mutating func note(_ s: @autoclosure () -> String) {
    if firstDifference == nil { firstDifference = s() }
  }

  private mutating func compare(
    result: InferenceResult, logits: Tensor, sums: [String: (Tensor, Accumulator)], labels: ArraySlice<UInt8>, first: Int
  ) {
    let n = labels.count
    let k = result.classes
    images += n
    for i in 0..<n {
      var best = 0
      for j in 0..<k {
        if logits.data[i * k + j].bitPattern != result.logits[i * k + j].bitPattern {
          logitMismatches += 1
          note("image \(first + i) logit \(j): engine \(result.logits[i * k + j]), trainer \(logits.data[i * k + j])")
        }
        if j > 0 && logits.data[i * k + j] > logits.data[i * k + best] { best = j }
      }
      if best != result.predictions[i] {
        mismatches += 1
        note("image \(first + i): engine predicts \(result.predictions[i]), trainer \(best)")
      }
      let label = Int(labels[labels.startIndex + i])
      if best == label { trainerCorrect += 1 }
      if result.predictions[i] == label { engineCorrect += 1 }
    }
    for rec in result.accumulators {
      guard let (z, acc) = sums[rec.name] else {
        note("layer '\(rec.name)': the trainer has no sums")
        continue
      }
      // Trainer z is NCHW [n, O, P]; the engine's record is [n, P, O].
      let (p, o) = (rec.positions, rec.channels)
      let lowBit = rec.mode != .exact
      z.data.withUnsafeBufferPointer { zt in
        rec.values.withUnsafeBufferPointer { ze in
          for i in 0..<n {
            for ch in 0..<o {
              for pos in 0..<p {
                let t = zt[(i * o + ch) * p + pos]
                let e = ze[(i * p + pos) * o + ch]
                if lowBit {
                  accumulatorsCompared += 1
                  let exact = Int64(t)
                  let expected = acc.mode == .clamp ? exact.saturated(toBits: acc.bits) : exact.wrapped(toBits: acc.bits)
                  if expected != Int64(e) {
                    accumulatorMismatches += 1
                    note("layer '\(rec.name)' image \(first + i) channel \(ch) position \(pos): engine \(e), trainer z \(t) → \(expected)")
                  }
                } else {
                  exactSumsCompared += 1
                  if Float(e) != t {
                    exactSumMismatches += 1
                    note("layer '\(rec.name)' image \(first + i) channel \(ch) position \(pos): engine z \(e), trainer z \(t)")
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}
