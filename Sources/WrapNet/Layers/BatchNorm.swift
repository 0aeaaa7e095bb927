import CWrapNetTraining
import WrapNetEngine
// Batch normalization over the channel dimension (dimension 1) of [N, C] or [N, C, H, W] activations.

/// Batch normalization: y = γ·(x − μ)/√(σ² + ε) + β per channel.
///
/// - `.training`: μ, σ² are the batch mean and *biased* variance over N (and H, W) of each channel; the running
///   statistics move towards them: running ← (1 − momentum)·running + momentum·batch, where the running variance
///   takes the *unbiased* batch variance σ²·M/(M − 1), M = N·H·W (as PyTorch, momentum 0.1 by default).
/// - `.evaluation`: μ, σ² are `runningMean`, `runningVar`; each element is computed by `normalize(value:channel:)`.
///
/// Shapes: input [N, C] or [N, C, H, W] → output of the same shape; `gamma`, `beta`, `runningMean`, `runningVar` [C].
/// Batch statistics are summed in Float64 in a fixed order, so they do not depend on any thread count.
public struct BatchNorm: Layer {
  /// Scale γ, [C] (starts at 1).
  public var gamma: Tensor
  /// Shift β, [C] (starts at 0).
  public var beta: Tensor
  /// Accumulated dL/dγ, [C].
  public var gradGamma: Tensor
  /// Accumulated dL/dβ, [C].
  public var gradBeta: Tensor
  /// Running mean, [C] (starts at 0); a buffer, not trained.
  public var runningMean: Tensor
  /// Running unbiased variance, [C] (starts at 1); a buffer, not trained.
  public var runningVar: Tensor
  /// Weight of the batch statistic in the running update.
  public var momentum: Float
  /// ε added to the variance before the square root.
  public var epsilon: Float
  /// Backward cache of the last `.training` forward: x̂ = (x − μ)·rstd, same shape as the input.
  private var cachedNormalized: Tensor?
  /// Backward cache: rstd = 1/√(σ² + ε) per channel, [C].
  private var cachedInverseStd: [Float] = []

  /// Number of channels C.
  public var channels: Int { gamma.count }

  /// A batch-norm layer over `channels` channels with γ = 1, β = 0, running mean 0 and running variance 1.
  public init(channels: Int, momentum: Float = 0.1, epsilon: Float = 1e-5) {
    precondition(channels > 0, "BatchNorm: channels must be positive, got \(channels)")
    precondition(momentum >= 0 && momentum <= 1, "BatchNorm: momentum \(momentum) must be in [0, 1]")
    precondition(epsilon >= 0, "BatchNorm: epsilon \(epsilon) must be >= 0")
    gamma = Tensor(shape: [channels], repeating: 1)
    beta = Tensor(shape: [channels], repeating: 0)
    gradGamma = Tensor(shape: [channels])
    gradBeta = Tensor(shape: [channels])
    runningMean = Tensor(shape: [channels], repeating: 0)
    runningVar = Tensor(shape: [channels], repeating: 1)
    self.momentum = momentum
    self.epsilon = epsilon
  }

  /// The evaluation-mode output for one element `value` of channel `channel`, with these exact Float32 operations
  /// in this order (no fused multiply-add):
  ///
  ///     d = value − runningMean[c]
  ///     s = (runningVar[c] + epsilon).squareRoot()
  ///     t = d / s
  ///     y = t · gamma[c] + beta[c]        (product rounded, then sum rounded)
  ///
  /// The `.evaluation` forward computes every element exactly this way, so a table built from this function
  /// reproduces it bit for bit.
  public func normalize(value: Float, channel: Int) -> Float {
    precondition(channel >= 0 && channel < channels, "BatchNorm.normalize: channel \(channel) not in 0..<\(channels)")
    let s = (runningVar.data[channel] + epsilon).squareRoot()
    return BatchNormEvaluation.normalize(
      value, mean: runningMean.data[channel], std: s, gamma: gamma.data[channel], beta: beta.data[channel])
  }

  /// Normalizes `input` per channel (see the type's documentation). Shapes: [N, C] or [N, C, H, W] → same.
  public mutating func forward(_ input: Tensor, phase: Phase) -> Tensor {
    // input [N, C, (H, W)] -> output [N, C, (H, W)]
    precondition(
      (input.rank == 2 || input.rank == 4) && input.shape[1] == channels,
      "BatchNorm: input \(input.shape) must be [N, \(channels)] or [N, \(channels), H, W]")
    let n = input.shape[0]
    let c = channels
    let spatial = input.shape.dropFirst(2).reduce(1, *)
    // output, normalized and gradInput are written in full (every channel of every image).
    var output: [Float] = unfilledArray(count: input.count)
    switch phase {
    case .evaluation:
      cachedNormalized = nil
      let (means, variances, gammas, betas, eps) = (runningMean.data, runningVar.data, gamma.data, beta.data, epsilon)
      input.data.withUnsafeBufferPointer { xp in
        output.withUnsafeMutableBufferPointer { yp in
          let (x, y) = (SharedBuffer(xp), SharedBuffer(yp))
          runChannelGroups(c, spatial: spatial) { channels in
            for ch in channels {
              let s = (variances[ch] + eps).squareRoot()
              let (mu, g, b) = (means[ch], gammas[ch], betas[ch])
              for i in 0..<n {
                let base = (i * c + ch) * spatial
                for p in 0..<spatial {
                  y[base + p] = BatchNormEvaluation.normalize(x[base + p], mean: mu, std: s, gamma: g, beta: b)
                }
              }
            }
          }
        }
      }
      return Tensor(shape: input.shape, data: output)
    case .training:
      let m = n * spatial
      precondition(m > 1, "BatchNorm: training needs more than one value per channel, input \(input.shape)")
      var normalized: [Float] = unfilledArray(count: input.count)
      var inverseStd = [Float](repeating: 0, count: c)
      let (gammas, betas, eps, momentum) = (gamma.data, beta.data, epsilon, self.momentum)
      input.data.withUnsafeBufferPointer { xp in
        output.withUnsafeMutableBufferPointer { yp in
          normalized.withUnsafeMutableBufferPointer { xhatp in
          inverseStd.withUnsafeMutableBufferPointer { rstdp in
          runningMean.data.withUnsafeMutableBufferPointer { rmp in
          runningVar.data.withUnsafeMutableBufferPointer { rvp in
            let (x, y, xhat, rstds) = (SharedBuffer(xp), SharedBuffer(yp), SharedBuffer(xhatp), SharedBuffer(rstdp))
            let (runMean, runVar) = (SharedBuffer(rmp), SharedBuffer(rvp))
            // Each channel's sums run in the same order whatever the thread count.
            runChannelGroups(c, spatial: spatial) { channels in
              let (first, count) = (channels.lowerBound, channels.count)
              let group = x.base + first * spatial
              // Two passes in Float64: mean, then biased variance (stable for large means).
              var sums = [Double](repeating: 0, count: count)
              wrapnet_channel_sums(group, n, c * spatial, spatial, count, nil, &sums)
              let means = sums.map { $0 / Double(m) }
              var squares = [Double](repeating: 0, count: count)
              wrapnet_channel_sums(group, n, c * spatial, spatial, count, means, &squares)
              for k in 0..<count {
                let ch = first + k
                let variance = squares[k] / Double(m)
                let rstd = Float(1 / (variance + Double(eps)).squareRoot())
                let meanF = Float(means[k])
                // x̂ = (x − μ)·rstd, y = γ·x̂ + β
                wrapnet_batchnorm_normalize(
                  x.base + ch * spatial, n, c * spatial, spatial, meanF, rstd, gammas[ch], betas[ch],
                  xhat.base + ch * spatial, y.base + ch * spatial)
                rstds[ch] = rstd
                let unbiased = variance * Double(m) / Double(m - 1)
                runMean[ch] = (1 - momentum) * runMean[ch] + momentum * meanF
                runVar[ch] = (1 - momentum) * runVar[ch] + momentum * Float(unbiased)
              }
            }
          }
          }
          }
          }
        }
      }
      cachedNormalized = Tensor(shape: input.shape, data: normalized)
      cachedInverseStd = inverseStd
      return Tensor(shape: input.shape, data: output)
    }
  }

  /// Accumulates dγ, dβ; returns dx. Shapes: gradOutput like the last training input.
  ///
  /// dx = γ·rstd/M · (M·dy − Σdy − x̂·Σ(dy·x̂)) per channel (sums over the M = N·H·W values of the channel).
  public mutating func backward(_ gradOutput: Tensor) -> Tensor {
    // gradOutput [N, C, (H, W)] -> gradInput [N, C, (H, W)]
    guard let normalized = cachedNormalized else {
      preconditionFailure("BatchNorm.backward called without a .training forward")
    }
    precondition(
      gradOutput.shape == normalized.shape,
      "BatchNorm.backward: gradOutput \(gradOutput.shape) must match the forward input \(normalized.shape)")
    let n = gradOutput.shape[0]
    let c = channels
    let spatial = gradOutput.shape.dropFirst(2).reduce(1, *)
    let m = n * spatial
    var gradInput: [Float] = unfilledArray(count: gradOutput.count)
    let (gammas, rstds) = (gamma.data, cachedInverseStd)
    gradOutput.data.withUnsafeBufferPointer { dyp in
      normalized.data.withUnsafeBufferPointer { xhatp in
        gradInput.withUnsafeMutableBufferPointer { dxp in
        gradGamma.data.withUnsafeMutableBufferPointer { dgp in
        gradBeta.data.withUnsafeMutableBufferPointer { dbp in
          let (dy, xhat, dx) = (SharedBuffer(dyp), SharedBuffer(xhatp), SharedBuffer(dxp))
          let (dGamma, dBeta) = (SharedBuffer(dgp), SharedBuffer(dbp))
          // Each channel's sums run in the same order whatever the thread count.
          runChannelGroups(c, spatial: spatial) { channels in
            let (first, count) = (channels.lowerBound, channels.count)
            var sumsDy = [Double](repeating: 0, count: count)
            var sumsDyXhat = [Double](repeating: 0, count: count)
            wrapnet_batchnorm_gradient_sums(
              dy.base + first * spatial, xhat.base + first * spatial, n, c * spatial, spatial, count, &sumsDy,
              &sumsDyXhat)
            for k in 0..<count {
              let ch = first + k
              // y = γ·x̂ + β  (w.r.t. β): dβ += Σ dy
              dBeta[ch] += Float(sumsDy[k])
              // y = γ·x̂ + β  (w.r.t. γ): dγ += Σ dy·x̂
              dGamma[ch] += Float(sumsDyXhat[k])
              // x̂ = (x − μ)·rstd with μ, rstd from the batch (w.r.t. x, through x̂, μ and σ²):
              // dx = γ·rstd/M · (M·dy − Σdy − x̂·Σ(dy·x̂))
              let scale = gammas[ch] * rstds[ch] / Float(m)
              wrapnet_batchnorm_input_gradient(
                dy.base + ch * spatial, xhat.base + ch * spatial, n, c * spatial, spatial, scale, Float(m),
                Float(sumsDy[k]), Float(sumsDyXhat[k]), dx.base + ch * spatial)
            }
          }
        }
        }
        }
      }
    }
    return Tensor(shape: gradOutput.shape, data: gradInput)
  }

  /// Visits ("gamma", γ, dγ) then ("beta", β, dβ).
  public mutating func visitParameters(_ visit: (String, inout Tensor, inout Tensor) -> Void) {
    visit("gamma", &gamma, &gradGamma)
    visit("beta", &beta, &gradBeta)
  }

  /// Visits ("runningMean", μ) then ("runningVar", σ²).
  public mutating func visitBuffers(_ visit: (String, inout Tensor) -> Void) {
    visit("runningMean", &runningMean)
    visit("runningVar", &runningVar)
  }
}
