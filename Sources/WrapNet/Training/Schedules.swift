import Foundation

/// A learning-rate schedule: a base rate shaped by a decay rule and an optional linear warm-up.
///
/// Steps are counted from 0 (the first optimizer step is step 0). With base rate r, warm-up W steps, total T:
/// ```
/// warm-up factor   f(s) = s < W ? (s + 1) / W : 1
/// constant         rate(s) = r * f(s)
/// cosine           rate(s) = r * f(s) * (1 + cos(pi * p)) / 2,  p = clamp((s - W) / (T - W), 0, 1)
///                  (reaches exactly 0 at s = T; warm-up steps use p = 0)
/// step             rate(s) = r * f(s) * gamma^k,  k = number of milestones m with m <= s
/// ```
/// Milestones are in steps; for epoch milestones use `step(_:milestoneEpochs:stepsPerEpoch:gamma:warmupSteps:)`.
public struct LearningRateSchedule: Sendable, Equatable {
  /// How the rate evolves after (and during) warm-up.
  public enum Decay: Sendable, Equatable {
    /// The base rate throughout.
    case constant
    /// Half-cosine from the base rate down to 0 over the steps after warm-up.
    case cosine
    /// Multiply by `gamma` at each milestone step (a milestone m applies from step m on).
    case step(milestones: [Int], gamma: Float)
  }

  /// The rate r after warm-up and before any decay.
  public var baseRate: Float
  /// The decay rule.
  public var decay: Decay
  /// Number W of linear warm-up steps (0: none).
  public var warmupSteps: Int

  /// A schedule. Preconditions: `baseRate >= 0`, `warmupSteps >= 0`, step milestones not negative and gamma >= 0.
  public init(baseRate: Float, decay: Decay = .constant, warmupSteps: Int = 0) {
    precondition(baseRate >= 0, "learning rate \(baseRate) must not be negative")
    precondition(warmupSteps >= 0, "warm-up steps \(warmupSteps) must not be negative")
    if case .step(let milestones, let gamma) = decay {
      precondition(milestones.allSatisfy { $0 >= 0 }, "step milestones \(milestones) must not be negative")
      precondition(gamma >= 0, "step gamma \(gamma) must not be negative")
    }
    self.baseRate = baseRate
    self.decay = decay
    self.warmupSteps = warmupSteps
  }

  /// The base rate throughout (after warm-up).
  public static func constant(_ rate: Float, warmupSteps: Int = 0) -> LearningRateSchedule {
    LearningRateSchedule(baseRate: rate, decay: .constant, warmupSteps: warmupSteps)
  }

  /// Cosine decay to 0 over the total steps (after warm-up).
  public static func cosine(_ rate: Float, warmupSteps: Int = 0) -> LearningRateSchedule {
    LearningRateSchedule(baseRate: rate, decay: .cosine, warmupSteps: warmupSteps)
  }

  /// Multiply by `gamma` at each milestone step.
  public static func step(
    _ rate: Float, milestones: [Int], gamma: Float, warmupSteps: Int = 0
  ) -> LearningRateSchedule {
    LearningRateSchedule(baseRate: rate, decay: .step(milestones: milestones, gamma: gamma), warmupSteps: warmupSteps)
  }

  /// Multiply by `gamma` at the start of each milestone epoch (epoch e starts at step e * stepsPerEpoch).
  public static func step(
    _ rate: Float, milestoneEpochs: [Int], stepsPerEpoch: Int, gamma: Float, warmupSteps: Int = 0
  ) -> LearningRateSchedule {
    precondition(stepsPerEpoch > 0, "steps per epoch \(stepsPerEpoch) must be positive")
    return step(rate, milestones: milestoneEpochs.map { $0 * stepsPerEpoch }, gamma: gamma, warmupSteps: warmupSteps)
  }

  /// The learning rate for 0-based `step` of a run of `totalSteps` steps; see the type's formulas.
  /// Precondition: `step >= 0`, `totalSteps >= 0`. Steps past the end keep the final value.
  public func rate(atStep step: Int, totalSteps: Int) -> Float {
    precondition(step >= 0 && totalSteps >= 0, "rate(atStep: \(step), totalSteps: \(totalSteps)): both must be >= 0")
    let warmup: Double = step < warmupSteps ? Double(step + 1) / Double(warmupSteps) : 1
    let base = Double(baseRate)
    switch decay {
    case .constant:
      return Float(base * warmup)
    case .cosine:
      let decaySteps = totalSteps - warmupSteps
      // A run no longer than its warm-up never decays; avoid dividing by zero.
      let progress = decaySteps > 0 ? min(max(Double(step - warmupSteps) / Double(decaySteps), 0), 1) : 0
      return Float(base * warmup * (1 + cos(Double.pi * progress)) / 2)
    case .step(let milestones, let gamma):
      let passed = milestones.filter { $0 <= step }.count
      return Float(base * warmup * pow(Double(gamma), Double(passed)))
    }
  }
}
