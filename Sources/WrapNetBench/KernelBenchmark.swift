import CWrapNetKernels
import WrapNetEngine

/// Micro-benchmarks of the wrap-around GEMM kernels, each case checked against the reference path before it is
/// timed (`ZooBenchmark` runs them on the zoo models' layer shapes).
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
  /// fixed seed, in rows padded to `paddedK` bytes as the engine's im2col writes them (no copy is timed). Before timing, the path's output is checked once against the `reference` path; a mismatch
  /// stops the program (a kernel bug, never a timing artefact). Then the GEMM runs repeatedly, single-threaded,
  /// for at least `seconds` (and at least 3 times after one warm-up run), timed by `clock`; GOPS from the median
  /// run.
  ///
  /// - Precondition: `m, n, k >= 1`; `bits`, `lanes`, `path` as for `wrapGEMM`; `activationBits` in 1...8.
  public static func measureGOPS(
    m: Int, n: Int, k: Int, weights kind: PackedWeights.CodeKind, activationBits: Int = 8, bits: Int, lanes: Int,
    path: KernelPath, seconds: Double, clock: Clock = .threadCPU
  ) -> Double {
    precondition(m >= 1 && n >= 1 && k >= 1, "measureGOPS: shape W [m: \(m), k: \(k)] x X [n: \(n), k: \(k)] is empty")
    precondition(
      (1...8).contains(activationBits), "measureGOPS: activationBits must be in 1...8, got \(activationBits)")
    var rng = SplitMix64(seed: 0x5EED_0000 &+ UInt64(m * 131 + n * 17 + k))
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
    // The engine hands the kernels rows already padded to `paddedK` (its im2col writes them so), so time that
    // form: a fan-in that is not a multiple of 32 would otherwise add a padding copy to every call.
    let kp = weights.paddedK
    var padded = [UInt8](repeating: 0, count: n * kp)
    for i in 0..<n {
      for t in 0..<k { padded[i * kp + t] = x[i * k + t] }
    }
    return padded.withUnsafeBufferPointer { xb in
      checkedGOPS(
        m: m, n: n, k: k, expected: expected, seconds: seconds, clock: clock,
        mismatch: "measureGOPS: \(path) path with \(lanes)-bit lanes", detail: "W [\(m), \(k)] \(kind), b = \(bits)"
      ) { c in
        wrapGEMM(
          weights: weights, activations: xb, n: n, activationRowStride: kp, bits: bits, lanes: lanes, path: path,
          output: c)
      }
    }
  }

  /// Runs `gemm` once into a C [n, m] buffer and stops the program (naming `mismatch` and `detail`) if it differs
  /// from `expected`, then times it as `repeatFor` does: GOPS = 2·m·n·k / the median run.
  static func checkedGOPS(
    m: Int, n: Int, k: Int, expected: [Int32], seconds: Double, clock: Clock, mismatch: String, detail: String,
    _ gemm: (UnsafeMutableBufferPointer<Int32>) -> Void
  ) -> Double {
    var output = [Int32](repeating: 0, count: n * m)
    let median = output.withUnsafeMutableBufferPointer { c in
      gemm(c)
      if let bad = expected.indices.first(where: { c[$0] != expected[$0] }) {
        preconditionFailure(
          "\(mismatch) differs from reference at C[\(bad / m), \(bad % m)]: \(c[bad]) != \(expected[bad]) (\(detail))")
      }
      return repeatFor(seconds: seconds, clock: clock) { gemm(c) }.median
    }
    return 2 * Double(m) * Double(n) * Double(k) / median / 1e9
  }

  /// Runs `once` at least 3 times and for at least `seconds` of `clock`: (runs, seconds taken, the median
  /// seconds of one run). GOPS come from the median run, as the peer benchmark reports the median of its
  /// repeats: on a shared machine a neighbour's busy spell slows some runs, and the median is not moved by a few.
  public static func repeatFor(
    seconds: Double, clock: Clock, _ once: () throws -> Void
  ) rethrows -> (runs: Int, seconds: Double, median: Double) {
    let timer = SecondsTimer(threadCPU: clock == .threadCPU)
    let start = timer.now()
    var (runs, elapsed, last) = (0, 0.0, start)
    var times: [Double] = []
    repeat {
      try once()
      runs += 1
      let now = timer.now()
      times.append(now - last)
      (elapsed, last) = (now - start, now)
    } while runs < 3 || elapsed < seconds
    return (runs, elapsed, median(times))
  }

  /// The median of `values` (the mean of the middle two for an even count).
  public static func median(_ values: [Double]) -> Double {
    precondition(!values.isEmpty, "median of no values")
    let sorted = values.sorted()
    let mid = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
  }
}

extension KernelBenchmark {
  /// A random binary or ternary case for the lookup kernel timings: weights of `kind` and codes in
  /// `0 ..< 2^activationBits` from a seed fixed by the shape, and the reference path's output.
  static func binaryCase(
    _ name: String, m: Int, n: Int, k: Int, kind: PackedWeights.CodeKind, activationBits: Int, bits: Int
  ) -> (weights: PackedWeights, x: [UInt8], expected: [Int32]) {
    precondition(m >= 1 && n >= 1 && k >= 1, "\(name): shape W [m: \(m), k: \(k)] x X [n: \(n), k: \(k)] is empty")
    var rng = SplitMix64(seed: 0x5EED_0000 &+ UInt64(m * 131 + n * 17 + k))
    let codes: [Int8] = (0..<(m * k)).map { _ in
      kind == .binary ? (rng.next() & 1 == 0 ? -1 : 1) : Int8(Int(rng.next() % 3) - 1)
    }
    let weights = PackedWeights(codes: codes, m: m, k: k, kind: kind)
    let x: [UInt8] = (0..<(n * k)).map { _ in UInt8(truncatingIfNeeded: rng.next() >> UInt64(64 - activationBits)) }
    let expected = wrapGEMM(weights: weights, activations: x, n: n, bits: bits, lanes: 8, path: .reference)
    return (weights, x, expected)
  }
}

extension KernelBenchmark {
  /// Throughput of the lookup kernel (`wrapGEMM(lookupWeights:...)`: binary or ternary weights through 16-entry
  /// tables of 4 codes, 8-bit lanes), the kernel the engine's `avx2` path runs on such wrap-around layers, in GOPS
  /// on the real `m * n * k`. nil where it does not apply (no AVX2, other weights, `bits` > 8).
  ///
  /// Random weights of `kind` and codes in `0 ..< 2^activationBits` from a fixed seed; the rows' tables are built
  /// beforehand (not timed, as the padded rows of `measureGOPS` are not; the engine builds
  /// them once per input pixel, and whole-model timings include them). The output is checked once against the
  /// `reference` path (a mismatch stops the program), then timed as `measureGOPS`.
  public static func measureLookupGOPS(
    m: Int, n: Int, k: Int, weights kind: PackedWeights.CodeKind = .binary, activationBits: Int, bits: Int,
    seconds: Double, clock: Clock = .threadCPU
  ) -> Double? {
    guard KernelPath.isAVX2Available, kind == .binary || kind == .ternary, (1...8).contains(activationBits),
      (1...8).contains(bits)
    else { return nil }
    let (weights, x, expected) = binaryCase(
      "measureLookupGOPS", m: m, n: n, k: k, kind: kind, activationBits: activationBits, bits: bits)
    let lookup = LookupWeights(weights)
    let tables = lookup.tables(x, n: n)
    return tables.withUnsafeBufferPointer { tb in
      checkedGOPS(
        m: m, n: n, k: k, expected: expected, seconds: seconds, clock: clock,
        mismatch: "measureLookupGOPS: lookup kernel",
        detail: "W [\(m), \(k)] \(kind), codes < \(1 << activationBits), b = \(bits)"
      ) { c in
        wrapGEMM(lookupWeights: lookup, tables: tb, n: n, bits: bits, output: c)
      }
    }
  }
}

extension KernelBenchmark {
  /// A register-only loop of one MAC primitive of the AVX2 kernels: the most this core can do with it, since
  /// real kernels add loads, reductions and stores (see `measureCeilingGOPS`).
  public enum CeilingPrimitive: String, Sendable, CaseIterable {
    /// `vpsignb` + `vpaddb`, 8-bit lanes: the |w| <= 1 (binary, ternary) kernel's inner step.
    case signAdd8 = "sign+add8"
    /// `vpmaddubsw` + `vpaddw`, 16-bit lanes.
    case maddubsAdd16 = "maddubs+add16"
    /// `vpmaddwd` + `vpaddd` on int16 operands, 32-bit lanes (the 32-bit-lane kernel's inner step).
    case maddAdd32 = "madd+add32"
    /// `vpshufb` + `vpaddb`: the lookup kernel's inner step (32 table look-ups of 4 products each per shuffle).
    case shuffleAdd8 = "shuffle+add8 lut"

    /// Accumulator lane width of the primitive.
    public var lanes: Int {
      switch self {
      case .signAdd8, .shuffleAdd8: return 8
      case .maddubsAdd16: return 16
      case .maddAdd32: return 32
      }
    }

    var code: Int32 {
      switch self {
      case .signAdd8: return Int32(WRAPNET_CEILING_SIGN_ADD8)
      case .maddubsAdd16: return Int32(WRAPNET_CEILING_MADDUBS_ADD16)
      case .maddAdd32: return Int32(WRAPNET_CEILING_MADD_ADD32)
      case .shuffleAdd8: return Int32(WRAPNET_CEILING_SHUFFLE_ADD8)
      }
    }

    /// MACs per loop iteration: 8 vectors of 32 byte products (16 int16 products for madd; 8 shuffles of 32
    /// look-ups x 4 products for the lookup loop).
    var macsPerIteration: Double {
      switch self {
      case .maddAdd32: return 128
      case .shuffleAdd8: return 1024
      default: return 256
      }
    }
  }

  /// GOPS (1 MAC = 2 ops) of `primitive`'s register-only loop on one thread, timed by the thread's CPU clock
  /// (wall clock where there is none) for at least `seconds`; nil where the CPU has no AVX2.
  public static func measureCeilingGOPS(_ primitive: CeilingPrimitive, seconds: Double) -> Double? {
    #if arch(x86_64)
      guard KernelPath.isAVX2Available else { return nil }
      let timer = SecondsTimer(threadCPU: true)
      func now() -> Double { timer.now() }
      _ = wrapnet_ceiling_loop_avx2(primitive.code, 100_000)  // warm-up (clock ramp)
      var iterations = 1_000_000
      while true {
        let start = now()
        _ = wrapnet_ceiling_loop_avx2(primitive.code, iterations)
        let elapsed = now() - start
        if elapsed >= seconds || iterations >= 1 << 40 {
          return 2 * primitive.macsPerIteration * Double(iterations) / elapsed / 1e9
        }
        // Aim a little past `seconds` with the next try.
        iterations = Int(Double(iterations) * min(64, max(2, 1.2 * seconds / max(elapsed, 1e-6))))
      }
    #else
      return nil
    #endif
  }
}

/// Seconds since creation: the calling thread's CPU time when asked for and available, else wall-clock time.
private struct SecondsTimer {
  let threadCPU: Bool
  let clock = ContinuousClock()
  let origin: ContinuousClock.Instant

  init(threadCPU: Bool) {
    self.threadCPU = threadCPU && wrapnet_thread_cpu_seconds() >= 0
    origin = clock.now
  }

  func now() -> Double {
    if threadCPU { return wrapnet_thread_cpu_seconds() }
    let d = origin.duration(to: clock.now).components
    return Double(d.seconds) + Double(d.attoseconds) * 1e-18
  }
}
