extension InferenceRunner {
  /// Pixels NCHW [n, c, h, w] as the first layer's codes, NHWC [n, h, w, c], in the `.activations` slot.
  static func nhwcCodes(
    _ pixels: UnsafePointer<UInt8>, n: Int, channels c: Int, height h: Int, width w: Int, scratch: ForwardScratch
  ) -> UnsafeMutablePointer<UInt8> {
    let act = scratch.bytes(.activations, count: n * c * h * w)
    if c == 1 {
      act.update(from: pixels, count: n * h * w)
    } else {
      for i in 0..<n {
        for ch in 0..<c {
          let src = pixels + (i * c + ch) * h * w
          let dst = act + i * h * w * c + ch
          for p in 0..<(h * w) { dst[p * c] = src[p] }
        }
      }
    }
    return act
  }

  /// The byte offset of each output pixel's window (its top-left input pixel) in a zero-bordered NHWC tensor of
  /// `padded` pixels per image, `pixelBytes` each: [n · ho · wo] Int, in the `.rowOffsets` slot. Wrapping
  /// arithmetic in the n·ho·wo loop (checked multiplies were 2% of a resnet20 run); every offset lies inside the
  /// tensor.
  static func windowOffsets(
    n: Int, output: (h: Int, w: Int), padded: (h: Int, w: Int), stride s: Int, pixelBytes: Int,
    scratch: ForwardScratch
  ) -> UnsafeMutablePointer<Int> {
    let (ho, wo, hp, wp) = (output.h, output.w, padded.h, padded.w)
    let rowOffsets = scratch.typed(.rowOffsets, count: n * ho * wo, as: Int.self)
    var r = 0
    let step = s &* pixelBytes
    for i in 0..<n {
      for oy in 0..<ho {
        let start = ((i &* hp &+ oy &* s) &* wp) &* pixelBytes
        var ox = 0
        while ox < wo {
          rowOffsets[r &+ ox] = start &+ ox &* step
          ox &+= 1
        }
        r &+= wo
      }
    }
    return rowOffsets
  }

  /// The lookup kernel's input for one dense layer on codes `act` [n, h, w, c] (NHWC): per-pixel tables (4 bytes
  /// per code, `LookupWeights.buildTables`) and the offsets of each row (output pixel) and of each pair of 4-code
  /// groups in it (see `wrapGEMM(lookupWeights:base:...)`). A linear layer gets one table row per image. A
  /// convolution gets a zero-bordered tensor of tables [n, h + 2p, w + 2p, 4c] (code 0's table is all zeros, so
  /// the border adds nothing) and no im2col: row (i, oy, ox) starts at its window's top-left pixel, pair j at
  /// kernel tap (8j) / c, channel (8j) % c (the loader only indexes layers with c % 16 == 0). Returns the output
  /// grid (1 × 1 for linear).
  static func lookupInput(
    _ act: UnsafePointer<UInt8>, n: Int, h: Int, w: Int, geometry: DenseGeometry, weights: LookupWeights,
    scratch: ForwardScratch
  ) -> (
    base: UnsafeMutablePointer<UInt8>, rows: Int, rowOffsets: UnsafeMutablePointer<Int>,
    pairOffsets: UnsafeMutablePointer<UInt32>, h: Int, w: Int
  ) {
    let pairs = weights.pairs
    let subset = weights.subsetTables
    let pairOffsets = scratch.typed(.pairOffsets, count: pairs, as: UInt32.self)
    switch geometry {
    case .linear(let inF, _):
      let stride = weights.rowBytes
      let x = scratch.bytes(.tables, count: n * stride)
      let rowOffsets = scratch.typed(.rowOffsets, count: n, as: Int.self)
      for i in 0..<n {
        LookupWeights.buildTables(act + i * inF, count: inF, subset: subset, into: x + i * stride)
        rowOffsets[i] = i * stride
      }
      for j in 0..<pairs { pairOffsets[j] = UInt32(32 * j) }
      return (x, n, rowOffsets, pairOffsets, 1, 1)
    case .conv(let inC, _, let k, let s, let p):
      let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1)
      let (hp, wp, pixelBytes) = (h + 2 * p, w + 2 * p, 4 * inC)
      let x = scratch.bytes(.tables, count: n * hp * wp * pixelBytes)
      for i in 0..<n {
        let image = x + i * hp * wp * pixelBytes
        if p > 0 {
          // Only the border is zeroed (the tables are 8 times the codes): p rows above and below, p pixels left
          // and right of every image row.
          image.update(repeating: 0, count: p * wp * pixelBytes)
          (image + (p + h) * wp * pixelBytes).update(repeating: 0, count: p * wp * pixelBytes)
        }
        for y in 0..<h {
          let row = image + (y + p) * wp * pixelBytes
          if p > 0 {
            row.update(repeating: 0, count: p * pixelBytes)
            (row + (p + w) * pixelBytes).update(repeating: 0, count: p * pixelBytes)
          }
          LookupWeights.buildTables(
            act + (i * h + y) * w * inC, count: w * inC, subset: subset, into: row + p * pixelBytes)
        }
      }
      let rowOffsets = Self.windowOffsets(
        n: n, output: (ho, wo), padded: (hp, wp), stride: s, pixelBytes: pixelBytes, scratch: scratch)
      for j in 0..<pairs {
        let (tap, ch) = (8 * j).quotientAndRemainder(dividingBy: inC)
        pairOffsets[j] = UInt32(((tap / k) * wp + tap % k) * pixelBytes + 4 * ch)
      }
      return (x, n * ho * wo, rowOffsets, pairOffsets, ho, wo)
    }
  }

  /// Integer im2col of NHWC codes [n, h, w, c] into rows of `rowStride` bytes: row (i, oy, ox), columns
  /// (ky, kx, c), code 0 outside the image. Columns `k·k·c ..< rowStride` are left as they are (they meet zero
  /// weights).
  static func im2col(
    _ act: UnsafePointer<UInt8>, n: Int, h: Int, w: Int, c: Int, kernel k: Int, stride s: Int, padding p: Int,
    into x: UnsafeMutablePointer<UInt8>, rowStride: Int
  ) {
    let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1)
    let rowBytes = k * k * c
    // Plain while loops: these run once per output position and kernel row, where range iterators cost more
    // than the copies. Every output window overlaps the image (p < k), so the kernel-row and -column ranges
    // below are never empty.
    var i = 0
    while i < n {
      var oy = 0
      while oy < ho {
        let y0 = oy &* s &- p
        // Kernel rows inside the image: ky in kyLo ..< kyHi.
        let kyLo = max(0, -y0), kyHi = min(k, h &- y0)
        var ox = 0
        while ox < wo {
          let x0 = ox &* s &- p
          let kxLo = max(0, -x0), kxHi = min(k, w &- x0)
          let row = x + ((i &* ho &+ oy) &* wo &+ ox) &* rowStride
          // Rows that overlap the border need their padding zeros; interior rows are overwritten completely.
          if kyLo > 0 || kyHi < k || kxLo > 0 || kxHi < k { row.update(repeating: 0, count: rowBytes) }
          // A pixel's channels are contiguous in NHWC and in the column order (ky, kx, c), and so are the pixels
          // kx = kxLo ..< kxHi of one kernel row: one copy per kernel row.
          let span = (kxHi &- kxLo) &* c
          var ky = kyLo
          while ky < kyHi {
            copyBytes(
              to: row + (ky &* k &+ kxLo) &* c, from: act + ((i &* h &+ y0 &+ ky) &* w &+ x0 &+ kxLo) &* c, count: span)
            ky &+= 1
          }
          ox &+= 1
        }
        oy &+= 1
      }
      i &+= 1
    }
  }

  /// Copies `count` bytes with 16-byte vector moves and a byte tail: im2col copies are short (a few channels times
  /// the kernel width), where a `memmove` call costs more than the copy.
  @inline(__always)
  static func copyBytes(to dst: UnsafeMutablePointer<UInt8>, from src: UnsafePointer<UInt8>, count: Int) {
    var t = 0
    let d = UnsafeMutableRawPointer(dst), s = UnsafeRawPointer(src)
    while t &+ 16 <= count {
      d.storeBytes(of: s.loadUnaligned(fromByteOffset: t, as: SIMD16<UInt8>.self), toByteOffset: t, as: SIMD16<UInt8>.self)
      t &+= 16
    }
    if t &+ 8 <= count {
      d.storeBytes(of: s.loadUnaligned(fromByteOffset: t, as: UInt64.self), toByteOffset: t, as: UInt64.self)
      t &+= 8
    }
    while t < count {
      dst[t] = src[t]
      t &+= 1
    }
  }
}
