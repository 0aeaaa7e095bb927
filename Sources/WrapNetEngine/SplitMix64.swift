/// SplitMix64 (Steele, Lea, Flood 2014): a fixed, documented pseudo-random sequence, so that generated test vectors
/// and benchmark inputs are the same on every machine and run.
///
/// `next()`: `state += 0x9E3779B97F4A7C15`, then the finalizer `z ^= z >> 30; z *= 0xBF58476D1CE4E5B9;
/// z ^= z >> 27; z *= 0x94D049BB133111EB; z ^= z >> 31`. The trainer's `SeededGenerator` seeds xoshiro256** from the
/// same sequence.
public struct SplitMix64: RandomNumberGenerator, Sendable {
  private var state: UInt64
  /// The sequence that starts from `seed`.
  public init(seed: UInt64) { state = seed }
  /// The next 64 bits.
  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
