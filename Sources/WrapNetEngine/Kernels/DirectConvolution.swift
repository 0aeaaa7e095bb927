import CWrapNetKernels

/// A small convolution's int8 weights laid out for `directConvolution` (AVX2): a network's first layer, whose few
/// input channels make im2col rows short (27 codes for a 3 × 3 RGB kernel), so a GEMM over them costs more in
/// copies and tile edges than in products. Built once per layer by the loader.
///
/// Layouts: kernel row ky's taps t = kx · c + ch (a row's k · c taps are contiguous NHWC bytes, which the kernel
/// reads with one 16-byte load) in pairs (AVX2, vpmaddwd) or quads (AVX-512 VNNI, vpdpbusd), channels in blocks
/// of 8, 0 past the row's k · c taps or m channels:
///
///     pairs[((ky * rowPairs + p) * blocks + b) * 16 + 2q + e] = W[8b + q, ky · k · c + 2p + e],  rowPairs = ⌈k·c / 2⌉
///     quads[((ky * rowQuads + u) * blocks + b) * 32 + 4q + e] = W[8b + q, ky · k · c + 4u + e],  rowQuads = ⌈k·c / 4⌉
public struct DirectConvWeights: Sendable, Equatable {
  /// Output channels, input channels, kernel size.
  public let m: Int
  public let c: Int
  public let k: Int
  /// Int16 weights by tap pairs and int8 weights by tap quads, layouts above.
  public let pairs: [Int16]
  public let quads: [Int8]

  /// The most bytes of one kernel row (k · c) and output channels the kernel takes.
  public static let maxRowBytes = 16
  public static let maxChannels = 32

  /// Lays out `weights` ([m, k · k · c], columns (ky, kx, ch)), or nil when the layer is outside the kernel's
  /// limits (a kernel row of more than `maxRowBytes` taps, or more than `maxChannels` output channels).
  public init?(_ weights: PackedWeights, channels c: Int, kernel k: Int) {
    let m = weights.m
    guard m >= 1, m <= Self.maxChannels, c >= 1, k >= 1, k * c <= Self.maxRowBytes, weights.k == k * k * c else {
      return nil
    }
    let (blocks, span) = ((m + 7) / 8, k * c)
    let (rowPairs, rowQuads) = ((span + 1) / 2, (span + 3) / 4)
    var pairs = [Int16](repeating: 0, count: k * rowPairs * blocks * 16)
    var quads = [Int8](repeating: 0, count: k * rowQuads * blocks * 32)
    let codes = weights.unpacked()
    for row in 0..<m {
      for ky in 0..<k {
        for t in 0..<span {
          let code = codes[row * k * span + ky * span + t]
          let (p, e) = t.quotientAndRemainder(dividingBy: 2)
          pairs[((ky * rowPairs + p) * blocks + row / 8) * 16 + 2 * (row % 8) + e] = Int16(code)
          let (u, f) = t.quotientAndRemainder(dividingBy: 4)
          quads[((ky * rowQuads + u) * blocks + row / 8) * 32 + 4 * (row % 8) + f] = code
        }
      }
    }
    self.m = m
    self.c = c
    self.k = k
    self.pairs = pairs
    self.quads = quads
  }
}

/// The exact int32 sums of a k × k convolution of `images` uint8 NHWC images [height, width, c] with `weights`,
/// pixels outside the image counting as 0: `output` [images, ho, wo, m] with ho = (height + 2·padding − k) /
/// stride + 1 (wo alike). The same integers as `wrapGEMM` with 32-bit lanes on the layer's im2col rows (the tests
/// check it against the reference path).
///
/// `vnni` runs the AVX-512 VNNI kernel (default: where the CPU has it), else the AVX2 one; same sums.
///
/// - Precondition: `KernelPath.isAVX2Available` (and `KernelPath.isVNNIAvailable` for `vnni`); `pixels` holds
///   images · height · width · c bytes and `output` room for the sums; the output grid is not empty.
public func directConvolution(
  _ weights: DirectConvWeights, stride: Int, padding: Int, pixels: UnsafePointer<UInt8>, images: Int, height: Int,
  width: Int, output: UnsafeMutablePointer<Int32>, vnni: Bool = KernelPath.isVNNIAvailable
) {
  precondition(KernelPath.isAVX2Available, "directConvolution: the kernel needs AVX2")
  precondition(!vnni || KernelPath.isVNNIAvailable, "directConvolution: this CPU has no AVX-512 VNNI")
  precondition(
    stride >= 1 && padding >= 0 && padding < weights.k && height + 2 * padding >= weights.k
      && width + 2 * padding >= weights.k,
    "directConvolution: a \(weights.k) × \(weights.k) kernel with stride \(stride), padding \(padding) does not fit \(height) × \(width) images"
  )
  #if arch(x86_64)
    if vnni {
      weights.quads.withUnsafeBufferPointer { w in
        wrapnet_conv_s8u8_acc32_vnni(
          w.baseAddress, weights.m, weights.c, weights.k, stride, padding, pixels, images, height, width, output)
      }
    } else {
      weights.pairs.withUnsafeBufferPointer { w in
        wrapnet_conv_s8u8_acc32_avx2(
          w.baseAddress, weights.m, weights.c, weights.k, stride, padding, pixels, images, height, width, output)
      }
    }
  #endif
}
