extension InferenceRunner {
  /// Sum pooling of codes [n, positions, c] into [n, c]; the loader checked that the sums fit in a byte.
  static func sumPool(
    _ act: UnsafePointer<UInt8>, n: Int, positions: Int, channels c: Int, into out: UnsafeMutablePointer<UInt8>
  ) {
    // Position by position over whole channel rows (contiguous, so the adds vectorize); byte adds are exact
    // because the sums fit.
    for i in 0..<n {
      let dst = out + i * c
      dst.update(repeating: 0, count: c)
      let src = act + i * positions * c
      for p in 0..<positions {
        let row = src + p * c
        for ch in 0..<c { dst[ch] &+= row[ch] }
      }
    }
  }

  /// Max pooling of codes [n, h, w, c] over k × k windows with stride s (no padding) into [n, ho, wo, c],
  /// ho = (h − k) / s + 1 (wo alike).
  static func maxPool(
    _ act: UnsafePointer<UInt8>, n: Int, h: Int, w: Int, c: Int, kernel k: Int, stride s: Int,
    into out: UnsafeMutablePointer<UInt8>
  ) {
    let (ho, wo) = ((h - k) / s + 1, (w - k) / s + 1)
    for i in 0..<n {
      for oy in 0..<ho {
        for ox in 0..<wo {
          let dst = out + ((i * ho + oy) * wo + ox) * c
          dst.update(from: act + ((i * h + oy * s) * w + ox * s) * c, count: c)
          for u in 0..<k {
            for v in 0..<k where u != 0 || v != 0 {
              let src = act + ((i * h + oy * s + u) * w + ox * s + v) * c
              for ch in 0..<c { dst[ch] = max(dst[ch], src[ch]) }
            }
          }
        }
      }
    }
  }
}
