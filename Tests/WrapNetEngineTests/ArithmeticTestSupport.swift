import Testing

extension Tag {
  /// Tests that take more than about a second in a debug build (exhaustive sweeps); CI runs them all.
  @Tag static var slow: Self
}

/// Two's-complement hex of an integer, e.g. `-1` as Int16 -> "0xffff (-1)".
func hex<T: FixedWidthInteger>(_ value: T) -> String {
  let bits = UInt64(truncatingIfNeeded: value) & (T.bitWidth == 64 ? ~0 : (UInt64(1) << T.bitWidth) - 1)
  return "0x" + String(bits, radix: 16) + " (\(value))"
}

/// Hex bit pattern of a Float, e.g. "0x3f800000 (1.0)".
func hex(_ value: Float) -> String { "0x" + String(value.bitPattern, radix: 16) + " (\(value))" }

/// Reference wrap written from the definition `((z + 2^(b-1)) mod 2^b) - 2^(b-1)` with a mathematical mod,
/// in 64-bit integers without overflow for every Int64 z (z is reduced mod 2^b first; shifts are not used).
func referenceWrap(_ z: Int64, bits b: Int) -> Int64 {
  let modulus = Int64(1) << b
  let half = modulus / 2
  let reduced = z % modulus  // in (-2^b, 2^b)
  let shifted = reduced + half  // in (-2^b + 2^(b-1), 2^b + 2^(b-1))
  let mathMod = ((shifted % modulus) + modulus) % modulus  // mathematical mod: in [0, 2^b)
  return mathMod - half
}

/// Reference clamp to `[-2^(b-1), 2^(b-1) - 1]`, written with explicit comparisons.
func referenceSaturate(_ z: Int64, bits b: Int) -> Int64 {
  let half = Int64(1) << (b - 1)
  if z < -half { return -half }
  if z > half - 1 { return half - 1 }
  return z
}
