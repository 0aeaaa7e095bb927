/// Constants and shared encodings of the packed engine model file (`wrapnet convert` writes it, `InferenceModel`
/// reads it). The full layout is documented in `docs/FORMAT.md`.
public enum PackedModelFormat {
  /// Value of the `format` metadata key.
  public static let name = "wrapnet.engine"
  /// Value of the `format_version` metadata key written by this converter.
  ///
  /// Version 2 added residual blocks (`shortcut` and `sumpool` kinds, `residual_table` and `residual_thresholds`
  /// outputs) and Float post-processing for accumulators wider than a table (`float`, `residual_float`); a version-1 file is a valid version-2 file, so readers accept both and reject every other version.
  ///
  /// Version 3 added the `recode` kind; files without one are written as version 2, so older readers still read
  /// every model that does not need it.
  public static let version = "3"
  /// The version written for a file without `recode` steps.
  public static let versionWithoutRecode = "2"
  /// Versions this reader accepts.
  public static let readableVersions: Set<String> = ["1", "2", "3"]
  /// Most entries a residual layer's table may hold (O · S · 2^b bytes): 16 MiB.
  public static let maxResidualTableEntries = 1 << 24
  /// Widest low-bit accumulator whose post-processing is stored as a table (2^b entries per channel).
  public static let maxTableBits = 12
}

/// Bit-packing of integer weight codes for the packed model file.
///
/// Code i of a row-major `[m, k]` matrix occupies bits `[i·w, i·w + w)` of the little-endian bit stream
/// (byte `j` holds bits `8j ... 8j + 7`, least significant first), `w` = bits per code:
///
/// | kind            | w | field value → code                                   |
/// |-----------------|---|------------------------------------------------------|
/// | binary          | 1 | 1 → +1, 0 → −1                                       |
/// | ternary         | 2 | two's complement: 00 → 0, 01 → +1, 11 → −1 (10 invalid) |
/// | symmetric k-bit | k | two's complement; −2^(k−1) invalid (codes are symmetric) |
///
/// `bytes.count == ceil(m·k·w / 8)`; unused high bits of the last byte are zero.
public enum WeightCodePacking {
  /// Bits per code `w` for a code kind.
  public static func bitsPerCode(_ kind: PackedWeights.CodeKind) -> Int {
    switch kind {
    case .binary: return 1
    case .ternary: return 2
    case .symmetric(let bits): return bits
    }
  }

  /// Number of bytes holding `count` codes of `kind`: `ceil(count · w / 8)`.
  public static func byteCount(codes count: Int, kind: PackedWeights.CodeKind) -> Int {
    (count * bitsPerCode(kind) + 7) / 8
  }

  /// Packs `codes` (each valid for `kind`) into the bit stream described on the type.
  /// Precondition: every code is a valid `kind` code.
  public static func pack(_ codes: [Int8], kind: PackedWeights.CodeKind) -> [UInt8] {
    let w = bitsPerCode(kind)
    let mask = UInt32((1 << w) - 1)
    var out = [UInt8](repeating: 0, count: byteCount(codes: codes.count, kind: kind))
    out.withUnsafeMutableBufferPointer { o in
      for (i, code) in codes.enumerated() {
        precondition(kind.contains(code), "WeightCodePacking.pack: code \(code) at \(i) is not a valid \(kind) code")
        // Binary stores the sign bit only; the others store the low w bits of the two's complement.
        let field: UInt32 = kind == .binary ? (code > 0 ? 1 : 0) : UInt32(UInt8(bitPattern: code)) & mask
        let bit = i * w
        // A field spans at most two bytes (w <= 8).
        let shifted = field << UInt32(bit % 8)
        o[bit / 8] |= UInt8(truncatingIfNeeded: shifted)
        if bit % 8 + w > 8 { o[bit / 8 + 1] |= UInt8(truncatingIfNeeded: shifted >> 8) }
      }
    }
    return out
  }

  /// Unpacks `count` codes of `kind`; nil when `bytes` has the wrong length, a field is not a valid code, or the
  /// padding bits of the last byte are not zero.
  public static func unpack(_ bytes: [UInt8], count: Int, kind: PackedWeights.CodeKind) -> [Int8]? {
    guard count >= 0, bytes.count == byteCount(codes: count, kind: kind) else { return nil }
    let w = bitsPerCode(kind)
    let mask = UInt32((1 << w) - 1)
    var out = [Int8](repeating: 0, count: count)
    var valid = true
    bytes.withUnsafeBufferPointer { b in
      out.withUnsafeMutableBufferPointer { o in
        for i in 0..<count {
          let bit = i * w
          var raw = UInt32(b[bit / 8]) >> UInt32(bit % 8)
          if bit % 8 + w > 8 { raw |= UInt32(b[bit / 8 + 1]) << UInt32(8 - bit % 8) }
          let field = raw & mask
          let code: Int8
          if kind == .binary {
            code = field == 1 ? 1 : -1
          } else {
            // Sign-extend the w-bit field.
            let shift = UInt32(32 - w)
            code = Int8(truncatingIfNeeded: Int32(bitPattern: field << shift) >> shift)
          }
          if !kind.contains(code) { valid = false }
          o[i] = code
        }
      }
      let usedBits = count * w
      if usedBits % 8 != 0 && b[b.count - 1] >> UInt8(usedBits % 8) != 0 { valid = false }
    }
    return valid ? out : nil
  }
}

/// One entry of the packed file's `layers` metadata (a JSON array, in forward order).
///
/// `kind` is `linear`, `conv`, `maxpool`, `flatten`, `shortcut` (save the current codes as a residual block's
/// input) or `sumpool` (sum the codes over all positions). Dense layers (`linear`, `conv`) carry their geometry,
/// weight format, accumulator and `output` (`table`, `thresholds`, `residual_table`, `residual_thresholds`,
/// `float`, `residual_float` or `logits`); residual outputs also carry the shortcut's `shortcut_stride`, `shortcut_channels` and
/// `shortcut_pad_before`; `maxpool` carries `kernel` and `stride`.
public struct PackedLayerDescriptor: Codable, Sendable, Equatable {
  /// Layer name (tensor names start with it: `<name>.weight_codes`, ...).
  public var name: String
  /// `linear`, `conv`, `maxpool`, `flatten`, `shortcut` or `sumpool`.
  public var kind: String
  /// Input features (linear) or input channels (conv).
  public var inputs: Int?
  /// Output features / channels.
  public var outputs: Int?
  /// Square kernel side (conv, maxpool).
  public var kernel: Int?
  /// Stride (conv, maxpool).
  public var stride: Int?
  /// Zero padding on each side (conv).
  public var padding: Int?
  /// `binary`, `ternary` or `int<k>` (k in 2...8).
  public var weightFormat: String?
  /// Accumulator width b (32 for exact).
  public var accumulatorBits: Int?
  /// `exact`, `wrap`, `cyclic` or `clamp`.
  public var accumulatorMode: String?
  /// Cyclic slope k (informative: the table already contains the cyclic activation).
  public var slope: Float?
  /// `table`, `thresholds`, `residual_table`, `residual_thresholds`, `float`, `residual_float` or `logits`.
  public var output: String?
  /// Bits of the next activation codes (table and thresholds outputs).
  public var activationBits: Int?
  /// Residual outputs: the saved block input is read at (y·stride, x·stride) ...
  public var shortcutStride: Int?
  /// ... has this many channels ...
  public var shortcutChannels: Int?
  /// ... which land on output channels `padBefore ..< padBefore + channels` (the others add 0).
  public var shortcutPadBefore: Int?
  /// `float` outputs: the activation quantizer's clip (Float value of the largest code).
  public var activationClip: Float?
  /// `residual_float` outputs: the Float value of one shortcut code (the block's input scale).
  public var shortcutScale: Float?

  /// A descriptor; unused fields stay nil.
  public init(
    name: String, kind: String, inputs: Int? = nil, outputs: Int? = nil, kernel: Int? = nil, stride: Int? = nil,
    padding: Int? = nil, weightFormat: String? = nil, accumulatorBits: Int? = nil, accumulatorMode: String? = nil,
    slope: Float? = nil, output: String? = nil, activationBits: Int? = nil, shortcutStride: Int? = nil,
    shortcutChannels: Int? = nil, shortcutPadBefore: Int? = nil, activationClip: Float? = nil,
    shortcutScale: Float? = nil
  ) {
    self.name = name
    self.kind = kind
    self.inputs = inputs
    self.outputs = outputs
    self.kernel = kernel
    self.stride = stride
    self.padding = padding
    self.weightFormat = weightFormat
    self.accumulatorBits = accumulatorBits
    self.accumulatorMode = accumulatorMode
    self.slope = slope
    self.output = output
    self.activationBits = activationBits
    self.shortcutStride = shortcutStride
    self.shortcutChannels = shortcutChannels
    self.shortcutPadBefore = shortcutPadBefore
    self.activationClip = activationClip
    self.shortcutScale = shortcutScale
  }

  enum CodingKeys: String, CodingKey {
    case name, kind, inputs, outputs, kernel, stride, padding
    case weightFormat = "weight_format"
    case accumulatorBits = "accumulator_bits"
    case accumulatorMode = "accumulator_mode"
    case slope, output
    case activationBits = "activation_bits"
    case shortcutStride = "shortcut_stride"
    case shortcutChannels = "shortcut_channels"
    case shortcutPadBefore = "shortcut_pad_before"
    case activationClip = "activation_clip"
    case shortcutScale = "shortcut_scale"
  }
}
