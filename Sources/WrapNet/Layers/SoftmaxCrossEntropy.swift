// Softmax cross-entropy loss with its gradient and the accuracy count, in one pass.

#if canImport(Darwin)
  import Darwin
#elseif canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#endif

/// Mean softmax cross-entropy of a batch, its gradient with respect to the logits, and the number of correct
/// argmax predictions.
///
/// loss = (1/N) Σₙ [log Σₖ exp(zₙₖ) − zₙ,labelₙ], dL/dzₙₖ = (softmax(zₙ)ₖ − [k = labelₙ]) / N.
/// Shapes: `logits` [N, K], `labels` N values in 0..<K → `gradLogits` [N, K].
/// Numerically stable: each row is shifted by its maximum before exponentiation; the log-sum-exp and the loss are
/// computed in Float64. The prediction is the first index of the row maximum.
public struct SoftmaxCrossEntropy: Sendable {
  /// Mean loss over the batch.
  public var loss: Double
  /// dL/dlogits of the mean loss, [N, K].
  public var gradLogits: Tensor
  /// Number of rows whose argmax equals the label.
  public var correct: Int

  /// Evaluates the loss of `logits` [N, K] against `labels` (N values in 0..<K).
  public init(logits: Tensor, labels: [Int]) {
    // logits [N, K], labels [N] -> loss, gradLogits [N, K], correct
    precondition(logits.rank == 2, "SoftmaxCrossEntropy: logits \(logits.shape) must be [N, K]")
    let n = logits.shape[0]
    let k = logits.shape[1]
    precondition(labels.count == n, "SoftmaxCrossEntropy: \(labels.count) labels for logits \(logits.shape)")
    precondition(k > 0, "SoftmaxCrossEntropy: logits \(logits.shape) have no classes")
    var grad = [Float](repeating: 0, count: n * k)
    var total = 0.0
    var correct = 0
    let invN = 1 / Double(max(n, 1))
    logits.data.withUnsafeBufferPointer { z in
      grad.withUnsafeMutableBufferPointer { dz in
        for row in 0..<n {
          let label = labels[row]
          precondition(label >= 0 && label < k, "SoftmaxCrossEntropy: label \(label) of row \(row) not in 0..<\(k)")
          let base = row * k
          var best = 0
          for j in 1..<k where z[base + j] > z[base + best] { best = j }
          if best == label { correct += 1 }
          let maxZ = Double(z[base + best])
          var sumExp = 0.0
          for j in 0..<k { sumExp += exp(Double(z[base + j]) - maxZ) }
          let logSumExp = maxZ + log(sumExp)
          total += logSumExp - Double(z[base + label])
          for j in 0..<k {
            // loss = logsumexp(z) − z[label]: dz = softmax(z) − onehot(label), scaled by 1/N for the mean
            let p = exp(Double(z[base + j]) - logSumExp)
            dz[base + j] = Float((p - (j == label ? 1 : 0)) * invN)
          }
        }
      }
    }
    self.loss = total * invN
    self.gradLogits = Tensor(shape: [n, k], data: grad)
    self.correct = correct
  }
}

/// Adds L2 weight decay to a gradient: g ← g + decay·w (the gradient of (decay/2)·‖w‖²).
///
/// Shapes: `weight` and `gradient` equal.
public func addWeightDecay(_ decay: Float, weight: Tensor, to gradient: inout Tensor) {
  precondition(
    weight.shape == gradient.shape, "addWeightDecay: weight \(weight.shape) and gradient \(gradient.shape) must match")
  weight.data.withUnsafeBufferPointer { w in
    gradient.data.withUnsafeMutableBufferPointer { g in
      for i in 0..<g.count { g[i] += decay * w[i] }
    }
  }
}
