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
  /// per output channel.
  public func quantize(_ weights: [Float], outChannels: Int) -> (codes: [Float], scales: [Float]) {
    precondition(outChannels > 0 && weights.count % outChannels == 0,
                 "weights count \(weights.count) is not a multiple of outChannels \(outChannels)")
    let q: QuantizedWeights
    let fanIn = weights.count / outChannels
    switch self {
    case .binary: q = BinaryQuantizer().quantize(weights, outChannels: outChannels, fanIn: fanIn)
    case .ternary(let t): q = TernaryQuantizer(thresholdFactor: t).quantize(weights, outChannels: outChannels, fanIn: fanIn)
    case .symmetric(let k): q = SymmetricQuantizer(bits: k).quantize(weights, outChannels: outChannels, fanIn: fanIn)
    }
    return (q.codes.map { Float($0) }, q.scales)
  }
}
