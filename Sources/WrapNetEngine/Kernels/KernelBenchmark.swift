/// Micro-benchmarks of the wrap-around GEMM kernels (for `wrapnet bench`; not run by tests).
public enum KernelBenchmark {
  /// Throughput of `wrapGEMM` on random codes, in GOPS (10^9 operations per second, 1 MAC = 2 ops, counted on
  /// the real `m * n * k`, not the padded size).
  ///
  /// Weights are uniform random codes of `kind`, activations uniform in `0 ..< 2^activationBits`, both from a
  /// fixed seed. Before timing, the path's output is checked once against the `reference` path; a mismatch
  /// stops the program (a kernel bug, never a timing artefact). Then the GEMM runs repeatedly, single-threaded,
  /// for at least `seconds` (and at least 3 times after one warm-up run).
  ///
  /// - Precondition: `m, n, k >= 1`; `bits`, `lanes`, `path` as for `wrapGEMM`; `activationBits` in 1...8.
  public static func measureGOPS(
    m: Int, n: Int, k: Int, weights kind: PackedWeights.CodeKind, activationBits: Int = 8, bits: Int, lanes: Int,
    path: KernelPath, seconds: Double
  ) -> Double {
    precondition(m >= 1 && n >= 1 && k >= 1, "measureGOPS: shape W [m: \(m), k: \(k)] x X [n: \(n), k: \(k)] is empty")
    precondition((1...8).contains(activationBits), "measureGOPS: activationBits must be in 1...8, got \(activationBits)")
    var rng = BenchmarkRandom(seed: 0x5EED_0000 &+ UInt64(m * 131 + n * 17 + k))
    let magnitude = kind.maxMagnitude
    let codes: [Int8] = (0..<(m * k)).map { _ in
      switch kind {
      case .binary: return rng.next() & 1 == 0 ? -1 : 1
      default: return Int8(Int(rng.next() % UInt64(2 * magnitude + 1)) - magnitude)
      }
    }
    let weights = PackedWeights(codes: codes, m: m, k: k, kind: kind)
    let x: [UInt8] = (0..<(n * k)).map { _ in UInt8(truncatingIfNeeded: rng.next() >> UInt64(64 - activationBits)) }

    let expected = wrapGEMM(weights: weights, activations: x, n: n, bits: bits, lanes: lanes, path: .reference)
    var output = [Int32](repeating: 0, count: n * m)
    let clock = ContinuousClock()
    var elapsed = Duration.zero
    var runs = 0
    x.withUnsafeBufferPointer { xb in
      output.withUnsafeMutableBufferPointer { buffer in
        let c = buffer
        let once = { wrapGEMM(weights: weights, activations: xb, n: n, bits: bits, lanes: lanes, path: path, output: c) }
        once()
        if let bad = expected.indices.first(where: { c[$0] != expected[$0] }) {
          preconditionFailure(
            "measureGOPS: \(path) path with \(lanes)-bit lanes differs from reference at C[\(bad / m), \(bad % m)]: "
              + "\(c[bad]) != \(expected[bad]) (W [\(m), \(k)] \(kind), b = \(bits))")
        }
        let start = clock.now
        repeat {
          once()
          runs += 1
          elapsed = start.duration(to: clock.now)
        } while runs < 3 || elapsed < .milliseconds(Int64(seconds * 1000))
      }
    }
    let secondsTaken = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    return 2 * Double(m) * Double(n) * Double(k) * Double(runs) / secondsTaken / 1e9
  }
}

/// SplitMix64: a tiny seeded generator so that benchmark inputs are the same on every run.
private struct BenchmarkRandom: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
