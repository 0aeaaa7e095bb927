/// Integer weight codes of one layer, packed once into 4-row panels for the wrap-around GEMM kernels.
///
/// The codes form a row-major matrix `W[m, k]` (one row per output channel, `k` = fan-in). Packed byte layout
/// (`bytes`, `Int8`), with `kp = paddedK` = `k` rounded up to a multiple of 32:
///
///     panel p = row / 4, r = row % 4, block j = column / 32, t = column % 32
///     bytes[p * 4 * kp + j * 128 + r * 32 + t] = W[row, column]
///
/// i.e. `ceil(m / 4)` panels of `kp / 32` blocks, each block 4 rows x 32 consecutive codes. Rows `m ..< 4 *
/// ceil(m / 4)` and columns `k ..< kp` are zero, so kernels can always work on whole 4 x 32 blocks: a zero weight
/// contributes nothing whatever activation byte it meets. `bytes.count == 4 * ceil(m / 4) * kp`.
public struct PackedWeights: Sendable, Equatable {
  /// Which integer codes a weight matrix holds; kernels pick their instructions from it.
  public enum CodeKind: Sendable, Hashable, CustomStringConvertible {
    /// Codes in {-1, +1}.
    case binary
    /// Codes in {-1, 0, +1}.
    case ternary
    /// Symmetric k-bit codes in [-(2^(k-1) - 1), 2^(k-1) - 1], k in 2...8.
    case symmetric(bits: Int)

    /// Largest |code| allowed: 1 for binary and ternary, 2^(k-1) - 1 for symmetric k-bit.
    public var maxMagnitude: Int {
      switch self {
      case .binary, .ternary: return 1
      case .symmetric(let bits): return (1 << (bits - 1)) - 1
      }
    }

    /// "binary", "ternary" or "int<k>".
    public var description: String {
      switch self {
      case .binary: return "binary"
      case .ternary: return "ternary"
      case .symmetric(let bits): return "int\(bits)"
      }
    }

    /// Whether `code` is a valid code of this kind (binary excludes 0).
    public func contains(_ code: Int8) -> Bool {
      switch self {
      case .binary: return code == 1 || code == -1
      default: return Int(code).magnitude <= maxMagnitude
      }
    }
  }

  /// Rows per panel: the kernels' register block height.
  public static let panelRows = 4
  /// The fan-in is padded with zeros to a multiple of this many codes (one 256-bit vector of bytes).
  public static let kAlignment = 32

  /// What the codes are.
  public let kind: CodeKind
  /// Rows of `W`: output channels.
  public let m: Int
  /// Columns of `W`: fan-in (e.g. `inChannels * kh * kw` for a convolution).
  public let k: Int
  /// `k` rounded up to a multiple of `kAlignment`; row stride of one panel block row.
  public let paddedK: Int
  /// The packed codes, layout above.
  public let bytes: [Int8]

  /// Packs row-major codes `W[m, k]`.
  ///
  /// - Precondition: `codes.count == m * k`, `m >= 0`, `k >= 0`, every code valid for `kind`.
  public init(codes: UnsafeBufferPointer<Int8>, m: Int, k: Int, kind: CodeKind) {
    precondition(m >= 0 && k >= 0, "PackedWeights: shape [m: \(m), k: \(k)] has a negative dimension")
    if case .symmetric(let bits) = kind {
      precondition((2...8).contains(bits), "PackedWeights: symmetric code bits must be in 2...8, got \(bits)")
    }
    precondition(
      codes.count == m * k, "PackedWeights: codes has \(codes.count) elements but W [m: \(m), k: \(k)] needs \(m * k)")
    let kp = (k + Self.kAlignment - 1) / Self.kAlignment * Self.kAlignment
    let panels = (m + Self.panelRows - 1) / Self.panelRows
    var packed = [Int8](repeating: 0, count: panels * Self.panelRows * kp)
    packed.withUnsafeMutableBufferPointer { dst in
      for row in 0..<m {
        for column in 0..<k {
          let code = codes[row * k + column]
          precondition(
            kind.contains(code), "PackedWeights: code \(code) at W[\(row), \(column)] is not a valid \(kind) code")
          dst[Self.byteOffset(row: row, column: column, paddedK: kp)] = code
        }
      }
    }
    self.kind = kind
    self.m = m
    self.k = k
    self.paddedK = kp
    self.bytes = packed
  }

  /// Packs row-major codes `W[m, k]` from an array; see `init(codes:m:k:kind:)`.
  public init(codes: [Int8], m: Int, k: Int, kind: CodeKind) {
    self = codes.withUnsafeBufferPointer { PackedWeights(codes: $0, m: m, k: k, kind: kind) }
  }

  /// Offset in `bytes` of `W[row, column]` for a matrix whose padded fan-in is `paddedK`.
  @inlinable
  public static func byteOffset(row: Int, column: Int, paddedK: Int) -> Int {
    (row / panelRows) * panelRows * paddedK + (column / kAlignment) * panelRows * kAlignment
      + (row % panelRows) * kAlignment + column % kAlignment
  }

  /// The code `W[row, column]`. Precondition: `0 <= row < m`, `0 <= column < k`.
  public func code(row: Int, column: Int) -> Int8 {
    precondition(
      (0..<m).contains(row) && (0..<k).contains(column),
      "PackedWeights: index [\(row), \(column)] outside W [m: \(m), k: \(k)]")
    return bytes[Self.byteOffset(row: row, column: column, paddedK: paddedK)]
  }

  /// The codes back as a row-major `[m, k]` array (inverse of packing).
  public func unpacked() -> [Int8] {
    var out = [Int8](repeating: 0, count: m * k)
    for row in 0..<m {
      for column in 0..<k { out[row * k + column] = bytes[Self.byteOffset(row: row, column: column, paddedK: paddedK)] }
    }
    return out
  }
}
