import CWrapNetKernels

extension DenseLayer {
  /// The value v the layer's accumulator holds for the exact sum z: `wrap_b(z)` (wrap, cyclic), `clamp_b(z)` (clamp)
  /// or z (exact).
  public func accumulatorValue(exactSum z: Int64) -> Int64 {
    switch accumulatorMode {
    case .exact: return z
    case .wrap, .cyclic: return accumulatorWidth.wrap(z)
    case .clamp: return accumulatorWidth.saturate(z)
    }
  }

  /// The next activation code for accumulator value v of channel c, with shortcut code s for residual outputs (0
  /// where the shortcut does not reach c; ignored by plain outputs): `DenseOutput`'s rule for one value.
  ///
  ///     table                  codes[c · 2^b + (v + 2^(b-1))]
  ///     residual table         codes[(c · S + s) · 2^b + (v + 2^(b-1))]
  ///     (residual) thresholds  #{L : v >= t[row, L]} (ascending channels), #{L : v <= t[row, L]} (descending)
  ///     float                  FloatOutput.code(v, c, s)
  ///
  /// The batched runner computes the same codes for whole tiles; this is the per-value reference that the export
  /// check and the hardware generator's output stages are held to. Preconditions: the output is not `logits`; v is
  /// a value of the accumulator (in `accumulatorWidth.range` for table outputs); c < O, s < S.
  public func code(forAccumulator v: Int64, channel c: Int, shortcut s: Int = 0) -> UInt8 {
    let b = accumulatorBits
    switch output {
    case .table(let codes):
      return codes[c << b + Int(v + (Int64(1) << (b - 1)))]
    case .residualTable(let codes, let sc):
      return codes[(c * sc.codes + s) << b + Int(v + (Int64(1) << (b - 1)))]
    case .thresholds(let t, let levels, let descending):
      return t.withUnsafeBufferPointer {
        InferenceRunner.thresholdCode(v, $0.baseAddress! + c * levels, levels: levels, descending: descending[c])
      }
    case .residualThresholds(let t, let levels, let descending, let sc):
      return t.withUnsafeBufferPointer {
        InferenceRunner.thresholdCode(
          v, $0.baseAddress! + (c * sc.codes + s) * levels, levels: levels, descending: descending[c])
      }
    case .float(let f):
      return f.code(Int32(truncatingIfNeeded: v), channel: c, shortcut: f.shortcut == nil ? 0 : s)
    case .logits:
      preconditionFailure("DenseLayer.code: layer '\(name)' outputs logits, not codes")
    }
  }
}

extension InferenceRunner {
  /// The number of thresholds a value passes: ascending rows count `v >= t[l]`, descending rows `v <= t[l]`;
  /// `t` (count `levels`) is monotone in that direction, so a binary search finds the count when there are many.
  @inline(__always)
  static func thresholdCode(_ v: Int64, _ t: UnsafePointer<Int64>, levels: Int, descending: Bool) -> UInt8 {
    if levels <= 8 {
      var code = 0
      if descending {
        for l in 0..<levels where v <= t[l] { code &+= 1 }
      } else {
        for l in 0..<levels where v >= t[l] { code &+= 1 }
      }
      return UInt8(truncatingIfNeeded: code)
    }
    // The passed thresholds form a prefix: find its length.
    var (lo, hi) = (0, levels)
    while lo < hi {
      let mid = (lo + hi) / 2
      if descending ? v <= t[mid] : v >= t[mid] { lo = mid + 1 } else { hi = mid }
    }
    return UInt8(truncatingIfNeeded: lo)
  }

  /// Next activation codes from accumulator values v [rows, channels] through a table or thresholds.
  static func nextCodes(
    _ z: UnsafePointer<Int32>, rows: Int, channels m: Int, output: DenseOutput, bits: Int,
    into out: UnsafeMutablePointer<UInt8>
  ) {
    switch output {
    case .table(let codes):
      let size = 1 << bits
      let offset = 1 << (bits - 1)
      codes.withUnsafeBufferPointer { t in
        for r in 0..<rows {
          let zr = z + r * m, or = out + r * m
          for ch in 0..<m { or[ch] = t[ch &* size &+ Int(zr[ch]) &+ offset] }
        }
      }
    case .thresholds(let thresholds, let levels, let descending) where levels <= 8:
      // Few levels (1-3 for 2-bit codes): counted in C without branches (a `where` filter mispredicts).
      thresholds.withUnsafeBufferPointer { t in
        descending.withUnsafeBufferPointer { down in
          // Bool is one byte, 0 or 1.
          let flags = UnsafeRawPointer(down.baseAddress!).assumingMemoryBound(to: UInt8.self)
          wrapnet_threshold_codes(z, rows, m, t.baseAddress!, levels, flags, out)
        }
      }
    case .thresholds(let thresholds, let levels, let descending):
      thresholds.withUnsafeBufferPointer { t in
        for r in 0..<rows {
          let zr = z + r * m, or = out + r * m
          for ch in 0..<m {
            or[ch] = thresholdCode(Int64(zr[ch]), t.baseAddress! + ch * levels, levels: levels, descending: descending[ch])
          }
        }
      }
    case .float(let f) where f.shortcut == nil:
      for r in 0..<rows {
        let zr = z + r * m, or = out + r * m
        for ch in 0..<m { or[ch] = f.code(zr[ch], channel: ch, shortcut: 0) }
      }
    case .residualTable, .residualThresholds, .float, .logits:
      preconditionFailure("nextCodes: \(output) needs a shortcut or produces logits")
    }
  }

  /// Offsets in a residual block's saved input [n, saved.h, saved.w, saved.c] of the shortcut pixels of output
  /// rows r0 ..< r0 + count (row = (i, y, x) over `outputGrid`; the shortcut samples every `stride`-th pixel).
  static func shortcutPixelOffsets(
    from r0: Int, count: Int, outputGrid: (h: Int, w: Int), saved: (h: Int, w: Int, c: Int), stride st: Int,
    into offsets: UnsafeMutablePointer<Int>
  ) {
    // Row r0 + b is (image i, y, x) of the output grid; walked incrementally (two divisions per row were 2-3% of
    // a resnet20 run).
    // (Wrapping arithmetic: the offsets lie inside the saved tensor, whose size the caller allocated.)
    let (first, pos) = r0.quotientAndRemainder(dividingBy: outputGrid.h * outputGrid.w)
    var i = first
    var (y, x) = pos.quotientAndRemainder(dividingBy: outputGrid.w)
    var rowStart = ((i &* saved.h &+ y &* st) &* saved.w) &* saved.c
    let step = st &* saved.c
    var b = 0
    while b < count {
      offsets[b] = rowStart &+ x &* step
      x &+= 1
      if x == outputGrid.w {
        x = 0
        y &+= 1
        if y == outputGrid.h { (y, i) = (0, i &+ 1) }
        rowStart = ((i &* saved.h &+ y &* st) &* saved.w) &* saved.c
      }
      b &+= 1
    }
  }

  /// Next activation codes of a residual block's last layer: accumulator values v [rows, channels] (rows =
  /// (i, y, x) over `outputGrid`) and the saved block input's code s at the shortcut position, through the
  /// [C, S, 2^b] table or the [C, S, levels] thresholds.
  static func residualCodes(
    _ z: UnsafePointer<Int32>, rows: Int, channels m: Int, output: DenseOutput, bits: Int, outputGrid: (h: Int, w: Int),
    shortcut saved: (codes: UnsafePointer<UInt8>, h: Int, w: Int, c: Int), into out: UnsafeMutablePointer<UInt8>
  ) {
    // Rows go in blocks, channels outermost inside a block: one channel's table rows (S · 2^b bytes) stay in L1
    // while the block's rows use them, where a row-by-row walk would cycle through all C · S · 2^b bytes.
    let blockRows = 32
    var shortcutRows = [Int](repeating: 0, count: blockRows)
    func shortcutOffsets(from r0: Int, count: Int, stride st: Int, into sr: UnsafeMutableBufferPointer<Int>) {
      Self.shortcutPixelOffsets(
        from: r0, count: count, outputGrid: outputGrid, saved: (saved.h, saved.w, saved.c), stride: st,
        into: sr.baseAddress!)
    }
    /// Calls `body(r0, count, offsets)` for each block of rows r0 ..< r0 + count with the offsets of their
    /// shortcut pixels in the saved input.
    func forEachBlock(_ sc: Shortcut, _ body: (Int, Int, UnsafeMutableBufferPointer<Int>) -> Void) {
      shortcutRows.withUnsafeMutableBufferPointer { sr in
        var r0 = 0
        while r0 < rows {
          let count = min(blockRows, rows - r0)
          shortcutOffsets(from: r0, count: count, stride: sc.stride, into: sr)
          body(r0, count, sr)
          r0 += count
        }
      }
    }
    /// Calls `body(index, channel, shortcut code)` for every value z[index] (index = row · m + channel); used by
    /// the rarer outputs (32-bit residual thresholds, Float post-processing).
    func forEachValue(_ sc: Shortcut, _ body: (Int, Int, Int) -> Void) {
      forEachBlock(sc) { r0, count, sr in
        for ch in 0..<m {
          let j = ch - sc.padBefore
          let reaches = j >= 0 && j < sc.channels
          for b in 0..<count {
            body((r0 &+ b) &* m &+ ch, ch, reaches ? Int(saved.codes[sr[b] &+ j]) : 0)
          }
        }
      }
    }
    switch output {
    case .residualTable(let codes, let sc):
      let size = 1 << bits
      let offset = 1 << (bits - 1)
      // The common path (low-bit ResNet blocks off the lookup kernel): written out, with the channel's table base
      // hoisted.
      codes.withUnsafeBufferPointer { t in
        forEachBlock(sc) { r0, count, sr in
          for ch in 0..<m {
            let tc = t.baseAddress! + ch * sc.codes * size + offset
            let j = ch - sc.padBefore
            let reaches = j >= 0 && j < sc.channels
            for b in 0..<count {
              let r = r0 &+ b
              let code = reaches ? Int(saved.codes[sr[b] &+ j]) : 0
              out[r &* m &+ ch] = tc[code &* size &+ Int(z[r &* m &+ ch])]
            }
          }
        }
      }
    case .residualThresholds(let thresholds, let levels, let descending, let sc):
      thresholds.withUnsafeBufferPointer { t in
        forEachValue(sc) { index, ch, code in
          out[index] = thresholdCode(
            Int64(z[index]), t.baseAddress! + (ch * sc.codes + code) * levels, levels: levels, descending: descending[ch])
        }
      }
    case .float(let f) where f.shortcut != nil:
      forEachValue(f.shortcut!) { index, ch, code in out[index] = f.code(z[index], channel: ch, shortcut: code) }
    default:
      preconditionFailure("residualCodes: \(output) is not a residual output")
    }
  }
}
