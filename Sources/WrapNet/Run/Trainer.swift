import Foundation

/// Statistics of one training epoch.
public struct EpochStats: Sendable, Codable, Equatable {
  public var epoch: Int
  /// Mean cross-entropy + overflow penalty over the epoch's batches.
  public var loss: Double
  /// Mean overflow penalty alone.
  public var penalty: Double
  /// Training accuracy (on the augmented batches, in training mode).
  public var accuracy: Double
  /// Share of low-bit layer outputs whose exact sum left the b-bit range.
  public var overflowRate: Double
  public var imagesPerSecond: Double
  public var seconds: Double
  /// Learning rate of the epoch's last step.
  public var learningRate: Float

  enum CodingKeys: String, CodingKey {
    case epoch, loss, penalty, accuracy
    case overflowRate = "overflow_rate"
    case imagesPerSecond = "images_per_second"
    case seconds
    case learningRate = "learning_rate"
  }
}

/// Trains a `WrapModel`: seeded batches, forward, softmax cross-entropy + overflow penalty, backward, optimizer step.
///
/// Reproducibility: the batch order and augmentation are functions of (seed, epoch, index); BLAS threading splits
/// GEMMs only along output rows and columns, so weights after training are identical for any `threads`.
public struct Trainer {
  public var model: WrapModel
  public let options: TrainingOptions
  public var optimizer: any Optimizer
  public let schedule: LearningRateSchedule
  public let pipeline: DataPipeline
  /// Optimizer steps taken so far.
  public private(set) var step = 0
  /// Epochs completed so far.
  public private(set) var epochsDone = 0
  /// Each WrapLayer's full overflow-penalty weight λ_l (after `options.penaltyScaling`), by layer name.
  public let layerPenalties: [String: Float]

  /// A trainer over `train` (already limited by `options.limitTrain` if wanted). Validates the options and
  /// refuses a training set of fewer than 2 images (batch norm needs two images per batch).
  ///
  /// Batches: shuffled batches of `options.batchSize` images; a last partial batch of a single image is dropped
  /// for the same reason (any larger partial batch is kept).
  public init(model: WrapModel, options: TrainingOptions, train: ImageDataset) throws {
    try options.validate()
    try model.config.checkMemory(
      copies: 3, batchSize: min(options.batchSize, train.count), activationCopies: 3, purpose: "training")
    guard train.count >= 2 else {
      throw ConfigError(
        message: "the training set has \(train.count) image\(train.count == 1 ? "" : "s"); training needs at least 2 (batch norm needs two images per batch): check --limit-train and the dataset files")
    }
    self.model = model
    self.options = options
    self.layerPenalties = Self.layerPenalties(of: &self.model, scaling: options.penaltyScaling)
    let cifarLike = train.channels == 3
    self.pipeline = DataPipeline(
      images: train.images, labels: train.labels, count: train.count, channels: train.channels,
      height: train.height, width: train.width, batchSize: options.batchSize, shuffle: true, dropLast: false,
      minimumLastBatch: 2, seed: options.seed, scaling: .raw, augmentation: options.augment ? (cifarLike ? .cifar : Augmentation(padding: 2, horizontalFlip: false)) : .none)
    let stepsPerEpoch = pipeline.batchesPerEpoch
    let warmup = options.warmupEpochs * stepsPerEpoch
    switch options.schedule {
    case "cosine": schedule = .cosine(options.learningRate, warmupSteps: warmup)
    case "step":
      schedule = .step(options.learningRate, milestoneEpochs: options.stepEpochs, stepsPerEpoch: stepsPerEpoch,
                       gamma: options.stepGamma, warmupSteps: warmup)
    default: schedule = .constant(options.learningRate, warmupSteps: warmup)
    }
    switch options.optimizer {
    case "sgd":
      optimizer = SGD(learningRate: options.learningRate, momentum: options.momentum, nesterov: options.nesterov,
                      weightDecay: options.weightDecay)
    default:
      optimizer = Adam(learningRate: options.learningRate, weightDecay: options.weightDecay)
    }
  }

  /// Total optimizer steps of the whole run.
  public var totalSteps: Int { options.epochs * pipeline.batchesPerEpoch }

  /// λ_l per layer: the layer's own λ (the model's λ, 0 in wide layers), times F̄ / F_l under "fan-in", where F̄ is
  /// the mean fan-in of the low-bit layers. ("overflow" scales these at every step, by `overflowShares()`.)
  static func layerPenalties(of model: inout WrapModel, scaling: String?) -> [String: Float] {
    var layers: [(name: String, weight: Float, fanIn: Int)] = []
    model.network.visitWrapLayers { layers.append(($0.name, $0.penaltyWeight, $0.geometry.fanIn)) }
    let lowBit = layers.filter { model.isLowBitLayer($0.name) }
    let meanFanIn = lowBit.isEmpty ? 1 : Double(lowBit.reduce(0) { $0 + $1.fanIn }) / Double(lowBit.count)
    var out: [String: Float] = [:]
    for l in layers {
      out[l.name] = scaling == "fan-in" ? Float(Double(l.weight) * meanFanIn / Double(l.fanIn)) : l.weight
    }
    return out
  }

  /// Under "overflow" scaling: each low-bit layer's overflow rate so far in the epoch over the mean rate of the
  /// low-bit layers (empty while no layer has overflowed, so λ starts uniform).
  mutating func overflowShares() -> [String: Float] {
    var rates: [(String, Double)] = []
    let model = self.model
    self.model.network.visitWrapLayers { layer in
      if model.isLowBitLayer(layer.name) {
        rates.append((layer.name, Double(layer.overflowsSeen) / Double(max(layer.outputsSeen, 1))))
      }
    }
    let mean = rates.reduce(0) { $0 + $1.1 } / Double(max(rates.count, 1))
    guard mean > 0 else { return [:] }
    return Dictionary(uniqueKeysWithValues: rates.map { ($0.0, Float($0.1 / mean)) })
  }

  /// Share of λ in force at optimizer step `step` (0-based): min(1, (step + 1) / (W · T)) under a warm-up W, else 1.
  public func penaltyFactor(atStep step: Int) -> Float {
    guard let w = options.penaltyWarmup else { return 1 }
    return Float(min(1, Double(step + 1) / max(1, w * Double(totalSteps))))
  }

  /// Restores the position of a resumed run (after loading model and optimizer state).
  public mutating func restore(epochsDone: Int) {
    self.epochsDone = epochsDone
    self.step = epochsDone * pipeline.batchesPerEpoch
  }

  /// One optimizer step on `batch`; returns (cross-entropy, penalty, correct predictions).
  public mutating func trainStep(_ batch: ImageBatch) -> (loss: Double, penalty: Double, correct: Int) {
    model.network.zeroGradients()
    if options.penaltyWarmup != nil || options.penaltyScaling != nil {
      let factor = penaltyFactor(atStep: step)
      let penalties = layerPenalties
      let shares = options.penaltyScaling == "overflow" ? overflowShares() : [:]
      model.network.visitWrapLayers { $0.penaltyWeight = penalties[$0.name]! * factor * (shares[$0.name] ?? 1) }
    }
    let logits = model.forward(batch.images, phase: .training)
    let ce = SoftmaxCrossEntropy(logits: logits, labels: batch.labels)
    let penalty = model.penalty()
    model.backward(ce.gradLogits)
    let lr = schedule.rate(atStep: step, totalSteps: totalSteps)
    optimizer.step(&model.network, learningRate: lr)
    step += 1
    return (Double(ce.loss), penalty, ce.correct)
  }

  /// Runs the next epoch; `report` is called after every batch with (batches done, running stats).
  ///
  /// Throws `TrainingDivergedError` as soon as a batch's loss is NaN or infinite, or when a parameter is
  /// non-finite at the end of the epoch; the model is then unusable and `epochsDone` is not advanced.
  public mutating func trainEpoch(report: ((Int, EpochStats) -> Void)? = nil) throws -> EpochStats {
    let epoch = epochsDone
    let start = ContinuousClock.now
    model.resetStatistics()
    var lossSum = 0.0, penaltySum = 0.0, correct = 0, seen = 0
    var stats = EpochStats(epoch: epoch + 1, loss: 0, penalty: 0, accuracy: 0, overflowRate: 0, imagesPerSecond: 0,
                           seconds: 0, learningRate: 0)
    let batches = pipeline.epoch(epoch)
    for (i, batch) in batches.enumerated() {
      let r = trainStep(batch)
      guard (r.loss + r.penalty).isFinite else {
        throw TrainingDivergedError(
          epoch: epoch + 1, batch: i + 1, what: "the loss is \(r.loss + r.penalty)",
          learningRate: schedule.rate(atStep: step - 1, totalSteps: totalSteps))
      }
      lossSum += (r.loss + r.penalty) * Double(batch.labels.count)
      penaltySum += r.penalty * Double(batch.labels.count)
      correct += r.correct
      seen += batch.labels.count
      let seconds = Self.seconds(since: start)
      stats.loss = lossSum / Double(seen)
      stats.penalty = penaltySum / Double(seen)
      stats.accuracy = Double(correct) / Double(seen)
      stats.overflowRate = model.overflowRate()
      stats.seconds = seconds
      stats.imagesPerSecond = Double(seen) / max(seconds, 1e-9)
      stats.learningRate = schedule.rate(atStep: max(step - 1, 0), totalSteps: totalSteps)
      report?(i + 1, stats)
    }
    var bad: String? = nil
    model.network.visitParameters { name, value, _ in
      if bad == nil, !value.data.allSatisfy({ $0.isFinite }) { bad = name }
    }
    if let bad {
      throw TrainingDivergedError(
        epoch: epoch + 1, batch: batches.count, what: "parameter '\(bad)' holds NaN or infinity",
        learningRate: stats.learningRate)
    }
    epochsDone += 1
    return stats
  }

  static func seconds(since start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
  }
}

/// Training stopped because it diverged: a non-finite loss or parameter. The model in memory is unusable; the last
/// checkpoint written before this epoch is intact.
public struct TrainingDivergedError: Error, CustomStringConvertible, Sendable {
  /// The epoch (1-based) and batch (1-based) where it was detected.
  public var epoch: Int, batch: Int
  /// What was found ("the loss is nan").
  public var what: String
  /// The learning rate of the failing step.
  public var learningRate: Float

  /// An error at (epoch, batch).
  public init(epoch: Int, batch: Int, what: String, learningRate: Float) {
    (self.epoch, self.batch, self.what, self.learningRate) = (epoch, batch, what, learningRate)
  }

  /// What happened and what to do.
  public var description: String {
    "training diverged in epoch \(epoch), batch \(batch): \(what) (learning rate \(learningRate)); lower --lr (or add warm-up with --warmup-epochs) and start again"
  }
}

extension WrapModel {
  /// Share of low-bit outputs that overflowed since the last `resetStatistics()` (0 when there are none).
  public mutating func overflowRate() -> Double {
    var over = 0, seen = 0
    network.visitWrapLayers { layer in
      if layer.accumulator.bits < 32 {
        over += layer.overflowsSeen
        seen += layer.outputsSeen
      }
    }
    return seen == 0 ? 0 : Double(over) / Double(seen)
  }
}
