/// Hyper-parameters of a training run (everything but the model); stored in checkpoints and `summary.json`.
public struct TrainingOptions: Sendable, Equatable, Codable {
  /// Dataset name ("mnist", "fashion-mnist", "cifar10").
  public var dataset: String = "mnist"
  public var epochs: Int = 10
  public var batchSize: Int = 128
  /// "adam" or "sgd".
  public var optimizer: String = "adam"
  public var learningRate: Float = 1e-3
  /// SGD momentum (and Nesterov); Adam ignores them.
  public var momentum: Float = 0.9
  public var nesterov: Bool = false
  public var weightDecay: Float = 0
  /// "cosine", "step" or "constant"; warm-up is linear over `warmupEpochs` epochs.
  public var schedule: String = "cosine"
  public var warmupEpochs: Int = 0
  /// For the "step" schedule: epochs at which the rate is multiplied by `stepGamma`.
  public var stepEpochs: [Int] = []
  public var stepGamma: Float = 0.1
  public var seed: UInt64 = 0
  /// BLAS threads. Results do not depend on it.
  public var threads: Int = 2
  /// Train on the first N training images only (nil: all).
  public var limitTrain: Int? = nil
  /// Random crop (pad 4) and horizontal flip; the default for 32×32 colour data.
  public var augment: Bool = false
  /// Overflow-penalty warm-up: λ rises linearly from λ/W·T to λ over the first W·T of the run's T steps, W in
  /// (0, 1] (nil: λ from the first step). Optional, so files written without it decode unchanged.
  public var penaltyWarmup: Double? = nil
  /// How λ is spread over the low-bit layers: nil or "uniform" (λ in every layer), "fan-in" (λ · F̄ / F_l, F_l
  /// the layer's fan-in and F̄ the mean over the low-bit layers: the penalty then counts excess per summed product)
  /// or "overflow" (λ · r_l / r̄ at every step, r_l the layer's overflow rate so far in the epoch, r̄ their mean).
  public var penaltyScaling: String? = nil

  /// The values `penaltyScaling` accepts.
  public static let penaltyScalings = ["uniform", "fan-in", "overflow"]

  public init() {}

  enum CodingKeys: String, CodingKey {
    case dataset, epochs
    case batchSize = "batch_size"
    case optimizer
    case learningRate = "learning_rate"
    case momentum, nesterov
    case weightDecay = "weight_decay"
    case schedule
    case warmupEpochs = "warmup_epochs"
    case stepEpochs = "step_epochs"
    case stepGamma = "step_gamma"
    case seed, threads
    case limitTrain = "limit_train"
    case augment
    case penaltyWarmup = "penalty_warmup"
    case penaltyScaling = "penalty_scaling"
  }

  /// The most epochs a run may have.
  public static let maxEpochs = 1_000_000

  /// Checks ranges; the message names the flag and what is allowed.
  public func validate() throws {
    func fail(_ s: String) -> ConfigError { ConfigError(message: s) }
    guard (1...Self.maxEpochs).contains(epochs) else { throw fail("--epochs must be in 1...\(Self.maxEpochs), got \(epochs)") }
    if let bad = stepEpochs.first(where: { !(0...epochs).contains($0) }) {
      throw fail("--step-epochs must lie in 0...\(epochs) (the run's epochs), got \(bad)")
    }
    guard stepGamma > 0, stepGamma.isFinite else { throw fail("--step-gamma must be > 0, got \(stepGamma)") }
    guard batchSize >= 2 else {
      throw fail("--batch-size must be at least 2 (batch norm needs two images per batch), got \(batchSize)")
    }
    guard ["adam", "sgd"].contains(optimizer) else { throw fail("--optimizer must be adam or sgd, got '\(optimizer)'") }
    guard learningRate > 0, learningRate.isFinite else { throw fail("--lr must be > 0, got \(learningRate)") }
    guard (0..<1).contains(momentum) else { throw fail("--momentum must be in [0, 1), got \(momentum)") }
    guard weightDecay >= 0 else { throw fail("--weight-decay must be >= 0, got \(weightDecay)") }
    guard ["cosine", "step", "constant"].contains(schedule) else {
      throw fail("--schedule must be cosine, step or constant, got '\(schedule)'")
    }
    guard warmupEpochs >= 0, warmupEpochs < epochs || warmupEpochs == 0 else {
      throw fail("--warmup-epochs must be in 0..<epochs, got \(warmupEpochs)")
    }
    guard (1...256).contains(threads) else { throw fail("--threads must be in 1...256, got \(threads)") }
    guard DatasetName(rawValue: dataset) != nil else {
      throw fail("dataset must be mnist, fashion-mnist or cifar10, got '\(dataset)'")
    }
    if let n = limitTrain, n < 2 {
      throw fail("--limit-train must be at least 2 (batch norm needs two images per batch), got \(n)")
    }
    if let w = penaltyWarmup, !(w > 0 && w <= 1) {
      throw fail("--penalty-warmup must be in (0, 1] (a fraction of the run's steps), got \(w)")
    }
    if let s = penaltyScaling, !Self.penaltyScalings.contains(s) {
      throw fail("--penalty-scaling must be \(Self.penaltyScalings.joined(separator: " or ")), got '\(s)'")
    }
  }

  /// `validate()`, and that the dataset's images are the model's input: [1, 28, 28] for mnist and fashion-mnist,
  /// [3, 32, 32] for cifar10, with 10 classes.
  public func validate(for config: ModelConfig) throws {
    try validate()
    let shape = dataset == DatasetName.cifar10.rawValue ? [3, 32, 32] : [1, 28, 28]
    let model = [config.inputChannels, config.inputHeight, config.inputWidth]
    guard shape == model, config.classes == 10 else {
      throw ConfigError(
        message: "dataset '\(dataset)' has \(shape) images in 10 classes but the model takes \(model) images in \(config.classes) classes")
    }
  }
}
