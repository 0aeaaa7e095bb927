// Max pooling over square windows without padding.

/// Max pooling: y[n, c, i, j] = max_{u, v < k} x[n, c, i·s + u, j·s + v].
///
/// Shapes: input [N, C, H, W] → output [N, C, Ho, Wo], Ho = (H − k)/s + 1, Wo = (W − k)/s + 1 (no padding;
/// trailing rows/columns that do not fill a window are dropped). Ties go to the first maximum in row-major window
/// order; backward routes dy to that element only.
public struct MaxPool2D: Layer {
  /// Window side k.
  public var kernel: Int
  /// Step s between windows.
  public var stride: Int
  /// Backward cache: for each output element, the flat index of its maximum in the input tensor.
  private var cachedArgmax: [Int32] = []
  /// Backward cache: the shape of the last training input.
  private var cachedInputShape: [Int] = []

  /// A max-pooling layer with window `kernel` and step `stride` (defaults to `kernel`: non-overlapping windows).
  public init(kernel: Int, stride: Int? = nil) {
    precondition(kernel >= 1, "MaxPool2D: kernel \(kernel) must be >= 1")
    precondition((stride ?? kernel) >= 1, "MaxPool2D: stride \(stride ?? kernel) must be >= 1")
    self.kernel = kernel
    self.stride = stride ?? kernel
  }

  /// y = window maxima. Shapes: [N, C, H, W] → [N, C, Ho, Wo].
  public mutating func forward(_ input: Tensor, phase: Phase) -> Tensor {
    // input [N, C, H, W] -> output [N, C, Ho, Wo]
    precondition(input.rank == 4, "MaxPool2D: input \(input.shape) must be [N, C, H, W]")
    precondition(input.count < Int(Int32.max), "MaxPool2D: input \(input.shape) too large for Int32 indices")
    let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    precondition(h >= kernel && w >= kernel, "MaxPool2D: kernel \(kernel) larger than input \(input.shape)")
    let ho = (h - kernel) / stride + 1
    let wo = (w - kernel) / stride + 1
    var output = [Float](repeating: 0, count: n * c * ho * wo)
    var argmax = [Int32](repeating: 0, count: phase == .training ? output.count : 0)
    let k = kernel
    let s = stride
    input.data.withUnsafeBufferPointer { x in
      output.withUnsafeMutableBufferPointer { y in
        argmax.withUnsafeMutableBufferPointer { am in
          for plane in 0..<(n * c) {
            let xBase = plane * h * w
            let yBase = plane * ho * wo
            for i in 0..<ho {
              for j in 0..<wo {
                var best = xBase + (i * s) * w + j * s
                var bestValue = x[best]
                for u in 0..<k {
                  let row = xBase + (i * s + u) * w + j * s
                  for v in 0..<k where x[row + v] > bestValue {
                    bestValue = x[row + v]
                    best = row + v
                  }
                }
                y[yBase + i * wo + j] = bestValue
                if phase == .training { am[yBase + i * wo + j] = Int32(best) }
              }
            }
          }
        }
      }
    }
    cachedArgmax = argmax
    cachedInputShape = phase == .training ? input.shape : []
    return Tensor(shape: [n, c, ho, wo], data: output)
  }

  /// Routes each dy to its window's maximum. Shapes: [N, C, Ho, Wo] → [N, C, H, W].
  public mutating func backward(_ gradOutput: Tensor) -> Tensor {
    // gradOutput [N, C, Ho, Wo] -> gradInput [N, C, H, W]
    precondition(!cachedInputShape.isEmpty, "MaxPool2D.backward called without a .training forward")
    precondition(
      gradOutput.count == cachedArgmax.count,
      "MaxPool2D.backward: gradOutput \(gradOutput.shape) does not match the forward output of input \(cachedInputShape)"
    )
    var gradInput = [Float](repeating: 0, count: cachedInputShape.reduce(1, *))
    gradOutput.data.withUnsafeBufferPointer { dy in
      cachedArgmax.withUnsafeBufferPointer { am in
        gradInput.withUnsafeMutableBufferPointer { dx in
          // y = x[argmax]: dx[argmax] += dy (windows may overlap when stride < kernel)
          for o in 0..<dy.count { dx[Int(am[o])] += dy[o] }
        }
      }
    }
    return Tensor(shape: cachedInputShape, data: gradInput)
  }
}
