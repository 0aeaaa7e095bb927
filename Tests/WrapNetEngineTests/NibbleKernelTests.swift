import CWrapNetKernels
import Testing
import WrapNetEngine

// The nibble kernel (binary or ternary weights x codes <= 1, 3 or 7 packed two per byte, 8-bit lanes) against the
// reference path on the same codes, over sizes below, at and above its tile edges (8 channels, 5 rows, 16 codes
// per group, nibble split every 15 / maxCode groups, L1 row blocks), with sums that overflow many times.

/// Runs the nibble kernel on row-major codes and compares with the reference path; records the first mismatch.
private func checkNibble(
  codes: [Int8], x: [UInt8], m: Int, n: Int, k: Int, maxCode: Int, bits: Int, label: String,
  kind: PackedWeights.CodeKind = .binary
) {
  let packed = PackedWeights(codes: codes, m: m, k: k, kind: kind)
  let expected = wrapGEMM(weights: packed, activations: x, n: n, bits: bits, lanes: 8, path: .reference)
  let nibble = NibbleWeights(packed, maxCode: maxCode)
  let rows = nibble.packActivations(x, n: n)
  var got = [Int32](repeating: 0, count: n * m)
  rows.withUnsafeBufferPointer { a in
    got.withUnsafeMutableBufferPointer { c in
      wrapGEMM(nibbleWeights: nibble, activations: a, n: n, activationRowStride: nibble.rowBytes, bits: bits, output: c)
    }
  }
  recordFirstMismatch(
    got, expected, m: m, "\(label): nibble kernel \(kind) maxCode \(maxCode) b=\(bits) W[m: \(m), k: \(k)] X[n: \(n)]")
}

/// Records the first element where `got` differs from `expected` (C [n, m]), prefixed by `what`.
func recordFirstMismatch(_ got: [Int32], _ expected: [Int32], m: Int, _ what: String) {
  if let bad = expected.indices.first(where: { got[$0] != expected[$0] }) {
    Issue.record(
      Comment(
        rawValue:
          "\(what): first mismatch at C[n: \(bad / m), m: \(bad % m)]: got \(got[bad]), expected \(expected[bad])"))
  }
}

private let nibbleEdges = [1, 2, 3, 5, 7, 15, 16, 17, 31, 33, 63, 65, 127, 129, 255, 1023]

@Suite("Nibble kernel agrees with the reference", .enabled(if: KernelPath.isAVX2Available))
struct NibbleKernelTests {
  @Test("sweep M, N and K at every tile edge", arguments: [1, 3, 7])
  func sweeps(maxCode: Int) {
    var rng = SplitMix64(seed: UInt64(maxCode))
    for (index, size) in nibbleEdges.enumerated() {
      let bits = [1, 2, 3, 4, 5, 6, 7, 8][index % 8]
      for (m, n, k) in [(size, 6, 37), (9, size, 37), (9, 6, size)] {
        let codes = (0..<(m * k)).map { _ in rng.next() & 1 == 0 ? Int8(-1) : 1 }
        let x = (0..<(n * k)).map { _ in UInt8(rng.next() % UInt64(maxCode + 1)) }
        checkNibble(codes: codes, x: x, m: m, n: n, k: k, maxCode: maxCode, bits: bits, label: "sweep \(m)x\(n)x\(k)")
      }
    }
  }

  /// The real layer shapes of the zoo's convolutional models, 2-bit codes.
  @Test("zoo shapes", arguments: [(16, 1024, 144), (32, 256, 288), (64, 64, 576), (64, 49, 576), (10, 129, 1023)])
  func zooShapes(m: Int, n: Int, k: Int) {
    var rng = SplitMix64(seed: UInt64(m * 7 + n * 3 + k))
    let codes = (0..<(m * k)).map { _ in rng.next() & 1 == 0 ? Int8(-1) : 1 }
    let x = (0..<(n * k)).map { _ in UInt8(rng.next() & 3) }
    for bits in [4, 8] {
      checkNibble(codes: codes, x: x, m: m, n: n, k: k, maxCode: 3, bits: bits, label: "zoo")
    }
  }

  /// Every code at the maximum and every weight at one sign: each nibble field reaches 15 before its split and
  /// the sums wrap many times; also all codes 0 (only the correction remains).
  @Test("extremes", arguments: [Int8(1), -1])
  func extremes(code: Int8) {
    for maxCode in [1, 3, 7] {
      for xValue in [UInt8(maxCode), 0] {
        for (m, n, k) in [(8, 5, 1023), (17, 11, 160), (3, 1, 31)] {
          let codes = [Int8](repeating: code, count: m * k)
          let x = [UInt8](repeating: xValue, count: n * k)
          for bits in [1, 5, 8] {
            checkNibble(
              codes: codes, x: x, m: m, n: n, k: k, maxCode: maxCode, bits: bits, label: "extreme x=\(xValue)")
          }
        }
      }
    }
  }

  /// Ternary weights (keep and XOR masks): the same sweeps, zero weights included, and all-zero rows.
  @Test("ternary: sweeps and extremes", arguments: [1, 3, 7])
  func ternary(maxCode: Int) {
    var rng = SplitMix64(seed: UInt64(100 + maxCode))
    for (index, size) in nibbleEdges.enumerated() {
      let bits = [1, 2, 3, 4, 5, 6, 7, 8][index % 8]
      for (m, n, k) in [(size, 6, 37), (9, size, 37), (9, 6, size)] {
        let codes = (0..<(m * k)).map { _ in Int8(Int(rng.next() % 3) - 1) }
        let x = (0..<(n * k)).map { _ in UInt8(rng.next() % UInt64(maxCode + 1)) }
        checkNibble(
          codes: codes, x: x, m: m, n: n, k: k, maxCode: maxCode, bits: bits, label: "ternary \(m)x\(n)x\(k)",
          kind: .ternary)
      }
    }
    for code in [Int8(-1), 0, 1] {
      let (m, n, k) = (17, 11, 160)
      checkNibble(
        codes: [Int8](repeating: code, count: m * k), x: [UInt8](repeating: UInt8(maxCode), count: n * k), m: m,
        n: n, k: k, maxCode: maxCode, bits: 8, label: "ternary extreme \(code)", kind: .ternary)
    }
  }

  /// Rows at a wider stride than `rowBytes`, with garbage after each packed row: the kernel never reads it.
  @Test("rows at a wider stride")
  func widerStride() {
    var rng = SplitMix64(seed: 9)
    let (m, n, k) = (12, 13, 45)
    let codes = (0..<(m * k)).map { _ in rng.next() & 1 == 0 ? Int8(-1) : 1 }
    let x = (0..<(n * k)).map { _ in UInt8(rng.next() & 3) }
    let packed = PackedWeights(codes: codes, m: m, k: k, kind: .binary)
    let expected = wrapGEMM(weights: packed, activations: x, n: n, bits: 8, lanes: 8, path: .reference)
    let nibble = NibbleWeights(packed, maxCode: 3)
    let tight = nibble.packActivations(x, n: n)
    let stride = nibble.rowBytes + 24
    var rows = (0..<(n * stride)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    for i in 0..<n {
      for j in 0..<nibble.rowBytes { rows[i * stride + j] = tight[i * nibble.rowBytes + j] }
    }
    var got = [Int32](repeating: 0, count: n * m)
    rows.withUnsafeBufferPointer { a in
      got.withUnsafeMutableBufferPointer { c in
        wrapGEMM(nibbleWeights: nibble, activations: a, n: n, activationRowStride: stride, bits: 8, output: c)
      }
    }
    #expect(got == expected)
  }

  /// The vector packer against the byte-by-byte definition, odd counts included.
  @Test("packing codes two per byte")
  func packing() {
    var rng = SplitMix64(seed: 10)
    for count in [0, 1, 2, 3, 63, 64, 65, 127, 128, 129, 1000, 1001] {
      let codes = (0..<count).map { _ in UInt8(rng.next() & 15) }
      var out = [UInt8](repeating: 0xAA, count: (count + 1) / 2 + 1)
      codes.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
          NibbleWeights.packCodes(
            src.baseAddress ?? UnsafePointer(dst.baseAddress!), count: count, into: dst.baseAddress!)
        }
      }
      let expected = (0..<((count + 1) / 2)).map { j in codes[2 * j] | (2 * j + 1 < count ? codes[2 * j + 1] << 4 : 0) }
      #expect(Array(out.prefix((count + 1) / 2)) == expected, "count \(count)")
      #expect(out.last == 0xAA, "count \(count): wrote past (count + 1) / 2 bytes")
    }
  }

  @Test("supported code bounds")
  func codeBounds() {
    #expect(NibbleWeights.maxCode(covering: 0) == 1)
    #expect(NibbleWeights.maxCode(covering: 2) == 3)
    #expect(NibbleWeights.maxCode(covering: 7) == 7)
    #expect(NibbleWeights.maxCode(covering: 8) == nil)
  }
}

#if arch(x86_64)
  // The fused epilogue (the engine's table outputs): codes written straight from the wrapped sums through a
  // plain [m, 2^b] table or a residual [m, S, 2^b] table indexed by a shortcut code, against the same look-ups
  // done here on the reference sums; odd channel counts (the last panel's tail), shortcuts that reach only some
  // channels (pad_before > 0), and the sums written alongside. The C kernel (and its epilogue type) exist only on
  // x86_64.
  @Suite("Nibble kernel epilogue agrees with the reference", .enabled(if: KernelPath.isAVX2Available))
  struct NibbleEpilogueTests {
    @Test(
      "plain and residual tables",
      arguments: [(1, 7, 37, 0), (3, 11, 144, 0), (8, 5, 33, 0), (13, 9, 160, 0), (13, 9, 160, 2), (24, 6, 288, 4)]
        as [(Int, Int, Int, Int)])
    func tables(m: Int, n: Int, k: Int, padBefore: Int) throws {
      var rng = SplitMix64(seed: UInt64(m * 1000 + k + padBefore))
      let bits = k % 2 == 0 ? 8 : 5
      let size = 1 << bits
      let levels = [1, 3, 7][m % 3]
      let codes = (0..<(m * k)).map { _ in rng.next() & 1 == 0 ? Int8(-1) : 1 }
      let x = (0..<(n * k)).map { _ in UInt8(rng.next() & 3) }
      let packed = PackedWeights(codes: codes, m: m, k: k, kind: .binary)
      let sums = wrapGEMM(weights: packed, activations: x, n: n, bits: bits, lanes: 8, path: .reference)
      let nibble = NibbleWeights(packed, maxCode: 3)
      let rows = nibble.packActivations(x, n: n)
      let rowOffsets = (0..<n).map { $0 * nibble.rowBytes }
      let groupOffsets = (0..<nibble.groups).map { UInt32(8 * $0) }
      for (residual, arcs) in [(false, false), (true, false), (false, true), (true, true)] {
        // S shortcut codes; the saved input has `reached` channels per pixel, one pixel per row.
        let s = residual ? [4, 2, 3][m % 3] : 1
        let reached = residual ? max(1, m - 2 * padBefore) : 0
        // Random codes for the look-ups; for the arcs, tables of the trainer's form (see `arcTable`).
        let table =
          arcs
          ? arcTable(count: m * s, size: size, levels: levels, rng: &rng)
          : (0..<(m * s * size)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let arcBytes: [Int8]
        if arcs {
          let built = try #require(
            NibbleCodeArcs(
              table: table, channels: m, shortcutCodes: s, bits: bits, levels: levels, correction: nibble.correction),
            "a table of nested arcs must convert")
          arcBytes = built.bytes
        } else {
          arcBytes = []
        }
        let saved = (0..<(n * max(reached, 1))).map { _ in UInt8(rng.next() % UInt64(s)) }
        let savedRows = (0..<n).map { $0 * max(reached, 1) }
        var expected = [UInt8](repeating: 0, count: n * m)
        for i in 0..<n {
          for ch in 0..<m {
            let j = ch - padBefore
            let code = residual && j >= 0 && j < reached ? Int(saved[savedRows[i] + j]) : 0
            expected[i * m + ch] = table[(ch * s + code) * size + Int(sums[i * m + ch]) + size / 2]
          }
        }
        var got = [UInt8](repeating: 0xEE, count: n * m)
        var gotSums = [Int32](repeating: 0, count: n * m)
        nibble.masks.withUnsafeBufferPointer { w in
          nibble.correction.withUnsafeBufferPointer { corr in
            rows.withUnsafeBufferPointer { xb in
              table.withUnsafeBufferPointer { t in
                saved.withUnsafeBufferPointer { sv in
                  savedRows.withUnsafeBufferPointer { sr in
                    got.withUnsafeMutableBufferPointer { out in
                      arcBytes.withUnsafeBufferPointer { a in
                        var epilogue = wrapnet_nibble_epilogue(
                          table: t.baseAddress, shortcut_codes: s, shortcut: residual ? sv.baseAddress : nil,
                          shortcut_rows: residual ? sr.baseAddress : nil, shortcut_channels: reached,
                          pad_before: padBefore, codes: out.baseAddress, ldo: m, arcs: arcs ? a.baseAddress : nil,
                          levels: Int32(levels))
                        wrapnet_gemm_binary_nibble_acc8_avx2(
                          w.baseAddress, m, nibble.groups, corr.baseAddress, Int32(nibble.maxCode), xb.baseAddress,
                          rowOffsets, groupOffsets, n, &gotSums, m, Int32(bits), &epilogue)
                      }
                    }
                  }
                }
              }
            }
          }
        }
        #expect(got == expected, "m \(m) n \(n) k \(k) padBefore \(padBefore) residual \(residual) arcs \(arcs)")
        #expect(gotSums == sums, "sums beside the codes (arcs \(arcs))")
      }
    }

    /// Without the sums (codes only), over every n from 1 to 47: the arc epilogue buffers 20 rows and works on 4
    /// at a time, so this covers each partial group and flush.
    @Test func arcRowTails() throws {
      var rng = SplitMix64(seed: 77)
      let (m, k, bits, levels) = (11, 48, 8, 3)
      let codes = (0..<(m * k)).map { _ in rng.next() & 1 == 0 ? Int8(-1) : 1 }
      let packed = PackedWeights(codes: codes, m: m, k: k, kind: .binary)
      let nibble = NibbleWeights(packed, maxCode: 3)
      let table = arcTable(count: m, size: 1 << bits, levels: levels, rng: &rng)
      let arcs = try #require(
        NibbleCodeArcs(table: table, channels: m, shortcutCodes: 1, bits: bits, levels: levels, correction: nibble.correction))
      for n in 1...47 {
        let x = (0..<(n * k)).map { _ in UInt8(rng.next() & 3) }
        let sums = wrapGEMM(weights: packed, activations: x, n: n, bits: bits, lanes: 8, path: .reference)
        let expected = (0..<(n * m)).map { table[($0 % m) << bits + Int(sums[$0]) + 128] }
        let rows = nibble.packActivations(x, n: n)
        let rowOffsets = (0..<n).map { $0 * nibble.rowBytes }
        let groupOffsets = (0..<nibble.groups).map { UInt32(8 * $0) }
        var got = [UInt8](repeating: 0xEE, count: n * m)
        nibble.masks.withUnsafeBufferPointer { w in
          nibble.correction.withUnsafeBufferPointer { corr in
            arcs.bytes.withUnsafeBufferPointer { a in
              got.withUnsafeMutableBufferPointer { out in
                // The table pointer is not read when arcs are given.
                var epilogue = wrapnet_nibble_epilogue(
                  table: nil, shortcut_codes: 1, shortcut: nil, shortcut_rows: nil, shortcut_channels: 0,
                  pad_before: 0, codes: out.baseAddress, ldo: m, arcs: a.baseAddress, levels: Int32(levels))
                wrapnet_gemm_binary_nibble_acc8_avx2(
                  w.baseAddress, m, nibble.groups, corr.baseAddress, Int32(nibble.maxCode), rows, rowOffsets,
                  groupOffsets, n, nil, m, Int32(bits), &epilogue)
              }
            }
          }
        }
        #expect(got == expected, "n \(n)")
      }
    }
  }

  /// `count` tables of `size` codes 0...levels of the trainer's form: around a random centre on the circle the
  /// code falls with the circular distance (a triangle wave, as the cyclic activation), from a random top, so
  /// each level's codes form one arc; some levels reach every value, some none. Also used by the lookup tests.
  func arcTable(count: Int, size: Int, levels: Int, rng: inout SplitMix64) -> [UInt8] {
    var table = [UInt8]()
    for _ in 0..<count {
      let centre = Int(rng.next() % UInt64(size))
      let top = Int(rng.next() % UInt64(2 * levels + 2)) - levels / 2
      let step = 1 + Int(rng.next() % UInt64(max(1, size / 8)))
      let descending = rng.next() & 1 == 0
      for u in 0..<size {
        let d = min(abs(u - centre), size - abs(u - centre))
        let code = descending ? top - d / step : top - (size / 2 - d) / step
        table.append(UInt8(min(max(code, 0), levels)))
      }
    }
    return table
  }

  @Suite("Nibble code arcs")
  struct NibbleCodeArcsTests {
    /// A table whose codes go up and down twice around the circle has no single arc per level: no arcs.
    @Test func rejectsTwoPeaks() {
      let table = (0..<32).map { UInt8(($0 / 4) % 2) }
      #expect(NibbleCodeArcs(table: table, channels: 1, shortcutCodes: 1, bits: 5, levels: 1, correction: [0]) == nil)
      #expect(NibbleCodeArcs(table: [UInt8](repeating: 4, count: 32), channels: 1, shortcutCodes: 1, bits: 5, levels: 3, correction: [0]) == nil)
    }

    /// Constant tables (every level full or empty) and a single step convert.
    @Test func acceptsConstantsAndSteps() {
      for value in 0...3 {
        #expect(NibbleCodeArcs(table: [UInt8](repeating: UInt8(value), count: 16), channels: 1, shortcutCodes: 1, bits: 4, levels: 3, correction: [5]) != nil)
      }
      let step = (0..<256).map { UInt8($0 < 100 ? 0 : ($0 < 200 ? 2 : 3)) }
      #expect(NibbleCodeArcs(table: step, channels: 1, shortcutCodes: 1, bits: 8, levels: 3, correction: [77]) != nil)
    }
  }
#endif
