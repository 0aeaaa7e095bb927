/// Batch normalization at evaluation time, one value at a time: the single definition that the trainer's
/// `BatchNorm` (evaluation forward and `normalize(value:channel:)`) and the integer engine's Float post-processing
/// both call, so the engine reproduces the trainer bit for bit.
public enum BatchNormEvaluation {
  /// `((x − mean) / std) · gamma + beta`, in that order, four Float roundings, no fused multiply-add;
  /// `std = (runningVar + epsilon).squareRoot()` is computed by the caller.
  @inlinable @inline(__always)
  public static func normalize(_ x: Float, mean: Float, std: Float, gamma: Float, beta: Float) -> Float {
    let d = x - mean
    let t = d / std
    let u = t * gamma
    return u + beta
  }
}
