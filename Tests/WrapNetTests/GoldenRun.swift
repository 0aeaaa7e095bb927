/// Losses (cross-entropy + penalty) of `TrainerTests.goldenTenSteps`: mlp, binary weights, 2-bit activations,
/// 8-bit cyclic accumulators, λ = 0.01, Adam 1e-3, batch 16, seed 1, synthetic data seed 42.
/// Regenerate only on purpose, when a change is meant to alter training numerics.
enum GoldenRun {
  static let losses: [Double] = [
    2.336658378401406, 0.4031010347733916, 0.21313540546020848, 0.14222381998408384, 0.18602307079027874,
    0.054025990340486274, 0.330733087874227, 0.14100854999014878, 0.14406442828387367, 0.4293902746959733,
  ]
}
