// Saturating (clamping) reduction to a b-bit accumulator: the common alternative to wrap-around.
//
//     sat_b(z) = clamp(z, -2^(b-1), 2^(b-1) - 1)
//
// Unlike wrapping, saturating after every addition is not associative: the sequential result depends on the
// order of the terms and in general differs from sat_b(exact sum). It equals sat_b(exact sum) whenever no partial
// sum leaves the range.

extension Int32 {
  /// `clamp(self, -2^(b-1), 2^(b-1) - 1)`. Identity when `self` is in range (so `b = 32` is the identity).
  /// Precondition: `2 <= b <= 32`.
  @inlinable @inline(__always)
  public func saturated(toBits b: Int) -> Int32 {
    precondition(b >= 2 && b <= 32, "Accumulator width must be in 2...32 bits")
    let upper = Int32(truncatingIfNeeded: (Int64(1) << (b - 1)) - 1)
    let lower = ~upper
    return Swift.min(Swift.max(self, lower), upper)
  }
}

extension Int64 {
  /// `clamp(self, -2^(b-1), 2^(b-1) - 1)`. Precondition: `2 <= b <= 32`.
  @inlinable @inline(__always)
  public func saturated(toBits b: Int) -> Int64 {
    precondition(b >= 2 && b <= 32, "Accumulator width must be in 2...32 bits")
    let upper = (Int64(1) << (b - 1)) - 1
    return Swift.min(Swift.max(self, ~upper), upper)
  }
}

extension Int {
  /// `clamp(self, -2^(b-1), 2^(b-1) - 1)`. Precondition: `2 <= b <= 32`.
  @inlinable @inline(__always)
  public func saturated(toBits b: Int) -> Int {
    precondition(b >= 2 && b <= 32, "Accumulator width must be in 2...32 bits")
    let upper = (1 << (b - 1)) - 1
    return Swift.min(Swift.max(self, ~upper), upper)
  }
}

extension Float {
  /// `clamp(self, -2^(b-1), 2^(b-1) - 1)` for training.
  ///
  /// For `b <= 25` both bounds are exact Floats. For `b >= 26`, `2^(b-1) - 1` is not a Float; the upper bound is then
  /// the largest Float below it (`2^(b-1) - 2^(b-25)`), so a saturated value never exceeds the integer range.
  /// NaN stays NaN. Precondition: `2 <= b <= 32`.
  @inlinable @inline(__always)
  public func saturated(toBits b: Int) -> Float {
    precondition(b >= 2 && b <= 32, "Accumulator width must be in 2...32 bits")
    let half = Float(bitPattern: UInt32(truncatingIfNeeded: 126 &+ b) &<< 23)  // 2^(b-1): biased exponent 127 + b - 1
    let upper = b <= 25 ? half - 1 : half.nextDown
    // Written with comparisons (not min/max) so that NaN propagates.
    return self < -half ? -half : (self > upper ? upper : self)
  }
}

/// Sequential saturating accumulation: `acc = sat_b(acc + term)` after every term, in the given order, from 0.
///
/// This models a b-bit saturating accumulator. It depends on the order of the terms and generally differs from
/// `sat_b(exact sum)`; it equals `sat_b(exact sum)` (and the exact sum) when no partial sum leaves
/// `[-2^(b-1), 2^(b-1) - 1]`. Precondition: `2 <= bits <= 32`.
@inlinable
public func saturatingSum<S: Sequence>(_ terms: S, bits: Int) -> Int32 where S.Element == Int32 {
  precondition(bits >= 2 && bits <= 32, "Accumulator width must be in 2...32 bits, got \(bits)")
  var accumulator: Int64 = 0
  // |acc| <= 2^31 and |term| <= 2^31, so the 64-bit add cannot overflow.
  for term in terms { accumulator = (accumulator &+ Int64(term)).saturated(toBits: bits) }
  return Int32(truncatingIfNeeded: accumulator)
}

/// Sequential saturating accumulation of 64-bit terms: `acc = sat_b(acc + term)` after every term, in order.
///
/// Terms may lie anywhere in Int64; a partial sum that overflows Int64 saturates in the direction of the term.
/// Same invariants as the Int32 version. Precondition: `2 <= bits <= 32`.
@inlinable
public func saturatingSum<S: Sequence>(_ terms: S, bits: Int) -> Int64 where S.Element == Int64 {
  precondition(bits >= 2 && bits <= 32, "Accumulator width must be in 2...32 bits, got \(bits)")
  var accumulator: Int64 = 0
  for term in terms {
    let (sum, overflow) = accumulator.addingReportingOverflow(term)
    // acc is within 32 bits, so overflow means |term| is huge: the result saturates towards its sign.
    accumulator = overflow ? (term < 0 ? Int64.min : Int64.max).saturated(toBits: bits) : sum.saturated(toBits: bits)
  }
  return accumulator
}

/// Sequential saturating accumulation of Float terms (training view of a saturating accumulator):
/// `acc = sat_b(acc + term)` after every term, in order, from 0, with `Float.saturated(toBits:)`.
/// Precondition: `2 <= bits <= 32`.
@inlinable
public func saturatingSum<S: Sequence>(_ terms: S, bits: Int) -> Float where S.Element == Float {
  precondition(bits >= 2 && bits <= 32, "Accumulator width must be in 2...32 bits, got \(bits)")
  var accumulator: Float = 0
  for term in terms { accumulator = (accumulator + term).saturated(toBits: bits) }
  return accumulator
}
