/// The cyclic activation: a continuous, odd "sawtooth-shaped" nonlinearity of period 2^b that is applied to
/// wrapped b-bit accumulator values, so that a sum which wraps from +2^(b-1) to -2^(b-1) sees no jump.
///
/// With transition slope `k > 0`, half-range `H = 2^(b-1)` and threshold `Q = k * H / (k + 1)`:
///
///     f(m) = m                 for |m| <= Q
///     f(m) =  k*H - k*m        for m > Q          (= k * (H - m))
///     f(m) = -k*H - k*m        for m < -Q         (= -k * (H + m))
///
///     f'(m) = 1 for |m| <= Q (also at exactly |m| = Q), -k otherwise.
///
/// Domain: the wrapped range `[-H, H]`; callers pass `wrap_b(z)`. (Inputs outside it are evaluated with the same
/// piecewise formula, not reduced.) Invariants: f is continuous (both pieces equal Q at m = Q), `f(H) == f(-H) == 0`
/// so `f ∘ wrap_b` is continuous and 2^b-periodic, and `f(-m) == -f(m)` exactly in floating point.
public struct CyclicActivation: Sendable, Hashable {
  /// Accumulator width b (2...32); the period is 2^b.
  public let bits: Int
  /// Transition slope k > 0 (the falling piece has slope -k).
  public let slope: Float
  /// `H = 2^(b-1)`.
  public let halfRange: Float
  /// `Q = k * H / (k + 1)`, where the rising piece meets the falling one.
  public let threshold: Float

  /// A cyclic activation of period 2^b (b = `width.bits`) with transition slope `slope`.
  /// Precondition: `slope` finite and `> 0`.
  public init(width: AccumulatorWidth, slope: Float) {
    precondition(slope.isFinite && slope > 0, "CyclicActivation slope must be finite and > 0, got \(slope)")
    let bits = width.bits
    self.bits = bits
    self.slope = slope
    let half = Float(sign: .plus, exponent: bits - 1, significand: 1)
    self.halfRange = half
    // Computed in Double so Q is the correctly rounded value of k*H/(k+1).
    self.threshold = Float(Double(slope) * Double(half) / (Double(slope) + 1))
  }

  /// `f(m)` (see the type's formula). `m` should be a wrapped value in `[-2^(b-1), 2^(b-1)]`.
  @inlinable @inline(__always)
  public func callAsFunction(_ m: Float) -> Float {
    // k*(H - m) rather than k*H - k*m: one rounding, exactly 0 at m = H, and exact odd symmetry with the
    // mirrored branch -k*(H + m).
    if m > threshold { return slope * (halfRange - m) }
    if m < -threshold { return -slope * (halfRange + m) }
    return m
  }

  /// `f'(m)`: 1 where `|m| <= Q` (1 at exactly the kink `|m| = Q`), `-k` elsewhere.
  @inlinable @inline(__always)
  public func derivative(_ m: Float) -> Float {
    (m > threshold || m < -threshold) ? -slope : 1
  }

  /// The transition slope as an integer, when it is one (`k` in 1...2^30); `nil` otherwise.
  public var integerSlope: Int64? {
    guard slope == slope.rounded(.towardZero), slope <= Float(1 << 30) else { return nil }
    return Int64(slope)
  }

  /// Exact integer `f(m)` for an integer slope k: with `H = 2^(b-1)`, `|m| * (k + 1) <= k * H` selects `m`,
  /// otherwise `k * (H - m)` (m > 0) or `-k * (H + m)` (m < 0), all in 64-bit integers. For integer m in `[-H, H]`
  /// the result lies in `[-Q, Q]` and equals the real-valued f exactly.
  /// Preconditions: the slope is an integer (`integerSlope != nil`); m in `[-2^(b-1), 2^(b-1)]`
  /// (for b = 32: any Int32).
  @inlinable
  public func callAsFunction(_ m: Int32) -> Int32 {
    guard let k = integerSlope else {
      preconditionFailure("Integer CyclicActivation needs an integer slope, got \(slope)")
    }
    let half = Int64(1) << (bits - 1)
    let x = Int64(m)
    precondition(x >= -half && x <= half, "CyclicActivation input \(m) is outside the wrapped range ±\(half)")
    let magnitude = x < 0 ? -x : x
    if magnitude * (k + 1) <= k * half { return m }
    // |m| > Q, so 0 <= k * (H - |m|) < k * H / (k + 1) = Q < 2^31: fits Int32.
    let folded = k * (half - magnitude)
    return Int32(truncatingIfNeeded: x > 0 ? folded : -folded)
  }
}
