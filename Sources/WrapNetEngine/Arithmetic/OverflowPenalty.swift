/// A training penalty that pushes a layer's unwrapped accumulator sums back into the b-bit range.
///
/// With `H = 2^(b-1)` and a layer's unwrapped sums `z` (Float, any shape, flattened):
///
///     value(z)       = sum_i max(|z_i| - H, 0)
///     gradient(z)_i  = sign(z_i) where |z_i| > H, else 0 (0 at exactly |z_i| = H)
///     overflowCount  = #{ i : z_i < -H  or  z_i > H - 1 }
///
/// For integer-valued z the overflow count is exactly the number of sums that wrap (`wrap_b(z) != z`), i.e. the
/// numerator of the layer's overflow rate. The value is summed in Double in index order (deterministic).
public struct OverflowPenalty: Sendable, Hashable {
  /// Accumulator width b (2...32).
  public let bits: Int
  /// `H = 2^(b-1)`.
  public let halfRange: Float

  /// The penalty for b-bit accumulators. Precondition: `2 <= bits <= 32`.
  public init(bits: Int) {
    precondition(bits >= 2 && bits <= 32, "OverflowPenalty bits must be in 2...32, got \(bits)")
    self.bits = bits
    self.halfRange = Float(sign: .plus, exponent: bits - 1, significand: 1)
  }

  /// One term, `max(|z| - H, 0)`.
  @inlinable @inline(__always)
  public func elementValue(_ z: Float) -> Float { Swift.max(z.magnitude - halfRange, 0) }

  /// One gradient entry: `sign(z)` where `|z| > H`, else 0.
  @inlinable @inline(__always)
  public func elementGradient(_ z: Float) -> Float { z > halfRange ? 1 : (z < -halfRange ? -1 : 0) }

  /// `sum_i max(|z_i| - H, 0)`, summed in Double in index order.
  public func value(_ z: UnsafeBufferPointer<Float>) -> Double {
    let half = Double(halfRange)
    var sum = 0.0
    // |z| - H in Double is exact for every Float z, so only the sum rounds.
    for x in z { sum += Swift.max(Double(x.magnitude) - half, 0) }
    return sum
  }

  /// `sum_i max(|z_i| - H, 0)` of an array.
  public func value(_ z: [Float]) -> Double { z.withUnsafeBufferPointer { value($0) } }

  /// Accumulates `weight * gradient(z)` into `gradient` (llm.c style: backward adds, it does not overwrite).
  /// Shapes: `z` and `gradient` have the same count.
  public func accumulateGradient(
    _ z: UnsafeBufferPointer<Float>, weight: Float = 1, into gradient: UnsafeMutableBufferPointer<Float>
  ) {
    precondition(
      z.count == gradient.count,
      "OverflowPenalty.accumulateGradient: z has \(z.count) elements, gradient \(gradient.count)")
    for i in z.indices { gradient[i] += weight * elementGradient(z[i]) }
  }

  /// `gradient(z)_i = sign(z_i)` where `|z_i| > H`, else 0; same count as `z`.
  public func gradient(_ z: [Float]) -> [Float] {
    var result = [Float](repeating: 0, count: z.count)
    z.withUnsafeBufferPointer { z in
      result.withUnsafeMutableBufferPointer { accumulateGradient(z, into: $0) }
    }
    return result
  }

  /// Number of `z_i` outside `[-H, H - 1]` (for integer sums: the number that wrap).
  public func overflowCount(_ z: UnsafeBufferPointer<Float>) -> Int {
    let lower = -halfRange
    // H - 1 in Double: exact for every b, unlike in Float for b >= 26.
    let upper = Double(halfRange) - 1
    var count = 0
    for x in z where x < lower || Double(x) > upper { count += 1 }
    return count
  }

  /// Number of `z_i` outside `[-H, H - 1]` of an array.
  public func overflowCount(_ z: [Float]) -> Int { z.withUnsafeBufferPointer { overflowCount($0) } }

  /// Number of exact integer sums `z_i` outside `[-H, H - 1]`, i.e. that a b-bit accumulator wraps.
  public func overflowCount(_ z: [Int64]) -> Int {
    let half = Int64(1) << (bits - 1)
    var count = 0
    for x in z where x < -half || x >= half { count += 1 }
    return count
  }
}
