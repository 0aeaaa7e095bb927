/// A dense, row-major Float32 tensor: a value type holding its shape and its elements.
///
/// Layouts used throughout the trainer: images and feature maps are NCHW `[batch, channels, height, width]`,
/// fully connected activations `[batch, features]`, linear weights `[out, in]`, conv weights
/// `[out, in, kh, kw]`.
public struct Tensor: Sendable, Equatable {
  /// Extent of each dimension, outermost first.
  public var shape: [Int]
  /// The elements in row-major order; `data.count == shape.reduce(1, *)`.
  public var data: [Float]

  /// A tensor with the given shape and elements. Precondition: `data.count` equals the product of `shape`.
  public init(shape: [Int], data: [Float]) {
    precondition(shape.allSatisfy { $0 >= 0 }, "Tensor shape \(shape) has a negative dimension")
    precondition(
      data.count == shape.reduce(1, *),
      "Tensor data has \(data.count) elements but shape \(shape) needs \(shape.reduce(1, *))")
    self.shape = shape
    self.data = data
  }

  /// A tensor of the given shape filled with `value` (zeros by default).
  public init(shape: [Int], repeating value: Float = 0) {
    self.init(shape: shape, data: [Float](repeating: value, count: shape.reduce(1, *)))
  }

  /// Number of elements.
  public var count: Int { data.count }

  /// Number of dimensions.
  public var rank: Int { shape.count }

  /// The same elements viewed with another shape of equal element count.
  public func reshaped(_ newShape: [Int]) -> Tensor {
    Tensor(shape: newShape, data: data)
  }
}
