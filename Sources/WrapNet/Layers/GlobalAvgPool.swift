// Global average pooling: one mean per (image, channel).

/// Global average pooling: y[n, c] = (Σ_{h, w} x[n, c, h, w]) / (H·W), summed in row-major order in Float32.
///
/// Shapes: input [N, C, H, W] → output [N, C].
public struct GlobalAvgPool: Layer {
  /// Backward cache: the shape of the last training input.
  private var cachedInputShape: [Int] = []

  /// A global average-pooling layer (no parameters).
  public init() {}

  /// y = plane means. Shapes: [N, C, H, W] → [N, C].
  public mutating func forward(_ input: Tensor, phase: Phase) -> Tensor {
    // input [N, C, H, W] -> output [N, C]
    precondition(input.rank == 4, "GlobalAvgPool: input \(input.shape) must be [N, C, H, W]")
    let (n, c) = (input.shape[0], input.shape[1])
    let plane = input.shape[2] * input.shape[3]
    precondition(plane > 0, "GlobalAvgPool: input \(input.shape) has an empty plane")
    let area = Float(plane)
    var output = [Float](repeating: 0, count: n * c)
    input.data.withUnsafeBufferPointer { x in
      output.withUnsafeMutableBufferPointer { y in
        for p in 0..<(n * c) {
          var sum: Float = 0
          for i in 0..<plane { sum += x[p * plane + i] }
          y[p] = sum / area
        }
      }
    }
    cachedInputShape = phase == .training ? input.shape : []
    return Tensor(shape: [n, c], data: output)
  }

  /// Spreads dy/(H·W) over each plane. Shapes: [N, C] → [N, C, H, W].
  public mutating func backward(_ gradOutput: Tensor) -> Tensor {
    // gradOutput [N, C] -> gradInput [N, C, H, W]
    precondition(cachedInputShape.count == 4, "GlobalAvgPool.backward called without a .training forward")
    precondition(
      gradOutput.shape == Array(cachedInputShape.prefix(2)),
      "GlobalAvgPool.backward: gradOutput \(gradOutput.shape) must be \(Array(cachedInputShape.prefix(2)))")
    let plane = cachedInputShape[2] * cachedInputShape[3]
    let area = Float(plane)
    var gradInput = [Float](repeating: 0, count: gradOutput.count * plane)
    gradOutput.data.withUnsafeBufferPointer { dy in
      gradInput.withUnsafeMutableBufferPointer { dx in
        for p in 0..<dy.count {
          // y = Σ plane / (H·W): dx[plane] = dy / (H·W)
          let g = dy[p] / area
          for i in 0..<plane { dx[p * plane + i] = g }
        }
      }
    }
    return Tensor(shape: cachedInputShape, data: gradInput)
  }
}
