import CWrapNetTraining
import Testing

import WrapNet

/// The trainer's C loops against plain Swift loops with the same Float32 operations in the same order: equal bit
/// for bit, over odd sizes (lengths that leave vector remainders, channel counts that are not multiples of the
/// groups of four and two, strides and paddings).
@Suite struct TrainingLoopTests {
  static func values(_ count: Int, _ rng: inout LayerTestRNG, _ lo: Float = -3, _ hi: Float = 3) -> [Float] {
    (0..<count).map { _ in rng.float(lo, hi) }
  }

  static func bits(_ a: [Float]) -> [UInt32] { a.map(\.bitPattern) }

  @Test func clippedGradient() {
    var rng = LayerTestRNG(seed: 41)
    for count in [0, 1, 3, 7, 8, 9, 31, 33, 1023] {
      var x = Self.values(count, &rng, -0.5, 2.5)
      if count > 3 { (x[0], x[1], x[2]) = (0, 2, .nan) }  // both bounds are inside; NaN is outside
      let dy = Self.values(count, &rng)
      let (clip, factor): (Float, Float) = (2, 1.5)
      let want = (0..<count).map { (x[$0] >= 0 && x[$0] <= clip) ? dy[$0] * factor : 0 }
      var got = [Float](repeating: 7, count: count)
      wrapnet_clipped_gradient(dy, x, 0, clip, factor, &got, count)
      #expect(Self.bits(got) == Self.bits(want), "count \(count)")
    }
  }

  @Test func overflowStatistics() {
    var rng = LayerTestRNG(seed: 42)
    for count in [0, 1, 5, 17, 4095, 4096, 4097, 9000] {
      let z = (0..<count).map { _ in Float(rng.int(-300, 300)) }
      let (lo, hi, limit): (Float, Float, Float) = (-128, 127, 128)
      var over = 0
      var excess = 0.0
      for v in z {
        if v < lo || v > hi { over += 1 }
        let e = abs(v) - limit
        if e > 0 { excess += Double(e) }
      }
      var gotExcess = -1.0
      let gotOver = wrapnet_overflow_statistics(z, count, lo, hi, limit, &gotExcess)
      #expect(Int(gotOver) == over && gotExcess == excess, "count \(count)")
    }
  }

  /// im2col (Float and Float64 columns, whole images and every kind of position range) against its definition and
  /// col2im against the scalar accumulation, for strides 1–3 and paddings 0–2; the same-size stride-1 shapes take
  /// the contiguous-copy path (including kh ≠ kw and a 1×1 kernel), the others the row-by-row one.
  @Test(arguments: [
    (1, 5, 7, 3, 3, 1, 1), (2, 6, 5, 3, 2, 2, 0), (3, 9, 9, 3, 3, 2, 1), (1, 4, 4, 1, 1, 1, 0), (2, 7, 8, 5, 3, 3, 2),
    (3, 3, 3, 3, 3, 1, 2), (2, 6, 5, 5, 5, 1, 2), (2, 5, 4, 5, 3, 1, 1), (3, 1, 1, 3, 3, 1, 1), (2, 2, 9, 3, 3, 1, 1),
  ])
  func im2colAndCol2im(shape: (Int, Int, Int, Int, Int, Int, Int)) {
    let (c, h, w, kh, kw, s, p) = shape
    var rng = LayerTestRNG(seed: UInt64(c * 100 + h * 10 + w))
    let ho = Conv2D.outputSize(inputSize: h, kernelSize: kh, stride: s, padding: p)
    let wo = Conv2D.outputSize(inputSize: w, kernelSize: kw, stride: s, padding: p)
    let image = Self.values(c * h * w, &rng)
    let rowStride = ho * wo + 3  // a wider block, as when images sit side by side
    let rows = c * kh * kw
    var want = [Float](repeating: -9, count: rows * rowStride)
    var fold = [Float](repeating: 0, count: c * h * w)
    let columns = Self.values(rows * rowStride, &rng)
    for ch in 0..<c {
      for u in 0..<kh {
        for v in 0..<kw {
          let row = (ch * kh + u) * kw + v
          for i in 0..<ho {
            for j in 0..<wo {
              let (iy, ix) = (i * s - p + u, j * s - p + v)
              let inside = iy >= 0 && iy < h && ix >= 0 && ix < w
              want[row * rowStride + i * wo + j] = inside ? image[(ch * h + iy) * w + ix] : 0
              if inside { fold[(ch * h + iy) * w + ix] += columns[row * rowStride + i * wo + j] }
            }
          }
        }
      }
    }
    var got = [Float](repeating: -9, count: rows * rowStride)
    wrapnet_im2col(image, c, h, w, kh, kw, s, p, ho, wo, &got, rowStride)
    #expect(Self.bits(got) == Self.bits(want), "im2col \(shape)")
    var got64 = [Double](repeating: -9, count: rows * rowStride)
    wrapnet_im2col_f64(image, c, h, w, kh, kw, s, p, ho, wo, &got64, rowStride)
    #expect(got64.map(\.bitPattern) == want.map { Double($0).bitPattern }, "im2col Float64 \(shape)")
    // Position ranges: single positions, runs that start or end inside an output row, runs across rows.
    let positions = ho * wo
    var ranges = [(0, positions), (positions - 1, 1), (max(0, positions - wo - 1), min(positions, wo + 1))]
    for first in Swift.stride(from: 0, to: positions, by: max(1, positions / 5)) {
      for count in [1, 2, wo - 1, wo, wo + 1, 2 * wo + 1] where count >= 1 && first + count <= positions {
        ranges.append((first, count))
      }
    }
    for (first, count) in ranges {
      let stride = count + 2
      var part = [Float](repeating: -9, count: rows * stride)
      wrapnet_im2col_positions(image, c, h, w, kh, kw, s, p, ho, wo, first, count, &part, stride)
      var expected = [Float](repeating: -9, count: rows * stride)
      for row in 0..<rows {
        for q in 0..<count { expected[row * stride + q] = want[row * rowStride + first + q] }
      }
      #expect(Self.bits(part) == Self.bits(expected), "im2col positions \(first)..<\(first + count) \(shape)")
    }
    var back = [Float](repeating: 0, count: c * h * w)
    wrapnet_col2im(columns, rowStride, c, h, w, kh, kw, s, p, ho, wo, &back)
    #expect(Self.bits(back) == Self.bits(fold), "col2im \(shape)")
  }

  /// Channel sums, squares, the normalization and the backward sums and input gradient of batch norm, for channel
  /// counts around the groups of four and two.
  @Test(arguments: [1, 2, 3, 4, 5, 7, 9])
  func batchNormLoops(channels: Int) {
    var rng = LayerTestRNG(seed: UInt64(channels))
    let (n, spatial) = (3, 5)
    let x = Self.values(n * channels * spatial, &rng, -2, 5)
    let dy = Self.values(x.count, &rng)
    let stride = channels * spatial
    func at(_ i: Int, _ k: Int, _ q: Int) -> Int { i * stride + k * spatial + q }
    var sums = [Double](repeating: 0, count: channels)
    var squares = [Double](repeating: 0, count: channels)
    var sumDy = [Double](repeating: 0, count: channels)
    var sumDyXhat = [Double](repeating: 0, count: channels)
    for k in 0..<channels {
      for i in 0..<n { for q in 0..<spatial { sums[k] += Double(x[at(i, k, q)]) } }
    }
    let means = sums.map { $0 / Double(n * spatial) }
    for k in 0..<channels {
      for i in 0..<n {
        for q in 0..<spatial {
          let d = Double(x[at(i, k, q)]) - means[k]
          squares[k] += d * d
          sumDy[k] += Double(dy[at(i, k, q)])
          sumDyXhat[k] += Double(dy[at(i, k, q)]) * Double(x[at(i, k, q)])
        }
      }
    }
    var got = [Double](repeating: -1, count: channels)
    wrapnet_channel_sums(x, n, stride, spatial, channels, nil, &got)
    #expect(got == sums)
    wrapnet_channel_sums(x, n, stride, spatial, channels, means, &got)
    #expect(got == squares)
    var gotDy = [Double](repeating: -1, count: channels)
    var gotDyXhat = [Double](repeating: -1, count: channels)
    wrapnet_batchnorm_gradient_sums(dy, x, n, stride, spatial, channels, &gotDy, &gotDyXhat)
    #expect(gotDy == sumDy && gotDyXhat == sumDyXhat)

    let (mean, rstd, g, b, scale, m): (Float, Float, Float, Float, Float, Float) = (0.3, 1.7, 0.9, -0.2, 0.05, 15)
    var xhat = [Float](repeating: 0, count: x.count), y = xhat, dx = xhat
    var wantXhat = xhat, wantY = xhat, wantDx = xhat
    for k in 0..<channels {
      for i in 0..<n {
        for q in 0..<spatial {
          let j = at(i, k, q)
          let xh = (x[j] - mean) * rstd
          wantXhat[j] = xh
          wantY[j] = g * xh + b
          wantDx[j] = scale * (m * dy[j] - 0.25 - x[j] * 1.5)
        }
      }
      wrapnet_batchnorm_normalize(x.withUnsafeBufferPointer { $0.baseAddress! + k * spatial }, n, stride, spatial,
        mean, rstd, g, b, xhat.withUnsafeMutableBufferPointer { $0.baseAddress! + k * spatial },
        y.withUnsafeMutableBufferPointer { $0.baseAddress! + k * spatial })
      wrapnet_batchnorm_input_gradient(dy.withUnsafeBufferPointer { $0.baseAddress! + k * spatial },
        x.withUnsafeBufferPointer { $0.baseAddress! + k * spatial }, n, stride, spatial, scale, m, 0.25, 1.5,
        dx.withUnsafeMutableBufferPointer { $0.baseAddress! + k * spatial })
    }
    #expect(Self.bits(xhat) == Self.bits(wantXhat) && Self.bits(y) == Self.bits(wantY))
    #expect(Self.bits(dx) == Self.bits(wantDx))
  }

  /// One Adam step (with L2 decay, and with AdamW's shrink) against the scalar loop of `Adam.update`.
  @Test(arguments: [(Float(0), Float(1)), (Float(1e-2), Float(1)), (Float(0), Float(0.999))])
  func adamUpdate(l2: Float, shrink: Float) {
    var rng = LayerTestRNG(seed: 43)
    for count in [1, 3, 8, 13, 1027] {
      let grad = Self.values(count, &rng)
      var w = Self.values(count, &rng), m = Self.values(count, &rng, -0.1, 0.1)
      var v = Self.values(count, &rng, 0, 0.01)
      let (b1, b2, eps, root, step): (Float, Float, Float, Float, Float) = (0.9, 0.999, 1e-8, 0.0447, 0.0123)
      var (wantW, wantM, wantV) = (w, m, v)
      for i in 0..<count {
        let g = grad[i] + l2 * wantW[i]
        wantW[i] *= shrink
        wantM[i] = b1 * wantM[i] + (1 - b1) * g
        wantV[i] = b2 * wantV[i] + (1 - b2) * g * g
        let denominator = wantV[i].squareRoot() / root + eps
        wantW[i] -= step * wantM[i] / denominator
      }
      wrapnet_adam_update(&w, grad, &m, &v, count, l2, shrink, b1, 1 - b1, b2, 1 - b2, root, eps, step)
      #expect(Self.bits(w) == Self.bits(wantW) && Self.bits(m) == Self.bits(wantM), "count \(count)")
      #expect(Self.bits(v) == Self.bits(wantV), "count \(count)")
    }
  }
  /// The saturating-sum kernel (dispatched and portable paths) against the sequential clamp, term by term, for
  /// block sizes that leave vector remainders, zero rows and zero weights, strided outputs, and widths from 4 to 31
  /// bits (31 bits: products and sums near the Int32 limits, which wrap like Swift's &+ and &*); registers starting
  /// at 0 (no preload) and at per-channel preloads that include both limits.
  @Test(arguments: [(1, 1, 1, 4), (7, 3, 5, 6), (33, 17, 9, 8), (64, 5, 144, 8), (13, 2, 40, 31)], [false, true])
  func saturatingSums(shape: (Int, Int, Int, Int), preloaded: Bool) {
    let (count, outC, fan, bits) = shape
    var rng = LayerTestRNG(seed: UInt64(count * 31 + fan))
    let colStride = count + 2
    let big = bits == 31
    var cols = [Float](repeating: 0, count: fan * colStride)
    for k in 0..<fan where k % 5 != 2 {  // every fifth row is all zeros
      for p in 0..<count { cols[k * colStride + p] = Float(Int(rng.float(1, big ? 60_000 : 15.99))) }
    }
    // Even channels mostly add, odd ones mostly subtract, so sums run into both limits; some weights are 0.
    let limit: Float = big ? 30_000 : 3.99
    let weights = (0..<(outC * fan)).map { i in Int32(i / fan % 2 == 0 ? rng.float(-1, limit) : rng.float(-limit, 1)) }
    let lo = -(Int32(1) << (bits - 1)), hi = Int32((Int64(1) << (bits - 1)) - 1)
    let preload: [Int32]? = preloaded
      ? (0..<outC).map { o in o == 0 ? lo : o == 1 ? hi : Int32(rng.float(Float(lo) / 2, Float(hi) / 2)) } : nil
    var want = [Float](repeating: 0, count: outC * count)
    for o in 0..<outC {
      for p in 0..<count {
        var acc: Int32 = preload?[o] ?? 0
        for k in 0..<fan { acc = min(max(acc &+ Int32(cols[k * colStride + p]) &* weights[o * fan + k], lo), hi) }
        want[p * outC + o] = Float(acc)
      }
    }
    var scratch = [Int32](repeating: -1, count: (outC + 1) * count)
    var got = [Float](repeating: .nan, count: outC * count)
    var portable = [Float](repeating: .nan, count: outC * count)
    if let preload {
      wrapnet_saturating_sums(cols, colStride, fan, count, weights, outC, preload, lo, hi, &scratch, &got, 1, outC)
      wrapnet_saturating_sums_portable(
        cols, colStride, fan, count, weights, outC, preload, lo, hi, &scratch, &portable, 1, outC)
    } else {
      wrapnet_saturating_sums(cols, colStride, fan, count, weights, outC, nil, lo, hi, &scratch, &got, 1, outC)
      wrapnet_saturating_sums_portable(cols, colStride, fan, count, weights, outC, nil, lo, hi, &scratch, &portable, 1, outC)
    }
    #expect(Self.bits(got) == Self.bits(want), "dispatched \(shape)")
    #expect(Self.bits(portable) == Self.bits(want), "portable \(shape)")
    if !preloaded || fan > 1 { #expect(want.contains(Float(hi)) || want.contains(Float(lo)), "the test should saturate") }
  }
}
