/// Overflow statistics of one quantized layer over an evaluation.
public struct LayerOverflow: Sendable, Encodable, Equatable {
  public var name: String
  public var accumulatorBits: Int
  public var accumulatorMode: AccumulatorMode
  /// Outputs computed and outputs whose exact sum left [-2^(b-1), 2^(b-1)-1].
  public var outputs: Int
  public var overflows: Int
  public var overflowRate: Double { outputs == 0 ? 0 : Double(overflows) / Double(outputs) }

  enum CodingKeys: String, CodingKey {
    case name
    case accumulatorBits = "accumulator_bits"
    case accumulatorMode = "accumulator_mode"
    case outputs, overflows
    case overflowRate = "overflow_rate"
  }

  public init(name: String, accumulatorBits: Int, accumulatorMode: AccumulatorMode, outputs: Int, overflows: Int) {
    self.name = name
    self.accumulatorBits = accumulatorBits
    self.accumulatorMode = accumulatorMode
    self.outputs = outputs
    self.overflows = overflows
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(name, forKey: .name)
    try c.encode(accumulatorBits, forKey: .accumulatorBits)
    try c.encode(accumulatorMode, forKey: .accumulatorMode)
    try c.encode(outputs, forKey: .outputs)
    try c.encode(overflows, forKey: .overflows)
    try c.encode(overflowRate, forKey: .overflowRate)
  }
}

/// The result of evaluating a model's training simulation on a labelled set.
public struct EvaluationReport: Sendable, Encodable, Equatable {
  public var accuracy: Double
  public var correct: Int
  public var count: Int
  /// Mean cross-entropy.
  public var loss: Double
  /// Every quantized layer (first and last included), in forward order.
  public var layers: [LayerOverflow]
  public var seconds: Double
  public var imagesPerSecond: Double

  /// Share of outputs of the layers with accumulators narrower than 32 bits that overflowed.
  public var overflowRateLowBit: Double {
    let low = layers.filter { $0.accumulatorBits < 32 }
    let outputs = low.reduce(0) { $0 + $1.outputs }
    return outputs == 0 ? 0 : Double(low.reduce(0) { $0 + $1.overflows }) / Double(outputs)
  }

  enum CodingKeys: String, CodingKey {
    case accuracy, correct, count, loss, layers, seconds
    case imagesPerSecond = "images_per_second"
  }
}

extension WrapModel {
  /// Images per batch of `evaluate` unless told otherwise.
  public static let evaluationBatchSize = 500

  /// Evaluates (batch-norm running statistics, no gradients) on `data`, in batches of `batchSize`.
  /// `report` is called with the number of images done.
  public mutating func evaluate(_ data: ImageDataset, batchSize: Int = WrapModel.evaluationBatchSize, report: ((Int) -> Void)? = nil)
    -> EvaluationReport
  {
    precondition(batchSize > 0, "batch size must be positive")
    let start = ContinuousClock.now
    resetStatistics()
    let pipeline = DataPipeline(
      images: data.images, labels: data.labels, count: data.count, channels: data.channels, height: data.height,
      width: data.width, batchSize: batchSize, shuffle: false, dropLast: false, seed: 0, scaling: .raw,
      augmentation: .none)
    var correct = 0
    var lossSum = 0.0
    for batch in pipeline.epoch(0) {
      let logits = forward(batch.images, phase: .evaluation)
      let ce = SoftmaxCrossEntropy(logits: logits, labels: batch.labels)
      correct += ce.correct
      lossSum += Double(ce.loss) * Double(batch.labels.count)
      report?(batch.indices.last.map { $0 + 1 } ?? 0)
    }
    var layers: [LayerOverflow] = []
    network.visitWrapLayers { l in
      layers.append(LayerOverflow(name: l.name, accumulatorBits: l.accumulator.bits, accumulatorMode: l.accumulator.mode,
                                  outputs: l.outputsSeen, overflows: l.overflowsSeen))
    }
    let seconds = Trainer.seconds(since: start)
    return EvaluationReport(
      accuracy: data.count == 0 ? 0 : Double(correct) / Double(data.count), correct: correct, count: data.count,
      loss: data.count == 0 ? 0 : lossSum / Double(data.count), layers: layers, seconds: seconds,
      imagesPerSecond: Double(data.count) / max(seconds, 1e-9))
  }
}
