import Testing
import WrapNetEngine

// Every path and lane width against an oracle computed here from the unpacked codes (exact Int64 sum, then the
// textbook wrap_b), over sizes below, at and above each tile edge (4 rows, 2 columns, 32 codes, L1 column
// blocks) and at the extremes of the code ranges.

/// wrap_b(z) = ((z + 2^(b-1)) mod 2^b) - 2^(b-1), with a non-negative mod.
private func textbookWrap(_ z: Int64, bits: Int) -> Int64 {
  let modulus = Int64(1) << bits
  let half = modulus / 2
  var r = (z + half) % modulus
  if r < 0 { r += modulus }
  return r - half
}

/// C[n, m] = wrap_b(Σ_t W[m, t] X[n, t]) from row-major codes.
private func oracle(codes: [Int8], x: [UInt8], m: Int, n: Int, k: Int, bits: Int) -> [Int32] {
  var c = [Int32](repeating: 0, count: n * m)
  for i in 0..<n {
    for r in 0..<m {
      var z: Int64 = 0
      for t in 0..<k { z += Int64(codes[r * k + t]) * Int64(x[i * k + t]) }
      c[i * m + r] = Int32(textbookWrap(z, bits: bits))
    }
  }
  return c
}

private func randomCodes(_ kind: PackedWeights.CodeKind, count: Int, rng: inout SplitMix64) -> [Int8] {
  let magnitude = UInt64(kind.maxMagnitude)
  return (0..<count).map { _ in
    if case .binary = kind { return rng.next() & 1 == 0 ? -1 : 1 }
    return Int8(Int64(rng.next() % (2 * magnitude + 1)) - Int64(magnitude))
  }
}

/// (path, lanes, vnni) that can run here: the avx2 path also with its AVX-512 VNNI kernel where the CPU has it.
private let pathsAndLanes: [(KernelPath, Int, Bool)] = KernelPath.allCases.filter(\.isAvailable).flatMap { path in
  [8, 16, 32].flatMap { lanes in
    (path == .avx2 && KernelPath.isVNNIAvailable ? [false, true] : [false]).map { (path, lanes, $0) }
  }
}

/// Accumulator widths under test for a lane width: b in {4, 6, 8, 12, 16} where lanes allow, plus 1, 2 and 32.
private func bitsUnderTest(lanes: Int) -> [Int] {
  [1, 2, 4, 6, 8, 12, 16, 32].filter { $0 <= lanes }
}

/// Runs every path and lane width on one problem and records the first mismatch of each, with its indices.
private func checkAllPaths(
  codes: [Int8], x: [UInt8], m: Int, n: Int, k: Int, kind: PackedWeights.CodeKind, bitsChoice: (Int) -> [Int],
  label: String
) {
  let weights = PackedWeights(codes: codes, m: m, k: k, kind: kind)
  var expectedByBits: [Int: [Int32]] = [:]
  for (path, lanes, vnni) in pathsAndLanes {
    for bits in bitsChoice(lanes) {
      let expected =
        expectedByBits[bits]
        ?? {
          let e = oracle(codes: codes, x: x, m: m, n: n, k: k, bits: bits)
          expectedByBits[bits] = e
          return e
        }()
      let got = wrapGEMM(weights: weights, activations: x, n: n, bits: bits, lanes: lanes, path: path, vnni: vnni)
      if let bad = expected.indices.first(where: { got[$0] != expected[$0] }) {
        let message =
          "\(label): \(path)\(vnni ? " (vnni)" : "") \(lanes)-bit lanes b=\(bits) \(kind) W[m: \(m), k: \(k)] X[n: \(n), k: \(k)]: first "
          + "mismatch at C[n: \(bad / m), m: \(bad % m)]: got \(got[bad]), expected \(expected[bad])"
        Issue.record(Comment(rawValue: message))
      }
    }
  }
}

private let edgeSizes = [1, 2, 3, 5, 7, 15, 16, 17, 31, 33, 63, 65, 127, 129, 255, 1023]
private let kinds: [PackedWeights.CodeKind] = [.binary, .ternary, .symmetric(bits: 4), .symmetric(bits: 8)]

@Suite("Kernel paths agree with the oracle")
struct KernelPathTests {
  @Test("sweep M with small N, K", arguments: kinds)
  func sweepM(kind: PackedWeights.CodeKind) {
    var rng = SplitMix64(seed: 1)
    for (index, m) in edgeSizes.enumerated() {
      let (n, k) = (3, 33)
      let codes = randomCodes(kind, count: m * k, rng: &rng)
      let x = (0..<(n * k)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
      let bits = { (lanes: Int) in [bitsUnderTest(lanes: lanes)[index % bitsUnderTest(lanes: lanes).count]] }
      checkAllPaths(codes: codes, x: x, m: m, n: n, k: k, kind: kind, bitsChoice: bits, label: "sweep M")
    }
  }

  @Test("sweep N with small M, K", arguments: kinds)
  func sweepN(kind: PackedWeights.CodeKind) {
    var rng = SplitMix64(seed: 2)
    for (index, n) in edgeSizes.enumerated() {
      let (m, k) = (5, 33)
      let codes = randomCodes(kind, count: m * k, rng: &rng)
      let x = (0..<(n * k)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
      let bits = { (lanes: Int) in [bitsUnderTest(lanes: lanes)[index % bitsUnderTest(lanes: lanes).count]] }
      checkAllPaths(codes: codes, x: x, m: m, n: n, k: k, kind: kind, bitsChoice: bits, label: "sweep N")
    }
  }

  @Test("sweep K with small M, N", arguments: kinds)
  func sweepK(kind: PackedWeights.CodeKind) {
    var rng = SplitMix64(seed: 3)
    for (index, k) in edgeSizes.enumerated() {
      let (m, n) = (5, 3)
      let codes = randomCodes(kind, count: m * k, rng: &rng)
      let x = (0..<(n * k)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
      let bits = { (lanes: Int) in [bitsUnderTest(lanes: lanes)[index % bitsUnderTest(lanes: lanes).count]] }
      checkAllPaths(codes: codes, x: x, m: m, n: n, k: k, kind: kind, bitsChoice: bits, label: "sweep K")
    }
  }

  @Test(
    "big combinations",
    arguments: [(129, 65, 63), (1023, 5, 33), (17, 1023, 33), (65, 33, 129)] as [(Int, Int, Int)])
  func bigCombinations(m: Int, n: Int, k: Int) {
    var rng = SplitMix64(seed: UInt64(m * 7 + n * 3 + k))
    for kind in [PackedWeights.CodeKind.ternary, .symmetric(bits: 8)] {
      let codes = randomCodes(kind, count: m * k, rng: &rng)
      // 2-bit activations, as in WrapNet's low-bit layers.
      let x = (0..<(n * k)).map { _ in UInt8(truncatingIfNeeded: rng.next() & 3) }
      checkAllPaths(
        codes: codes, x: x, m: m, n: n, k: k, kind: kind, bitsChoice: { [$0 == 32 ? 16 : $0] }, label: "big")
    }
  }

  /// All activation codes at the maximum and all weights at one extreme: every dot product overflows many times,
  /// and symmetric 8-bit x 255 would saturate a careless maddubs.
  @Test(
    "extremes",
    arguments: [
      (PackedWeights.CodeKind.binary, Int8(1)), (.binary, -1), (.ternary, 1), (.ternary, -1),
      (.symmetric(bits: 4), 7), (.symmetric(bits: 4), -7), (.symmetric(bits: 7), 63), (.symmetric(bits: 7), -63),
      (.symmetric(bits: 8), 127), (.symmetric(bits: 8), -127),
    ] as [(PackedWeights.CodeKind, Int8)])
  func extremes(kind: PackedWeights.CodeKind, code: Int8) {
    for xMax: UInt8 in [255, 127, 3] {
      for (m, n, k) in [(5, 3, 1023), (4, 2, 64), (7, 5, 129)] {
        let codes = [Int8](repeating: code, count: m * k)
        let x = [UInt8](repeating: xMax, count: n * k)
        checkAllPaths(
          codes: codes, x: x, m: m, n: n, k: k, kind: kind, bitsChoice: bitsUnderTest, label: "extreme x=\(xMax)")
      }
    }
  }

  /// Alternating extreme weights and random extreme activations: the sign pattern reaches every lane.
  @Test("mixed extremes", arguments: kinds)
  func mixedExtremes(kind: PackedWeights.CodeKind) {
    var rng = SplitMix64(seed: 4)
    let (m, n, k) = (9, 5, 300)
    let top = Int8(kind.maxMagnitude)
    let codes = (0..<(m * k)).map { _ in rng.next() & 1 == 0 ? top : -top }
    let x = (0..<(n * k)).map { _ in rng.next() & 1 == 0 ? UInt8(255) : UInt8(128) }
    checkAllPaths(codes: codes, x: x, m: m, n: n, k: k, kind: kind, bitsChoice: bitsUnderTest, label: "mixed extremes")
  }

  /// Pre-padded rows at a wider stride, with garbage after column k: every path ignores it.
  @Test("padded activation rows are used in place", arguments: [PackedWeights.CodeKind.ternary, .symmetric(bits: 8)])
  func paddedRows(kind: PackedWeights.CodeKind) {
    var rng = SplitMix64(seed: 5)
    let (m, n, k) = (9, 7, 45)
    let codes = randomCodes(kind, count: m * k, rng: &rng)
    let x = (0..<(n * k)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    let weights = PackedWeights(codes: codes, m: m, k: k, kind: kind)
    let stride = weights.paddedK + 32
    var padded = (0..<(n * stride)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    for i in 0..<n {
      for t in 0..<k { padded[i * stride + t] = x[i * k + t] }
    }
    for (path, lanes, vnni) in pathsAndLanes {
      let expected = oracle(codes: codes, x: x, m: m, n: n, k: k, bits: lanes == 8 ? 8 : 12)
      var got = [Int32](repeating: 0, count: n * m)
      padded.withUnsafeBufferPointer { a in
        got.withUnsafeMutableBufferPointer { c in
          wrapGEMM(
            weights: weights, activations: a, n: n, activationRowStride: stride, bits: lanes == 8 ? 8 : 12,
            lanes: lanes, path: path, vnni: vnni, output: c)
        }
      }
      #expect(got == expected, "\(path)\(vnni ? " (vnni)" : "") \(lanes)-bit lanes, \(kind)")
    }
  }

  @Test("empty fan-in gives zeros")
  func emptyK() {
    let weights = PackedWeights(codes: [], m: 3, k: 0, kind: .ternary)
    for (path, lanes, vnni) in pathsAndLanes {
      #expect(
        wrapGEMM(weights: weights, activations: [], n: 2, bits: 8, lanes: lanes, path: path, vnni: vnni)
          == [0, 0, 0, 0, 0, 0])
    }
  }
}
