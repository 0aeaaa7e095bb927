// Rectified linear unit (for float baselines).

/// ReLU: y = max(x, 0) elementwise; the derivative at x = 0 is taken as 0.
///
/// Shapes: any → same shape.
public struct ReLU: Layer {
  /// Backward cache: the output of the last training forward (y > 0 exactly where x > 0).
  private var cachedOutput: Tensor?

  /// A ReLU layer (no parameters).
  public init() {}

  /// y = max(x, 0). Shapes: any → same.
  public mutating func forward(_ input: Tensor, phase: Phase) -> Tensor {
    // input [any] -> output [same]
    var output = input
    output.data.withUnsafeMutableBufferPointer { y in
      for i in 0..<y.count where !(y[i] > 0) { y[i] = 0 }
    }
    cachedOutput = phase == .training ? output : nil
    return output
  }

  /// dx = dy where x > 0, else 0. Shapes: like the last training input.
  public mutating func backward(_ gradOutput: Tensor) -> Tensor {
    // gradOutput [any] -> gradInput [same]
    guard let output = cachedOutput else { preconditionFailure("ReLU.backward called without a .training forward") }
    precondition(
      gradOutput.shape == output.shape, "ReLU.backward: gradOutput \(gradOutput.shape) must match \(output.shape)")
    var gradInput = gradOutput
    output.data.withUnsafeBufferPointer { y in
      gradInput.data.withUnsafeMutableBufferPointer { dx in
        // y = max(x, 0): dx = dy · [x > 0]
        for i in 0..<dx.count where !(y[i] > 0) { dx[i] = 0 }
      }
    }
    return gradInput
  }
}
