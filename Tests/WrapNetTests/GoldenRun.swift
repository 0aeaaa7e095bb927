/// Losses (cross-entropy + penalty) of `TrainerTests.goldenTenSteps`: mlp, binary weights, 2-bit activations,
/// 8-bit cyclic accumulators, λ = 0.01, Adam 1e-3, batch 16, seed 1, synthetic data seed 42.
/// Regenerate only on purpose, when a change is meant to alter training numerics.
enum GoldenRun {
  static let losses: [Double] = []
}
