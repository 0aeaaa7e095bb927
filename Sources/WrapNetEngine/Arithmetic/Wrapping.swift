// Wrap-around (two's-complement) reduction of sums to a b-bit accumulator.
//
// Every function here computes
//
//     wrap_b(z) = ((z + 2^(b-1)) mod 2^b) - 2^(b-1)        (mathematical mod, result in [-2^(b-1), 2^(b-1) - 1])
//
// which is what a b-bit two's-complement register holds after adding integers into it with wrap-around.
// Because wrap_b is a ring homomorphism Z -> Z/2^b Z (with representatives in [-2^(b-1), 2^(b-1) - 1]), for any
// order of summation and any wider lane width w >= b: wrap_b(sum of wrapping adds in w-bit lanes) == wrap_b(exact sum).

extension FixedWidthInteger where Self: SignedInteger {
  /// `wrap_b(self)`: the value a b-bit two's-complement accumulator holds for the integer `self` (Int32, Int64,
  /// Int).
  ///
  /// Formula: `((z + 2^(b-1)) mod 2^b) - 2^(b-1)`, computed branch-free by sign-extending the low b bits
  /// (`(z << (w - b)) >> (w - b)` for a w-bit type, arithmetic right shift). Result in `[-2^(b-1), 2^(b-1) - 1]`;
  /// identity when `self` already lies there (so `b = 32` is the identity on Int32). Precondition: `2 <= b <= 32`
  /// and b at most the type's width.
  @inlinable @inline(__always)
  public func wrapped(toBits b: Int) -> Self {
    precondition(b >= 2 && b <= 32 && b <= Self.bitWidth, "Accumulator width must be in 2...32 bits")
    let shift = Self(truncatingIfNeeded: Self.bitWidth &- b)
    return (self &<< shift) &>> shift
  }
}

extension Float {
  /// `wrap_b(self)` for training: `z - 2^b * floor((z + 2^(b-1)) / 2^b)`, result in `[-2^(b-1), 2^(b-1))`.
  ///
  /// Evaluated in Double as `z - 2^b * q` with `q = floor(z / 2^b + 1/2)` (the same number): `z / 2^b` is exact,
  /// `q` is computed exactly (round half up), and the final subtraction is exact because the result is a Float
  /// multiple of the spacing of z. So the result is exact for every finite Float `z`; in particular integer-valued
  /// `z` with `|z| < 2^24` give exactly `Float(Int64(z).wrapped(toBits: b))`. Non-finite `z` give NaN.
  /// Precondition: `2 <= b <= 32`.
  @inlinable @inline(__always)
  public func wrapped(toBits b: Int) -> Float {
    precondition(b >= 2 && b <= 32, "Accumulator width must be in 2...32 bits")
    // 2^b and 2^-b built from their bit patterns (biased exponent 1023 ± b): exact and cheap even in debug builds.
    let modulus = Double(bitPattern: UInt64(truncatingIfNeeded: 1023 &+ b) &<< 52)
    let inverseModulus = Double(bitPattern: UInt64(truncatingIfNeeded: 1023 &- b) &<< 52)
    let z = Double(self)
    // Multiplying by 2^-b is an exact division, and cheaper than dividing.
    return Float(z - modulus * roundHalfUpForWrap(z * inverseModulus))
  }
}

/// `floor(w + 1/2)` (round half up) for the quotient `w = z / 2^b` in `Float.wrapped(toBits:)`, written so that it
/// vectorizes without SSE4.1's `roundpd` (the default x86-64 target would otherwise call libm once per element).
///
/// For `|w| < 2^51`, adding and subtracting `1.5 * 2^52` rounds w to the nearest integer, ties to even (the sum
/// lies where the Double spacing is 1); `w - nearest` is exact, and a tie that went down (`== 1/2`) is bumped up.
/// Larger quotients come from Floats of magnitude at least `2^(51+b)`, whose spacing is a multiple of `2^b`, so
/// they are already integers and pass through unchanged, as do NaN and infinities.
@inlinable @inline(__always)
func roundHalfUpForWrap(_ w: Double) -> Double {
  let magic = 6_755_399_441_055_744.0  // 1.5 * 2^52
  let nearest = (w + magic) - magic
  let rounded = w - nearest == 0.5 ? nearest + 1 : nearest
  return w.magnitude < 2_251_799_813_685_248.0 ? rounded : w  // 2^51
}

/// The b-bit wrap-around sum of integer terms: adds them one by one in 64-bit lanes with `&+` and wraps once.
///
/// Invariant: for any order of the terms, the result equals `wrap_b(exact sum)`, the value a b-bit accumulator
/// holds after adding the terms one by one with wrap-around. Precondition: `2 <= bits <= 32`.
@inlinable
public func wrappingSum<S: Sequence>(_ terms: S, bits: Int) -> Int64 where S.Element: BinaryInteger {
  precondition(bits >= 2 && bits <= 32, "Accumulator width must be in 2...32 bits, got \(bits)")
  var accumulator: Int64 = 0
  // Wrapping in 64-bit lanes and reducing once at the end equals reducing after every add (ring homomorphism).
  for term in terms { accumulator &+= Int64(truncatingIfNeeded: term) }
  return accumulator.wrapped(toBits: bits)
}
