import WrapNetEngine

/// How a low-bit layer turns its exact integer dot product `z` into the value `y` that the rest of the network sees.
///
/// | mode       | forward `y`                                   | hardware it models                               |
/// |------------|-----------------------------------------------|--------------------------------------------------|
/// | `exact`    | `z`                                           | a 32-bit accumulator (the baseline)              |
/// | `wrap`     | `wrap_b(z)`                                   | a naive b-bit two's-complement accumulator       |
/// | `cyclic`   | `f_k(wrap_b(z))`                              | WrapNet: b-bit accumulator + cyclic activation   |
/// | `clamp`    | `clamp(z, -2^(b-1), 2^(b-1)-1)`               | a *wide* accumulator followed by one clamp       |
/// | `saturate` | sequential saturating sum, clamped every add  | a real b-bit saturating accumulator              |
/// | `avoid`    | `z`, with weights constrained so that         | a b-bit accumulator that never overflows         |
/// |            | ‖w‖₁·(2^a−1) ≤ 2^(b−1)−1 (A2Q-style)           | (overflow avoidance; see `WrapLayer`)            |
///
/// `clamp` is not what a b-bit saturating accumulator computes: that one clamps after every addition, so its result
/// depends on the order of summation. `saturate` simulates it in one fixed order (see `SaturatingOrder`).
public enum AccumulatorMode: String, Sendable, CaseIterable, Codable {
  case exact, wrap, cyclic, clamp, saturate, avoid

  /// One line for `--help` and reports: what the mode needs in hardware.
  public var hardware: String {
    switch self {
    case .exact: return "32-bit accumulator"
    case .wrap: return "b-bit wrap-around accumulator, no adaptation"
    case .cyclic: return "b-bit wrap-around accumulator + cyclic activation (WrapNet)"
    case .clamp: return "wide accumulator + clamp to b bits (not a b-bit accumulator)"
    case .saturate: return "b-bit saturating accumulator (clamps after every addition)"
    case .avoid: return "b-bit accumulator; weights constrained so it cannot overflow (A2Q-style)"
    }
  }
}

/// The accumulator of one layer: its width, its mode and (for `cyclic`) the transition slope k.
///
/// Gradients (dy/dz, straight-through where the forward is not differentiable):
/// - `exact`: 1.
/// - `wrap`, `avoid`: 1 (straight-through: the wrap is treated as the identity; under `avoid` it never acts).
/// - `cyclic`: f_k'(wrap_b(z)), the true piecewise derivative (1 or -k) of the cyclic activation, times the
///   straight-through 1 of the wrap.
/// - `clamp`, `saturate`: 1 where the exact sum is inside [-2^(b-1), 2^(b-1)-1], 0 outside (no gradient flows
///   through a saturated output, as for a clipped ReLU).
public struct Accumulator: Sendable, Equatable, Codable {
  /// Accumulator width b. With `exact`, 32.
  public var width: AccumulatorWidth
  /// What happens to the sum.
  public var mode: AccumulatorMode
  /// Transition slope k of the cyclic activation (only used by `cyclic`).
  public var slope: Float

  /// Encoded as `{"bits": b, "mode": ..., "slope": k}`.
  enum CodingKeys: String, CodingKey {
    case width = "bits"
    case mode, slope
  }

  /// The accumulator of `width` bits in `mode`. Precondition: `slope > 0`.
  public init(width: AccumulatorWidth, mode: AccumulatorMode, slope: Float = 2) {
    precondition(slope > 0, "cyclic slope must be > 0, got \(slope)")
    self.width = width
    self.mode = mode
    self.slope = slope
  }

  /// The 32-bit accumulator used by first and last layers.
  public static let wide = Accumulator(width: .wide, mode: .exact)

  /// Accumulator width b in bits (`width.bits`).
  @inlinable public var bits: Int { width.bits }

  /// Smallest representable value, -2^(b-1).
  public var minValue: Float { -Float(sign: .plus, exponent: bits - 1, significand: 1) }
  /// Largest representable value, 2^(b-1) - 1.
  public var maxValue: Float { Float(sign: .plus, exponent: bits - 1, significand: 1) - 1 }

  /// Whether this accumulator can overflow at all (anything narrower than 32 bits, in a non-exact mode).
  public var isLowBit: Bool { mode != .exact && bits < 32 }

  /// y for an exact sum z (all modes but `saturate`, whose y depends on the order of the terms).
  @inlinable
  public func apply(_ z: Float) -> Float {
    switch mode {
    case .exact: return z
    // Under `avoid` the weight constraint keeps |z| ≤ 2^(b−1)−1, so the wrap never acts; it is kept so the
    // simulation is what a b-bit accumulator computes even for weights that do not satisfy the constraint.
    case .wrap, .avoid: return z.wrapped(toBits: bits)
    case .cyclic: return CyclicActivation(width: width, slope: slope)(z.wrapped(toBits: bits))
    case .clamp, .saturate: return z.saturated(toBits: bits)
    }
  }

  /// dy/dz at the exact sum z (see the type's documentation for the straight-through choices).
  @inlinable
  public func derivative(_ z: Float) -> Float {
    switch mode {
    case .exact, .wrap, .avoid: return 1
    case .cyclic: return CyclicActivation(width: width, slope: slope).derivative(z.wrapped(toBits: bits))
    case .clamp, .saturate:
      return (z >= minValue && z <= maxValue) ? 1 : 0
    }
  }

  /// Whether z lies outside the b-bit range [-2^(b-1), 2^(b-1)-1] (counted as an overflow).
  @inlinable
  public func overflows(_ z: Float) -> Bool { z < minValue || z > maxValue }
}

extension Accumulator {
  /// out[i] = apply(z[i]) · scale + shift for i in 0..<count, with the same Float operations as `apply` element by
  /// element (the mode and the cyclic activation are chosen once per call, not once per element). With
  /// `identity` the accumulator is skipped: out[i] = z[i] · scale + shift (for sums already saturated).
  /// With a `preload` p, z holds register contents m = sum + p and the preload is taken off after the accumulator:
  /// out[i] = (apply(z[i]) − p) · scale + shift (with `identity`: (z[i] − p) · scale + shift).
  /// `z` and `out` may be the same buffer.
  @inlinable
  public func applyScaled(
    _ z: UnsafePointer<Float>, count: Int, scale: Float, shift: Float, identity: Bool = false, preload: Float? = nil,
    into out: UnsafeMutablePointer<Float>
  ) {
    if let p = preload {
      if identity || mode == .exact {
        for i in 0..<count { out[i] = (z[i] - p) * scale + shift }
      } else {
        for i in 0..<count { out[i] = (apply(z[i]) - p) * scale + shift }
      }
      return
    }
    if identity || mode == .exact {
      for i in 0..<count { out[i] = z[i] * scale + shift }
      return
    }
    switch mode {
    case .exact: break
    case .wrap, .avoid:
      for i in 0..<count { out[i] = z[i].wrapped(toBits: bits) * scale + shift }
    case .cyclic:
      let f = CyclicActivation(width: width, slope: slope)
      for i in 0..<count { out[i] = f(z[i].wrapped(toBits: bits)) * scale + shift }
    case .clamp, .saturate:
      for i in 0..<count { out[i] = z[i].saturated(toBits: bits) * scale + shift }
    }
  }

  /// out[i] = g[i] · scale · derivative(z[i]) for i in 0..<count, with the same Float operations as `derivative`
  /// element by element (the mode chosen once per call). `g` and `out` may be the same buffer.
  @inlinable
  public func scaledDerivative(
    _ g: UnsafePointer<Float>, sums z: UnsafePointer<Float>, count: Int, scale: Float,
    into out: UnsafeMutablePointer<Float>
  ) {
    switch mode {
    case .exact, .wrap, .avoid:
      // x · 1 == x exactly, so the derivative 1 is left out.
      for i in 0..<count { out[i] = g[i] * scale }
    case .cyclic:
      let f = CyclicActivation(width: width, slope: slope)
      for i in 0..<count { out[i] = g[i] * scale * f.derivative(z[i].wrapped(toBits: bits)) }
    case .clamp, .saturate:
      let (lo, hi) = (minValue, maxValue)
      for i in 0..<count { out[i] = g[i] * scale * ((z[i] >= lo && z[i] <= hi) ? 1 : 0) }
    }
  }
}
