import Foundation

/// A small, fast, seedable pseudo-random generator (xoshiro256**, seeded through SplitMix64).
///
/// Why our own generator: the standard library's `SystemRandomNumberGenerator` cannot be seeded, and the
/// algorithms behind `Int.random(in:using:)` / `shuffle(using:)` are not promised to stay the same across Swift
/// releases. Training must be reproducible from a seed, so every random decision in WrapNet (shuffling,
/// augmentation, weight init) goes through this type and through the helpers below, whose algorithms are fixed:
///
/// - `next()`: xoshiro256** (Blackman & Vigna), period 2^256 - 1.
/// - `uniformFloat()`: `(next() >> 40) * 2^-24`, exactly representable Floats in [0, 1).
/// - `int(below:)`: unbiased, by rejection of the top partial range.
/// - `normal(mean:standardDeviation:)`: Box-Muller in Double, one value per call (two uniforms consumed).
///
/// Independent streams are derived from a seed plus keys, e.g. `SeededGenerator(seed: s, keys: epoch, index)`,
/// so a sample's randomness depends only on (seed, keys) and never on thread count or visiting order.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Equatable {
  private var s0: UInt64
  private var s1: UInt64
  private var s2: UInt64
  private var s3: UInt64

  /// A generator whose whole state is derived from `seed` with SplitMix64 (never all zero).
  public init(seed: UInt64) {
    var sm = seed
    s0 = SeededGenerator.splitMix64(&sm)
    s1 = SeededGenerator.splitMix64(&sm)
    s2 = SeededGenerator.splitMix64(&sm)
    s3 = SeededGenerator.splitMix64(&sm)
  }

  /// A generator for the stream identified by `seed` and `keys` (e.g. epoch, sample index).
  ///
  /// Formula: `h = mix(seed)`, then for each key `h = mix(h ^ mix(key + golden))`, and `init(seed: h)`, where `mix`
  /// is the SplitMix64 finalizer. Different key lists give statistically independent streams.
  public init(seed: UInt64, keys: UInt64...) {
    self.init(seed: seed, keyList: keys)
  }

  /// Same as `init(seed:keys:)` with the keys given as an array.
  public init(seed: UInt64, keyList: [UInt64]) {
    var h = SeededGenerator.mix(seed)
    for key in keyList {
      // Adding the golden-ratio constant keeps key 0 from being a fixed point of the mixing.
      h = SeededGenerator.mix(h ^ SeededGenerator.mix(key &+ 0x9E37_79B9_7F4A_7C15))
    }
    self.init(seed: h)
  }

  /// The next 64 random bits (xoshiro256**).
  public mutating func next() -> UInt64 {
    let result = rotl(s1 &* 5, 7) &* 9
    let t = s1 << 17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = rotl(s3, 45)
    return result
  }

  /// A uniform Float in [0, 1): the top 24 bits of `next()` times 2^-24.
  public mutating func uniformFloat() -> Float {
    Float(next() >> 40) * 0x1p-24
  }

  /// A uniform Float in [low, high): `low + (high - low) * uniformFloat()`.
  public mutating func uniform(_ low: Float, _ high: Float) -> Float {
    precondition(low <= high, "uniform(\(low), \(high)): low must not exceed high")
    return low + (high - low) * uniformFloat()
  }

  /// A uniform integer in 0..<bound, without modulo bias. Precondition: `bound > 0`.
  public mutating func int(below bound: Int) -> Int {
    precondition(bound > 0, "int(below: \(bound)): bound must be positive")
    let n = UInt64(bound)
    // Reject draws from the final partial block of size 2^64 mod n so every residue is equally likely.
    let threshold = (0 &- n) % n
    while true {
      let r = next()
      if r >= threshold { return Int(r % n) }
    }
  }

  /// A Bernoulli draw: true with probability 1/2 (the top bit of `next()`).
  public mutating func coinFlip() -> Bool {
    next() >> 63 == 1
  }

  /// A normal sample N(mean, standardDeviation^2) by Box-Muller:
  /// `mean + sd * sqrt(-2 ln u1) * cos(2 pi u2)`, with u1 in (0, 1] and u2 in [0, 1), computed in Double.
  public mutating func normal(mean: Float = 0, standardDeviation: Float = 1) -> Float {
    // u1 in (0, 1] so the logarithm is finite.
    let u1 = (Double(next() >> 11) + 1) * 0x1p-53
    let u2 = Double(next() >> 11) * 0x1p-53
    let z = (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    return mean + standardDeviation * Float(z)
  }

  /// `count` uniform Floats in [low, high), drawn in order with `uniform(_:_:)`.
  public mutating func uniformArray(count: Int, low: Float, high: Float) -> [Float] {
    precondition(count >= 0, "uniformArray(count: \(count)): count must not be negative")
    return (0..<count).map { _ in uniform(low, high) }
  }

  /// `count` normal Floats N(mean, sd^2), drawn in order with `normal(mean:standardDeviation:)`.
  public mutating func normalArray(count: Int, mean: Float = 0, standardDeviation: Float) -> [Float] {
    precondition(count >= 0, "normalArray(count: \(count)): count must not be negative")
    return (0..<count).map { _ in normal(mean: mean, standardDeviation: standardDeviation) }
  }

  /// A uniformly random permutation of 0..<count (Fisher-Yates, drawing `int(below: i + 1)` for i from count-1 down).
  public mutating func permutation(count: Int) -> [Int] {
    precondition(count >= 0, "permutation(count: \(count)): count must not be negative")
    var order = Array(0..<count)
    var i = count - 1
    while i > 0 {
      let j = int(below: i + 1)
      order.swapAt(i, j)
      i -= 1
    }
    return order
  }

  private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

  private static func splitMix64(_ state: inout UInt64) -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    return mix(state)
  }

  private static func mix(_ value: UInt64) -> UInt64 {
    var z = value
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
