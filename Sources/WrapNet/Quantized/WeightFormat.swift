import CWrapNetTraining
import WrapNetEngine

/// How a layer's latent Float weights become the integer codes that reach the accumulator.
///
/// `--weight-bits 1` is binary, `2` ternary, `3...8` symmetric k-bit. Codes are per output channel; the scale is
/// applied after the accumulator, never inside it.
public enum WeightFormat: Sendable, Equatable, Codable {
  /// code = sign(w) with 0 mapping to +1; scale = mean |w| of the channel.
  case binary
  /// code in {-1, 0, +1} with threshold t * mean|w| (t = 0.7 by default); scale = mean |w| of the survivors.
  case ternary(threshold: Float)
  /// Symmetric k-bit codes in [-(2^(k-1)-1), 2^(k-1)-1]; scale = max|w| / (2^(k-1)-1).
  case symmetric(bits: Int)

  /// The format for `--weight-bits n`: 1 binary, 2 ternary, 3...8 symmetric k-bit.
  public init(bits: Int, ternaryThreshold: Float = 0.7) {
    precondition((1...8).contains(bits), "weight bits must be in 1...8, got \(bits)")
    switch bits {
    case 1: self = .binary
    case 2: self = .ternary(threshold: ternaryThreshold)
    default: self = .symmetric(bits: bits)
    }
  }

  /// Bits per weight in a packed model (binary 1, ternary 2, k-bit k).
  public var bits: Int {
    switch self {
    case .binary: return 1
    case .ternary: return 2
    case .symmetric(let k): return k
    }
  }

  /// Largest |code|.
  public var maxCode: Int {
    switch self {
    case .binary, .ternary: return 1
    case .symmetric(let k): return (1 << (k - 1)) - 1
    }
  }

  /// Short human name: "binary", "ternary", "int4".
  public var name: String {
    switch self {
    case .binary: return "binary"
    case .ternary: return "ternary"
    case .symmetric(let k): return "int\(k)"
    }
  }

  /// Quantizes row-major weights `[outChannels, fanIn]`: integer codes (as exact Floats, same layout) and one scale
  /// per output channel, the same values as the engine's quantizer for this format (`BinaryQuantizer`,
  /// `TernaryQuantizer`, `SymmetricQuantizer`; tested against them).
  ///
  /// Channels are independent, so blocks of channels are quantized on the `setBLASThreads` workers by the C loops
  /// (`wrapnet_quantize_*`); the result is the same for any thread count and any blocking.
  public func quantize(_ weights: [Float], outChannels: Int) -> (codes: [Float], scales: [Float]) {
    precondition(outChannels > 0 && weights.count % outChannels == 0,
                 "weights count \(weights.count) is not a multiple of outChannels \(outChannels)")
    let fanIn = weights.count / outChannels
    precondition(fanIn > 0, "weights of \(outChannels) channels are empty")
    // About 64 K weights per block, whole channels.
    let channelsPerBlock = max(1, 65_536 / fanIn)
    // Every code and scale is written by its block.
    var codes: [Float] = unfilledArray(count: weights.count)
    var scales: [Float] = unfilledArray(count: outChannels)
    let format = self
    weights.withUnsafeBufferPointer { wp in
      codes.withUnsafeMutableBufferPointer { cp in
        scales.withUnsafeMutableBufferPointer { sp in
          let (w, c, s) = (SharedBuffer(wp), SharedBuffer(cp), SharedBuffer(sp))
          runElementBlocks(outChannels, blockSize: channelsPerBlock) { channels in
            let (rows, first) = (channels.count, channels.lowerBound)
            let (src, dst, scale) = (w.base + first * fanIn, c.base + first * fanIn, s.base + first)
            switch format {
            case .binary: wrapnet_quantize_binary(src, rows, fanIn, dst, scale)
            case .ternary(let t): wrapnet_quantize_ternary(src, rows, fanIn, t, dst, scale)
            case .symmetric(let k): wrapnet_quantize_symmetric(src, rows, fanIn, Float((1 << (k - 1)) - 1), dst, scale)
            }
          }
        }
      }
    }
    return (codes, scales)
  }
}
