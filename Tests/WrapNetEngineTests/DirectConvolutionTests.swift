import Testing
import WrapNetEngine

// The first layer's direct convolution (AVX2) against the reference path on im2col rows: exact int32 sums over
// channel counts 1 ... 32 (1-4 blocks of 8, partial blocks), kernels 1 ... 8, strides 1 and 2, padding 0 ... 2,
// odd image sizes (image rows shorter and longer than the kernel's 16-byte loads), kernel rows of 1 ... 16 bytes,
// weights and pixels at the extremes.

/// im2col rows (ky, kx, c) of NHWC images, 0 outside (also used by the lookup kernel's convolution test).
func im2colRows(
  _ x: [UInt8], n: Int, h: Int, w: Int, c: Int, k: Int, stride s: Int, padding p: Int
) -> (rows: [UInt8], count: Int) {
  let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1)
  let taps = k * k * c
  var rows = [UInt8](repeating: 0, count: n * ho * wo * taps)
  for i in 0..<n {
    for oy in 0..<ho {
      for ox in 0..<wo {
        for ky in 0..<k {
          for kx in 0..<k {
            let (y, xx) = (oy * s + ky - p, ox * s + kx - p)
            guard y >= 0, y < h, xx >= 0, xx < w else { continue }
            for ch in 0..<c {
              rows[((i * ho + oy) * wo + ox) * taps + (ky * k + kx) * c + ch] = x[((i * h + y) * w + xx) * c + ch]
            }
          }
        }
      }
    }
  }
  return (rows, n * ho * wo)
}

private func checkDirect(
  m: Int, c: Int, k: Int, stride: Int, padding: Int, n: Int, h: Int, w: Int, weightValue: Int8? = nil,
  pixelValue: UInt8? = nil, rng: inout SplitMix64
) {
  let taps = k * k * c
  let codes = (0..<(m * taps)).map { _ in weightValue ?? Int8(Int(rng.next() % 255) - 127) }
  let x = (0..<(n * h * w * c)).map { _ in pixelValue ?? UInt8(truncatingIfNeeded: rng.next()) }
  let packed = PackedWeights(codes: codes, m: m, k: taps, kind: .symmetric(bits: 8))
  let (rows, count) = im2colRows(x, n: n, h: h, w: w, c: c, k: k, stride: stride, padding: padding)
  let expected = wrapGEMM(weights: packed, activations: rows, n: count, bits: 32, lanes: 32, path: .reference)
  guard let direct = DirectConvWeights(packed, channels: c, kernel: k) else {
    Issue.record("m \(m) c \(c) k \(k): within the kernel's limits but not laid out")
    return
  }
  // Both kernels where the CPU has AVX-512 VNNI, else the AVX2 one.
  for vnni in KernelPath.isVNNIAvailable ? [false, true] : [false] {
    var got = [Int32](repeating: Int32.min, count: count * m)
    x.withUnsafeBufferPointer { px in
      got.withUnsafeMutableBufferPointer { out in
        directConvolution(
          direct, stride: stride, padding: padding, pixels: px.baseAddress!, images: n, height: h, width: w,
          output: out.baseAddress!, vnni: vnni)
      }
    }
    recordFirstMismatch(
      got, expected, m: m,
      "direct conv\(vnni ? " (vnni)" : "") m \(m) c \(c) k \(k) s \(stride) p \(padding) \(n)x\(h)x\(w)")
  }
}

@Suite("Direct convolution agrees with the reference", .enabled(if: KernelPath.isAVX2Available))
struct DirectConvolutionTests {
  @Test("channels, kernels, strides and padding", arguments: [1, 5, 8, 16, 17, 24, 32])
  func sweep(m: Int) {
    var rng = SplitMix64(seed: UInt64(m))
    for (c, k) in [(1, 1), (3, 1), (16, 1), (1, 3), (3, 3), (2, 3), (5, 3), (1, 5), (2, 5), (3, 5), (2, 8)] {
      for (stride, padding) in [(1, 0), (1, 1), (2, 1), (2, 0), (1, 2)] where padding < k && 5 + 2 * padding >= k {
        checkDirect(m: m, c: c, k: k, stride: stride, padding: padding, n: 2, h: 7, w: 5, rng: &rng)
      }
    }
    // Wide images: most columns load their kernel rows in place, the last ones from the row's last 16 bytes.
    checkDirect(m: m, c: 3, k: 3, stride: 1, padding: 1, n: 2, h: 9, w: 13, rng: &rng)
    checkDirect(m: m, c: 1, k: 5, stride: 2, padding: 2, n: 1, h: 6, w: 37, rng: &rng)
    // Images no larger than the kernel, and one pixel.
    checkDirect(m: m, c: 3, k: 3, stride: 1, padding: 1, n: 1, h: 1, w: 1, rng: &rng)
    checkDirect(m: m, c: 3, k: 3, stride: 2, padding: 0, n: 3, h: 3, w: 4, rng: &rng)
  }

  /// Every weight at ±127 and every pixel at 255 (sums of 27 · 127 · 255, and of 64 taps in 4 kernel rows of 16 bytes), and zero pixels.
  @Test("extremes", arguments: [Int8(127), -127])
  func extremes(weight: Int8) {
    var rng = SplitMix64(seed: 3)
    for pixel in [UInt8(255), 0] {
      checkDirect(m: 16, c: 3, k: 3, stride: 1, padding: 1, n: 2, h: 6, w: 6, weightValue: weight, pixelValue: pixel, rng: &rng)
      checkDirect(m: 9, c: 4, k: 4, stride: 1, padding: 2, n: 1, h: 5, w: 5, weightValue: weight, pixelValue: pixel, rng: &rng)
    }
  }

  @Test("limits")
  func limits() {
    let codes = [Int8](repeating: 1, count: 33 * 27)
    #expect(DirectConvWeights(PackedWeights(codes: codes, m: 33, k: 27, kind: .symmetric(bits: 8)), channels: 3, kernel: 3) == nil)
    // A kernel row of 4 · 5 = 20 bytes does not fit one 16-byte load.
    let wide = [Int8](repeating: 1, count: 4 * 100)
    #expect(DirectConvWeights(PackedWeights(codes: wide, m: 4, k: 100, kind: .symmetric(bits: 8)), channels: 4, kernel: 5) == nil)
    let mismatched = [Int8](repeating: 1, count: 4 * 27)
    #expect(DirectConvWeights(PackedWeights(codes: mismatched, m: 4, k: 27, kind: .symmetric(bits: 8)), channels: 1, kernel: 3) == nil)
  }
}
