import CWrapNetKernels
import Testing
import WrapNetEngine

// The lookup kernel (binary or ternary weights through 16-entry tables of 4 codes, 8-bit lanes) against the
// reference path on the same codes, over sizes below, at and above its tile edges (16-channel blocks, 1, 2 or 4
// per tile; 8, 4 or 2 rows per tile and single-row tails; pairs of 4-code groups; L1 row blocks), with codes of
// every width up to 8 bits and sums that overflow many times.

/// Runs the lookup kernel on row-major codes and compares with the reference path; records the first mismatch.
private func checkLookup(
  codes: [Int8], x: [UInt8], m: Int, n: Int, k: Int, bits: Int, label: String,
  kind: PackedWeights.CodeKind = .binary
) {
  let packed = PackedWeights(codes: codes, m: m, k: k, kind: kind)
  let expected = wrapGEMM(weights: packed, activations: x, n: n, bits: bits, lanes: 8, path: .reference)
  let lookup = LookupWeights(packed)
  let tables = lookup.tables(x, n: n)
  var got = [Int32](repeating: 0, count: n * m)
  tables.withUnsafeBufferPointer { t in
    got.withUnsafeMutableBufferPointer { c in
      wrapGEMM(lookupWeights: lookup, tables: t, n: n, bits: bits, output: c)
    }
  }
  recordFirstMismatch(got, expected, m: m, "\(label): lookup kernel \(kind) b=\(bits) W[m: \(m), k: \(k)] X[n: \(n)]")
}

private let lookupEdges = [1, 2, 3, 5, 7, 15, 16, 17, 31, 33, 63, 65, 127, 129, 255, 1023]

@Suite("Lookup kernel agrees with the reference", .enabled(if: KernelPath.isAVX2Available))
struct LookupKernelTests {
  @Test("sweep M, N and K at every tile edge", arguments: [PackedWeights.CodeKind.binary, .ternary])
  func sweeps(kind: PackedWeights.CodeKind) {
    var rng = SplitMix64(seed: kind == .binary ? 1 : 2)
    for (index, size) in lookupEdges.enumerated() {
      let bits = [1, 2, 3, 4, 5, 6, 7, 8][index % 8]
      // Activation codes of 1, 2, 3 and 8 bits: the tables work for any code.
      let codeBits = [2, 1, 3, 8][index % 4]
      for (m, n, k) in [(size, 6, 37), (9, size, 37), (9, 6, size), (size, 9, 16), (64, size, 24)] {
        let codes = (0..<(m * k)).map { _ in
          kind == .binary ? (rng.next() & 1 == 0 ? Int8(-1) : 1) : Int8(Int(rng.next() % 3) - 1)
        }
        let x = (0..<(n * k)).map { _ in UInt8(truncatingIfNeeded: rng.next() >> UInt64(64 - codeBits)) }
        checkLookup(codes: codes, x: x, m: m, n: n, k: k, bits: bits, label: "sweep \(m)x\(n)x\(k)", kind: kind)
      }
    }
  }

  /// The real layer shapes of the zoo's convolutional models, 2-bit codes; 32- and 64-channel layers take the
  /// 2- and 4-block tiles.
  @Test("zoo shapes", arguments: [(16, 1024, 144), (32, 256, 288), (64, 64, 576), (64, 49, 576), (10, 129, 1023)])
  func zooShapes(m: Int, n: Int, k: Int) {
    var rng = SplitMix64(seed: UInt64(m * 7 + n * 3 + k))
    for kind in [PackedWeights.CodeKind.binary, .ternary] {
      let codes = (0..<(m * k)).map { _ in
        kind == .binary ? (rng.next() & 1 == 0 ? Int8(-1) : 1) : Int8(Int(rng.next() % 3) - 1)
      }
      let x = (0..<(n * k)).map { _ in UInt8(rng.next() & 3) }
      for bits in [4, 8] {
        checkLookup(codes: codes, x: x, m: m, n: n, k: k, bits: bits, label: "zoo", kind: kind)
      }
    }
  }

  /// Every code at 255 (or 0) and every weight at one sign: table entries of ±1020 wrap, and the sums wrap many
  /// times.
  @Test("extremes", arguments: [Int8(1), 0, -1])
  func extremes(code: Int8) {
    for kind in [PackedWeights.CodeKind.binary, .ternary] where code != 0 || kind == .ternary {
      for xValue in [UInt8(255), 3, 0] {
        for (m, n, k) in [(16, 8, 1023), (17, 11, 160), (3, 1, 31), (64, 9, 72)] {
          let codes = [Int8](repeating: code, count: m * k)
          let x = [UInt8](repeating: xValue, count: n * k)
          for bits in [1, 5, 8] {
            checkLookup(
              codes: codes, x: x, m: m, n: n, k: k, bits: bits, label: "extreme w=\(code) x=\(xValue)", kind: kind)
          }
        }
      }
    }
  }

  /// The table builder against its definition, odd counts included (missing codes count as 0), both forms.
  @Test("tables of 4 codes", arguments: [false, true])
  func tables(subset: Bool) {
    var rng = SplitMix64(seed: subset ? 11 : 12)
    for count in [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 32, 33, 63, 64, 65, 1001] {
      let codes = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
      let bytes = 32 * ((count + 7) / 8)
      var out = [UInt8](repeating: 0xAA, count: bytes + 1)
      codes.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBufferPointer { dst in
          LookupWeights.buildTables(
            src.baseAddress ?? UnsafePointer(dst.baseAddress!), count: count, subset: subset, into: dst.baseAddress!)
        }
      }
      var expected = [UInt8]()
      for group in 0..<(bytes / 16) {
        for pattern in 0..<16 {
          var sum = 0
          for i in 0..<4 where 4 * group + i < count {
            let x = Int(codes[4 * group + i])
            sum += pattern >> i & 1 == 1 ? x : (subset ? 0 : -x)
          }
          expected.append(UInt8(truncatingIfNeeded: sum))
        }
      }
      #expect(Array(out.prefix(bytes)) == expected, "count \(count) subset \(subset)")
      #expect(out.last == 0xAA, "count \(count): wrote past 32 * ceil(count / 8) bytes")
    }
  }

  /// An implicit convolution as the engine runs it: tables of a zero-bordered NHWC tensor, rows at output
  /// pixels and pairs at (kernel tap, 8 channels) through offsets, against the reference on im2col rows; stride
  /// 1 and 2, padding 0 and 1.
  @Test("implicit convolution through offsets", arguments: [(1, 1), (2, 1), (1, 0), (2, 0)] as [(Int, Int)])
  func implicitConvolution(stride s: Int, padding p: Int) {
    var rng = SplitMix64(seed: UInt64(10 * s + p))
    let (images, h, w, c, m, kk) = (2, 7, 6, 16, 24, 3)
    let (ho, wo) = ((h + 2 * p - kk) / s + 1, (w + 2 * p - kk) / s + 1)
    let (hp, wp) = (h + 2 * p, w + 2 * p)
    let k = kk * kk * c
    for kind in [PackedWeights.CodeKind.binary, .ternary] {
      let act = (0..<(images * h * w * c)).map { _ in UInt8(rng.next() & 3) }
      let weights = (0..<(m * k)).map { _ in
        kind == .binary ? (rng.next() & 1 == 0 ? Int8(-1) : 1) : Int8(Int(rng.next() % 3) - 1)
      }
      // Reference: im2col rows (ky, kx, c), code 0 outside the image.
      let columns = im2colRows(act, n: images, h: h, w: w, c: c, k: kk, stride: s, padding: p).rows
      let packed = PackedWeights(codes: weights, m: m, k: k, kind: kind)
      let expected = wrapGEMM(
        weights: packed, activations: columns, n: images * ho * wo, bits: 8, lanes: 8, path: .reference)
      let lookup = LookupWeights(packed)
      let pixelBytes = 4 * c
      var tables = [UInt8](repeating: 0, count: images * hp * wp * pixelBytes)
      act.withUnsafeBufferPointer { a in
        tables.withUnsafeMutableBufferPointer { t in
          for i in 0..<images {
            for y in 0..<h {
              LookupWeights.buildTables(
                a.baseAddress! + (i * h + y) * w * c, count: w * c, subset: lookup.subsetTables,
                into: t.baseAddress! + ((i * hp + y + p) * wp + p) * pixelBytes)
            }
          }
        }
      }
      var rowOffsets = [Int]()
      for i in 0..<images {
        for oy in 0..<ho {
          for ox in 0..<wo { rowOffsets.append(((i * hp + oy * s) * wp + ox * s) * pixelBytes) }
        }
      }
      let pairOffsets = (0..<lookup.pairs).map { j -> UInt32 in
        let (tap, ch) = (8 * j).quotientAndRemainder(dividingBy: c)
        return UInt32(((tap / kk) * wp + tap % kk) * pixelBytes + 4 * ch)
      }
      var got = [Int32](repeating: 0, count: expected.count)
      tables.withUnsafeBufferPointer { t in
        rowOffsets.withUnsafeBufferPointer { ro in
          pairOffsets.withUnsafeBufferPointer { po in
            got.withUnsafeMutableBufferPointer { out in
              wrapGEMM(lookupWeights: lookup, base: t.baseAddress, rowOffsets: ro, pairOffsets: po, bits: 8, output: out)
            }
          }
        }
      }
      #expect(got == expected, "\(kind) stride \(s) padding \(p)")
    }
  }

  @Test("index layout")
  func indexLayout() {
    // W [2, 9]: row 0 = +1 at columns 0 and 5, -1 elsewhere; row 1 = -1 at column 8, 0 elsewhere (ternary).
    var codes = [Int8](repeating: -1, count: 9) + [Int8](repeating: 0, count: 9)
    codes[0] = 1
    codes[5] = 1
    codes[9 + 8] = -1
    let ternary = LookupWeights(PackedWeights(codes: codes, m: 2, k: 9, kind: .ternary))
    #expect(ternary.pairs == 2 && ternary.indices.count == 2 * 64)
    #expect(ternary.indices[0] == 0b0001)  // pair 0, group 0, row 0: +1 at column 0
    #expect(ternary.indices[32] == 0b1110)  // its -1 columns 1...3
    #expect(ternary.indices[16] == 0b0010)  // pair 0, group 1 (columns 4...7): +1 at column 5
    #expect(ternary.indices[48] == 0b1101)
    #expect(ternary.indices[64 + 32 + 1] == 0b0001)  // pair 1, row 1: -1 at column 8
    #expect(ternary.indices[64 + 1] == 0)
  }
}

#if arch(x86_64)
  // The code epilogue of the lookup kernel (the engine's table outputs): codes written straight from the byte
  // sums through arcs (16 channels x 2 rows per vector, residual parameters picked by blends) or through
  // look-ups, against look-ups done here on the reference sums: channel counts that leave
  // partial 16-channel blocks and use 1-, 2- and 4-block tiles, shortcuts that reach only some channels, S = 2, 3,
  // 4 shortcut codes, levels 1, 2 (not unrolled), 3 and 7, b = 5 and 8, and the sums written alongside.
  @Suite("Lookup kernel epilogue agrees with the reference", .enabled(if: KernelPath.isAVX2Available))
  struct LookupEpilogueTests {
    private func run(
      lookup: LookupWeights, tables: [UInt8], n: Int, bits: Int, table: [UInt8], shortcutCodes s: Int,
      saved: [UInt8]?, savedRows: [Int], reached: Int, padBefore: Int, arcs: [Int8]?, levels: Int,
      sums: inout [Int32]?
    ) -> [UInt8] {
      let m = lookup.m
      var got = [UInt8](repeating: 0xEE, count: n * m)
      let rowOffsets = (0..<n).map { $0 * lookup.rowBytes }
      let pairOffsets = (0..<lookup.pairs).map { UInt32(32 * $0) }
      var sumBuffer = [Int32](repeating: 0, count: sums == nil ? 0 : n * m)
      let kernel = lookup.kind == .ternary ? wrapnet_gemm_ternary_lut_acc8_avx2 : wrapnet_gemm_binary_lut_acc8_avx2
      lookup.indices.withUnsafeBufferPointer { w in
        tables.withUnsafeBufferPointer { tb in
          table.withUnsafeBufferPointer { t in
            (saved ?? []).withUnsafeBufferPointer { sv in
              savedRows.withUnsafeBufferPointer { sr in
                got.withUnsafeMutableBufferPointer { out in
                  (arcs ?? []).withUnsafeBufferPointer { a in
                    sumBuffer.withUnsafeMutableBufferPointer { sb in
                      var epilogue = wrapnet_code_epilogue(
                        table: t.baseAddress, shortcut_codes: s, shortcut: saved == nil ? nil : sv.baseAddress,
                        shortcut_rows: saved == nil ? nil : sr.baseAddress, shortcut_channels: reached,
                        pad_before: padBefore, codes: out.baseAddress, ldo: m,
                        arcs: arcs == nil ? nil : a.baseAddress, levels: Int32(levels))
                      kernel(
                        w.baseAddress, m, lookup.pairs, tb.baseAddress, rowOffsets, pairOffsets, n,
                        sums == nil ? nil : sb.baseAddress, m, Int32(bits), &epilogue)
                    }
                  }
                }
              }
            }
          }
        }
      }
      if sums != nil { sums = sumBuffer }
      return got
    }

    @Test(
      "plain and residual tables",
      arguments: [
        (1, 7, 37, 0), (3, 11, 144, 0), (8, 5, 33, 0), (13, 9, 160, 0), (13, 9, 160, 2), (17, 10, 40, 3),
        (24, 6, 288, 4), (33, 13, 64, 0), (40, 9, 48, 5), (64, 11, 72, 0), (64, 17, 72, 8),
      ] as [(Int, Int, Int, Int)])
    func tables(m: Int, n: Int, k: Int, padBefore: Int) throws {
      var rng = SplitMix64(seed: UInt64(m * 1000 + k + padBefore))
      let bits = k % 2 == 0 ? 8 : 5
      let size = 1 << bits
      let levels = [1, 3, 7, 2][m % 4]
      for kind in [PackedWeights.CodeKind.binary, .ternary] {
        let codes = (0..<(m * k)).map { _ in
          kind == .binary ? (rng.next() & 1 == 0 ? Int8(-1) : 1) : Int8(Int(rng.next() % 3) - 1)
        }
        let x = (0..<(n * k)).map { _ in UInt8(rng.next() & 3) }
        let packed = PackedWeights(codes: codes, m: m, k: k, kind: kind)
        let sums = wrapGEMM(weights: packed, activations: x, n: n, bits: bits, lanes: 8, path: .reference)
        let lookup = LookupWeights(packed)
        let tables = lookup.tables(x, n: n)
        for (residual, arcs) in [(false, false), (true, false), (false, true), (true, true)] {
          let s = residual ? [4, 2, 3][m % 3] : 1
          let reached = residual ? max(1, m - 2 * padBefore) : 0
          let table =
            arcs
            ? arcTable(count: m * s, size: size, levels: levels, rng: &rng)
            : (0..<(m * s * size)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
          let arcBytes =
            arcs
            ? try #require(
              CodeArcs(table: table, channels: m, shortcutCodes: s, bits: bits, levels: levels),
              "a table of nested arcs must convert"
            ).bytes : nil
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
          var gotSums: [Int32]? = []
          let got = run(
            lookup: lookup, tables: tables, n: n, bits: bits, table: table, shortcutCodes: s,
            saved: residual ? saved : nil, savedRows: savedRows, reached: reached, padBefore: padBefore,
            arcs: arcBytes, levels: levels, sums: &gotSums)
          let label = "\(kind) m \(m) n \(n) k \(k) padBefore \(padBefore) levels \(levels) residual \(residual) arcs \(arcs)"
          #expect(got == expected, "\(label)")
          #expect(gotSums == sums, "sums beside the codes: \(label)")
        }
      }
    }

    /// Codes only, over every n from 1 to 47 and 1-, 2- and 4-block tiles (8, 4 and 2 rows, single-row tails,
    /// rows paired per vector), plain and residual arcs.
    @Test(arguments: [11, 32, 64])
    func arcRowTails(m: Int) throws {
      var rng = SplitMix64(seed: 77 + UInt64(m))
      let (k, bits, levels) = (48, 8, 3)
      let codes = (0..<(m * k)).map { _ in rng.next() & 1 == 0 ? Int8(-1) : 1 }
      let packed = PackedWeights(codes: codes, m: m, k: k, kind: .binary)
      let lookup = LookupWeights(packed)
      for s in [1, 4] {
        let table = arcTable(count: m * s, size: 1 << bits, levels: levels, rng: &rng)
        let arcs = try #require(
          CodeArcs(table: table, channels: m, shortcutCodes: s, bits: bits, levels: levels))
        for n in 1...47 {
          let x = (0..<(n * k)).map { _ in UInt8(rng.next() & 3) }
          let sums = wrapGEMM(weights: packed, activations: x, n: n, bits: bits, lanes: 8, path: .reference)
          let saved = (0..<(n * m)).map { _ in UInt8(rng.next() % UInt64(s)) }
          let expected = (0..<(n * m)).map { i in
            table[((i % m) * s + (s > 1 ? Int(saved[i]) : 0)) << bits + Int(sums[i]) + 128]
          }
          var noSums: [Int32]? = nil
          let got = run(
            lookup: lookup, tables: lookup.tables(x, n: n), n: n, bits: bits, table: table, shortcutCodes: s,
            saved: s > 1 ? saved : nil, savedRows: (0..<n).map { $0 * m }, reached: m, padBefore: 0,
            arcs: arcs.bytes, levels: levels, sums: &noSums)
          #expect(got == expected, "m \(m) n \(n) S \(s)")
        }
      }
    }
  }

#endif
