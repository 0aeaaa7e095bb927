// Average pooling over square windows without padding.

/// Average pooling: y[n, c, i, j] = (Σ_{u, v < k} x[n, c, i·s + u, j·s + v]) / k².
///
/// Shapes: input [N, C, H, W] → output [N, C, Ho, Wo], Ho = (H − k)/s + 1, Wo = (W − k)/s + 1 (no padding).
/// The window sum is taken in row-major window order in Float32, then divided by k².
public struct AvgPool2D: Layer {
  /// Window side k.
  public var kernel: Int
  /// Step s between windows.
  public var stride: Int
  /// Backward cache: the shape of the last training input.
  private var cachedInputShape: [Int] = []

  /// An average-pooling layer with window `kernel` and step `stride` (defaults to `kernel`).
  public init(kernel: Int, stride: Int? = nil) {
    precondition(kernel >= 1, "AvgPool2D: kernel \(kernel) must be >= 1")
    precondition((stride ?? kernel) >= 1, "AvgPool2D: stride \(stride ?? kernel) must be >= 1")
    self.kernel = kernel
    self.stride = stride ?? kernel
  }

  /// y = window means. Shapes: [N, C, H, W] → [N, C, Ho, Wo].
  public mutating func forward(_ input: Tensor, phase: Phase) -> Tensor {
    // input [N, C, H, W] -> output [N, C, Ho, Wo]
    precondition(input.rank == 4, "AvgPool2D: input \(input.shape) must be [N, C, H, W]")
    let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    precondition(h >= kernel && w >= kernel, "AvgPool2D: kernel \(kernel) larger than input \(input.shape)")
    let ho = (h - kernel) / stride + 1
    let wo = (w - kernel) / stride + 1
    let k = kernel
    let s = stride
    let area = Float(k * k)
    var output = [Float](repeating: 0, count: n * c * ho * wo)
    input.data.withUnsafeBufferPointer { x in
      output.withUnsafeMutableBufferPointer { y in
        for plane in 0..<(n * c) {
          let xBase = plane * h * w
          let yBase = plane * ho * wo
          for i in 0..<ho {
            for j in 0..<wo {
              var sum: Float = 0
              for u in 0..<k {
                let row = xBase + (i * s + u) * w + j * s
                for v in 0..<k { sum += x[row + v] }
              }
              y[yBase + i * wo + j] = sum / area
            }
          }
        }
      }
    }
    cachedInputShape = phase == .training ? input.shape : []
    return Tensor(shape: [n, c, ho, wo], data: output)
  }

  /// Spreads each dy/k² over its window. Shapes: [N, C, Ho, Wo] → [N, C, H, W].
  public mutating func backward(_ gradOutput: Tensor) -> Tensor {
    // gradOutput [N, C, Ho, Wo] -> gradInput [N, C, H, W]
    precondition(cachedInputShape.count == 4, "AvgPool2D.backward called without a .training forward")
    let (n, c, h, w) = (cachedInputShape[0], cachedInputShape[1], cachedInputShape[2], cachedInputShape[3])
    let ho = (h - kernel) / stride + 1
    let wo = (w - kernel) / stride + 1
    precondition(
      gradOutput.shape == [n, c, ho, wo],
      "AvgPool2D.backward: gradOutput \(gradOutput.shape) must be \([n, c, ho, wo]) for input \(cachedInputShape)")
    let k = kernel
    let s = stride
    let area = Float(k * k)
    var gradInput = [Float](repeating: 0, count: n * c * h * w)
    gradOutput.data.withUnsafeBufferPointer { dy in
      gradInput.withUnsafeMutableBufferPointer { dx in
        for plane in 0..<(n * c) {
          let xBase = plane * h * w
          let yBase = plane * ho * wo
          for i in 0..<ho {
            for j in 0..<wo {
              // y = Σ window / k²: dx[window] += dy / k²
              let g = dy[yBase + i * wo + j] / area
              for u in 0..<k {
                let row = xBase + (i * s + u) * w + j * s
                for v in 0..<k { dx[row + v] += g }
              }
            }
          }
        }
      }
    }
    return Tensor(shape: cachedInputShape, data: gradInput)
  }
}
