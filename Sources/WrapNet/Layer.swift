/// Whether a forward pass is for training (keep what backward needs, use batch statistics) or for evaluation.
public enum Phase: Sendable, Equatable {
  case training
  case evaluation
}

/// A layer with an explicit forward and backward pass (llm.c style).
///
/// - `forward` in `.training` phase keeps in the layer whatever `backward` needs (a small cache).
/// - `backward` takes dL/d(output) of the last training forward, *accumulates* parameter gradients into the
///   layer's gradient tensors and returns dL/d(input).
/// - Parameters and their gradients are visited in a fixed order, so optimizers and checkpoints see a stable
///   sequence of named tensors.
public protocol Layer: Sendable {
  /// Runs the layer on `input`; shapes are documented by each conformer.
  mutating func forward(_ input: Tensor, phase: Phase) -> Tensor
  /// Given dL/d(output) of the last `.training` forward, accumulates parameter gradients and returns dL/d(input).
  mutating func backward(_ gradOutput: Tensor) -> Tensor
  /// Visits every trainable parameter as (name, value, gradient), in a fixed order.
  mutating func visitParameters(_ visit: (String, inout Tensor, inout Tensor) -> Void)
  /// Visits every non-trainable state tensor that a checkpoint must hold (e.g. batch-norm running statistics).
  mutating func visitBuffers(_ visit: (String, inout Tensor) -> Void)
  /// Visits every WrapNet quantized layer inside this layer (itself included), in forward order.
  mutating func visitWrapLayers(_ visit: (inout WrapLayer) -> Void)
}

extension Layer {
  public mutating func visitParameters(_ visit: (String, inout Tensor, inout Tensor) -> Void) {}
  public mutating func visitBuffers(_ visit: (String, inout Tensor) -> Void) {}
  public mutating func visitWrapLayers(_ visit: (inout WrapLayer) -> Void) {}

  /// Sets every parameter gradient to zero.
  public mutating func zeroGradients() {
    visitParameters { _, _, grad in
      for i in grad.data.indices { grad.data[i] = 0 }
    }
  }
}
