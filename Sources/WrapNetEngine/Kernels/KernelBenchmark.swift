import CWrapNetKernels

/// Micro-benchmarks of the wrap-around GEMM kernels (for `wrapnet bench`; not run by tests).
public enum KernelBenchmark {
  /// How elapsed time is measured.
  public enum Clock: String, Sendable, CaseIterable {
    /// CPU time of the calling thread: on a shared machine, time spent waiting for a core is not counted, so the
    /// figure is the kernel's own throughput. Falls back to `wall` where the platform lacks a thread CPU clock.
    case threadCPU
    /// Wall-clock time (`ContinuousClock`): what a caller on an idle, dedicated core would see.
    case wall
  }

  /// Throughput of `wrapGEMM` on random codes, in GOPS (10^9 operations per second, 1 MAC = 2 ops, counted on
  /// the real `m * n * k`, not the padded size).
  ///
  /// Weights are uniform random codes of `kind`, activations uniform in `0 ..< 2^activationBits`, both from a
  /// fixed seed. Before timing, the path's output is checked once against the `reference` path; a mismatch
  /// stops the program (a kernel bug, never a timing artefact). Then the GEMM runs repeatedly, single-threaded,
  /// for at least `seconds` (and at least 3 times after one warm-up run), timed by `clock`.
  ///
  /// - Precondition: `m, n, k >= 1`; `bits`, `lanes`, `path` as for `wrapGEMM`; `activationBits` in 1...8.
  public static func measureGOPS(
    m: Int, n: Int, k: Int, weights kind: PackedWeights.CodeKind, activationBits: Int = 8, bits: Int, lanes: Int,
    path: KernelPath, seconds: Double, clock: Clock = .threadCPU
  ) -> Double {
    precondition(m >= 1 && n >= 1 && k >= 1, "measureGOPS: shape W [m: \(m), k: \(k)] x X [n: \(n), k: \(k)] is empty")
    precondition(
      (1...8).contains(activationBits), "measureGOPS: activationBits must be in 1...8, got \(activationBits)")
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
    let useThreadClock = clock == .threadCPU && wrapnet_thread_cpu_seconds() >= 0
    let wallClock = ContinuousClock()
    let wallStart = wallClock.now
    func now() -> Double {
      if useThreadClock { return wrapnet_thread_cpu_seconds() }
      let d = wallStart.duration(to: wallClock.now).components
      return Double(d.seconds) + Double(d.attoseconds) * 1e-18
    }
    var elapsed = 0.0
    var runs = 0
    x.withUnsafeBufferPointer { xb in
      output.withUnsafeMutableBufferPointer { buffer in
        let c = buffer
        let once = {
          wrapGEMM(weights: weights, activations: xb, n: n, bits: bits, lanes: lanes, path: path, output: c)
        }
        once()
        if let bad = expected.indices.first(where: { c[$0] != expected[$0] }) {
          preconditionFailure(
            "measureGOPS: \(path) path with \(lanes)-bit lanes differs from reference at C[\(bad / m), \(bad % m)]: "
              + "\(c[bad]) != \(expected[bad]) (W [\(m), \(k)] \(kind), b = \(bits))")
        }
        let start = now()
        repeat {
          once()
          runs += 1
          elapsed = now() - start
        } while runs < 3 || elapsed < seconds
      }
    }
    return 2 * Double(m) * Double(n) * Double(k) * Double(runs) / elapsed / 1e9
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
