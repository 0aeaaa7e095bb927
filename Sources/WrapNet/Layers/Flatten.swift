// Flatten: a reshape that keeps the batch dimension.

/// Flattens every dimension after the first: [N, d1, d2, ...] → [N, d1·d2·...]; elements keep their order.
public struct Flatten: Layer {
  /// Backward cache: the shape of the last training input.
  private var cachedInputShape: [Int] = []

  /// A flatten layer (no parameters).
  public init() {}

  /// Shapes: [N, ...] → [N, rest].
  public mutating func forward(_ input: Tensor, phase: Phase) -> Tensor {
    // input [N, ...] -> output [N, rest]
    precondition(input.rank >= 1, "Flatten: input \(input.shape) needs a batch dimension")
    cachedInputShape = phase == .training ? input.shape : []
    return input.reshaped([input.shape[0], input.shape.dropFirst().reduce(1, *)])
  }

  /// Shapes: [N, rest] → the last training input's shape.
  public mutating func backward(_ gradOutput: Tensor) -> Tensor {
    // gradOutput [N, rest] -> gradInput [N, ...]
    precondition(!cachedInputShape.isEmpty, "Flatten.backward called without a .training forward")
    precondition(
      gradOutput.count == cachedInputShape.reduce(1, *),
      "Flatten.backward: gradOutput \(gradOutput.shape) does not match input \(cachedInputShape)")
    // y = reshape(x): dx = reshape(dy)
    return gradOutput.reshaped(cachedInputShape)
  }
}
