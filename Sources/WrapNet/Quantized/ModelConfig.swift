import WrapNetEngine

/// Everything needed to rebuild a WrapNet model's architecture and quantization: stored as JSON in checkpoints
/// (`__metadata__["wrapnet.config"]`) and in `summary.json`.
public struct ModelConfig: Sendable, Equatable, Codable {
  /// Zoo architecture: "mlp", "cnn", "vgg-small" or "resnet20".
  public var architecture: String
  /// Input images: channels, height, width; number of classes.
  public var inputChannels: Int
  public var inputHeight: Int
  public var inputWidth: Int
  public var classes: Int
  /// Low-bit layers: weight bits (1 binary, 2 ternary, 3...8 symmetric) and the ternary threshold factor t.
  public var weightBits: Int
  public var ternaryThreshold: Float
  /// Unsigned activation codes: bits a and clip range.
  public var activationBits: Int
  public var activationClip: Float
  /// Low-bit layers' accumulator (`accumulator_bits` in JSON, a plain integer).
  public var accumulatorWidth: AccumulatorWidth
  public var accumulatorMode: AccumulatorMode
  public var slope: Float
  /// Overflow penalty weight λ.
  public var penalty: Float
  /// Whether the first layer (raw 8-bit pixels) and the last layer (logits) use 8-bit weights with 32-bit
  /// accumulators (true, the default) or the low-bit settings above.
  public var wideFirstLayer: Bool
  public var wideLastLayer: Bool
  /// Multiplies every hidden width of the zoo architecture (mlp 1024·m units; cnn 16m, 32m, 64m, 64m channels;
  /// vgg-small and resnet20 likewise). Wider layers have larger fan-in, so their sums overflow a b-bit accumulator
  /// more often: this is how a study reaches the regime where naive wrap-around collapses. Checkpoints written
  /// before the field existed decode as 1.
  public var widthMultiplier: Int
  /// Divides every hidden width after the multiplier: a hidden layer of base width B has B·m/d units or channels
  /// (`hiddenWidth(_:)`), e.g. vgg-small ÷4 has 32, 32, 64, 64, 128, 128 channels and 1/16 of the MACs, small
  /// enough to train on a laptop CPU. One of `widthDivisors`; checkpoints written before the field existed decode
  /// as 1.
  public var widthDivisor: Int
  /// `resnet20` only: for each of the 9 residual blocks, the clip at which the block's first convolution reads the
  /// block input. The block input's codes (clip `activationClip`) feed both that convolution and the shortcut;
  /// with a clip c_k the convolution reads them re-coded, code' = round(clamp(code · s, 0, c_k) · (2^a − 1) / c_k)
  /// with s the input's code step (`CodeRequantizer`): coarser, smaller codes whose integer sums fit a narrow
  /// accumulator, while the shortcut keeps the fine ones. nil: every block reads its input as it is. Set by range
  /// calibration (`RangeCalibration`); checkpoints written before the field existed decode as nil.
  public var residualInputClips: [Float]?
  /// Whether every low-bit layer has a per-channel accumulator preload (`WrapLayer.preload`): the register starts
  /// at p[c] instead of 0, so it sums z + p[c] and p[c] is taken off after the accumulator. Range calibration sets
  /// p[c] = −round(mean of the channel's sums), which centres them: a wrap-around register then overflows only when
  /// a sum strays from its channel's mean, not because the mean itself is far from 0. Only for `wrap` and `cyclic`
  /// (where the engine folds it into its table) and `clamp` and `saturate` (a register with a reset value), below
  /// 32 bits. Stored as `accumulator_preload: true`; absent (false) in checkpoints without it.
  public var accumulatorPreload: Bool {
    get { preloadFlag ?? false }
    set { preloadFlag = newValue ? true : nil }
  }
  private var preloadFlag: Bool?

  /// Whether an accumulator of `mode` and `bits` takes preloads: wrap, cyclic, clamp or saturate below 32 bits.
  public static func acceptsPreload(mode: AccumulatorMode, bits: Int) -> Bool {
    [.wrap, .cyclic, .clamp, .saturate].contains(mode) && bits < 32
  }

  public static let architectures = ["mlp", "cnn", "vgg-small", "resnet20"]
  /// Allowed width multipliers (checked by `validate` and by the command line's flag).
  public static let widthMultipliers = 1...16
  /// Allowed width divisors: powers of two that divide every base width of the zoo (mlp 1024, cnn 16, vgg-small
  /// 128, resnet20 16), so B·m/d is a whole number of at least 2.
  public static let widthDivisors = [1, 2, 4, 8]
  /// Allowed input channels and numbers of classes (checked by `validate`).
  public static let inputChannelRange = 1...4
  public static let classRange = 2...100_000

  /// A configuration; `accumulatorBits` must lie in `AccumulatorWidth.supported` (precondition: flags and files
  /// are checked by `AccumulatorWidth(validating:field:)` before they get here).
  public init(
    architecture: String, inputChannels: Int = 1, inputHeight: Int = 28, inputWidth: Int = 28, classes: Int = 10,
    weightBits: Int = 1, ternaryThreshold: Float = 0.7, activationBits: Int = 2, activationClip: Float = 2,
    accumulatorBits: Int = 8, accumulatorMode: AccumulatorMode = .cyclic, slope: Float = 2, penalty: Float = 0.01,
    wideFirstLayer: Bool = true, wideLastLayer: Bool = true, widthMultiplier: Int = 1,
    widthDivisor: Int = 1
  ) {
    self.architecture = architecture
    self.inputChannels = inputChannels
    self.inputHeight = inputHeight
    self.inputWidth = inputWidth
    self.classes = classes
    self.weightBits = weightBits
    self.ternaryThreshold = ternaryThreshold
    self.activationBits = activationBits
    self.activationClip = activationClip
    self.accumulatorWidth = AccumulatorWidth(bits: accumulatorBits)
    self.accumulatorMode = accumulatorMode
    self.slope = slope
    self.penalty = penalty
    self.wideFirstLayer = wideFirstLayer
    self.wideLastLayer = wideLastLayer
    self.widthMultiplier = widthMultiplier
    self.widthDivisor = widthDivisor
  }

  enum CodingKeys: String, CodingKey {
    case architecture
    case inputChannels = "input_channels"
    case inputHeight = "input_height"
    case inputWidth = "input_width"
    case classes
    case weightBits = "weight_bits"
    case ternaryThreshold = "ternary_threshold"
    case activationBits = "activation_bits"
    case activationClip = "activation_clip"
    case accumulatorWidth = "accumulator_bits"
    case accumulatorMode = "accumulator_mode"
    case slope
    case penalty
    case wideFirstLayer = "wide_first_layer"
    case wideLastLayer = "wide_last_layer"
    case widthMultiplier = "width_multiplier"
    case widthDivisor = "width_divisor"
    case residualInputClips = "residual_input_clips"
    case preloadFlag = "accumulator_preload"
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    architecture = try c.decode(String.self, forKey: .architecture)
    inputChannels = try c.decode(Int.self, forKey: .inputChannels)
    inputHeight = try c.decode(Int.self, forKey: .inputHeight)
    inputWidth = try c.decode(Int.self, forKey: .inputWidth)
    classes = try c.decode(Int.self, forKey: .classes)
    weightBits = try c.decode(Int.self, forKey: .weightBits)
    ternaryThreshold = try c.decode(Float.self, forKey: .ternaryThreshold)
    activationBits = try c.decode(Int.self, forKey: .activationBits)
    activationClip = try c.decode(Float.self, forKey: .activationClip)
    accumulatorWidth = try c.decode(AccumulatorWidth.self, forKey: .accumulatorWidth)
    accumulatorMode = try c.decode(AccumulatorMode.self, forKey: .accumulatorMode)
    slope = try c.decode(Float.self, forKey: .slope)
    penalty = try c.decode(Float.self, forKey: .penalty)
    wideFirstLayer = try c.decode(Bool.self, forKey: .wideFirstLayer)
    wideLastLayer = try c.decode(Bool.self, forKey: .wideLastLayer)
    widthMultiplier = try c.decodeIfPresent(Int.self, forKey: .widthMultiplier) ?? 1
    widthDivisor = try c.decodeIfPresent(Int.self, forKey: .widthDivisor) ?? 1
    residualInputClips = try c.decodeIfPresent([Float].self, forKey: .residualInputClips)
    preloadFlag = try c.decodeIfPresent(Bool.self, forKey: .preloadFlag)
  }

  /// Residual blocks of `resnet20`, each with one entry in `residualInputClips`.
  public static let residualBlockCount = 9

  /// Units or channels of a hidden layer whose base width (multiplier and divisor 1) is `base`: base · m / d.
  public func hiddenWidth(_ base: Int) -> Int { base * widthMultiplier / widthDivisor }

  /// Checks ranges; the message says which setting is wrong and what is allowed.
  public func validate() throws {
    func fail(_ s: String) -> ConfigError { ConfigError(message: s) }
    guard Self.architectures.contains(architecture) else {
      throw fail("unknown model '\(architecture)'; choose one of \(Self.architectures.joined(separator: ", "))")
    }
    guard (1...8).contains(weightBits) else { throw fail("weight bits must be 1 (binary), 2 (ternary) or 3...8, got \(weightBits)") }
    guard (1...8).contains(activationBits) else { throw fail("activation bits must be in 1...8, got \(activationBits)") }
    guard slope > 0, slope.isFinite else { throw fail("cyclic slope must be > 0, got \(slope)") }
    guard penalty >= 0, penalty.isFinite else { throw fail("penalty must be >= 0, got \(penalty)") }
    guard activationClip > 0, activationClip.isFinite else { throw fail("activation clip must be > 0, got \(activationClip)") }
    guard ternaryThreshold > 0, ternaryThreshold < 1 else { throw fail("ternary threshold must be in (0, 1), got \(ternaryThreshold)") }
    guard Self.inputChannelRange.contains(inputChannels) else {
      throw fail("input channels must be in \(Self.inputChannelRange) (1 grey, 3 colour), got \(inputChannels)")
    }
    guard Self.classRange.contains(classes) else { throw fail("classes must be in \(Self.classRange), got \(classes)") }
    guard Self.widthMultipliers.contains(widthMultiplier) else {
      throw fail("width multiplier must be in \(Self.widthMultipliers), got \(widthMultiplier)")
    }
    guard Self.widthDivisors.contains(widthDivisor) else {
      throw fail("width divisor must be one of \(Self.widthDivisors.map(String.init).joined(separator: ", ")), got \(widthDivisor)")
    }
    if let clips = residualInputClips {
      guard architecture == "resnet20" else {
        throw fail("residual input clips apply to 'resnet20' only, found them on '\(architecture)'")
      }
      guard clips.count == Self.residualBlockCount else {
        throw fail("residual input clips: 'resnet20' has \(Self.residualBlockCount) residual blocks, got \(clips.count) clips")
      }
      if let bad = clips.firstIndex(where: { !($0 > 0 && $0.isFinite) }) {
        throw fail("residual input clip \(bad) must be finite and > 0, got \(clips[bad])")
      }
    }
    if accumulatorPreload {
      guard Self.acceptsPreload(mode: accumulatorMode, bits: accumulatorBits) else {
        throw fail("an accumulator preload needs a low-bit wrap, cyclic, clamp or saturate accumulator (below 32 bits), got \(accumulatorMode.rawValue) \(accumulatorBits)-bit" + (accumulatorMode == .avoid ? "; overflow avoidance bounds the sums themselves, which a preload would move" : ""))
      }
    }
    let size = "\(inputHeight)×\(inputWidth)"
    switch architecture {
    case "mlp", "cnn":
      guard inputHeight == 28, inputWidth == 28 else {
        throw fail("model '\(architecture)' expects 28×28 images (MNIST, Fashion-MNIST), got \(size)")
      }
    case "vgg-small":
      guard Self.imageSides.contains(inputHeight), Self.imageSides.contains(inputWidth), inputHeight >= 8, inputWidth >= 8 else {
        throw fail("model 'vgg-small' pools three times by 2, so it needs images of 8×8 up to \(Self.imageSides.upperBound)×\(Self.imageSides.upperBound) (28×28 MNIST, 32×32 CIFAR-10), got \(size)")
      }
    default:  // "resnet20"
      guard Self.imageSides.contains(inputHeight), Self.imageSides.contains(inputWidth), inputHeight % 4 == 0,
        inputWidth % 4 == 0
      else {
        throw fail("model 'resnet20' halves its input twice (stride-2 stages), so height and width must be multiples of 4 up to \(Self.imageSides.upperBound) (28×28 MNIST → 14 → 7, 32×32 CIFAR-10 → 16 → 8), got \(size); crop or pad the images")
      }
    }
  }

  /// Image heights and widths `vgg-small` and `resnet20` accept (`mlp` and `cnn` take 28×28 only).
  public static let imageSides = 4...512

  /// The architecture's name, with the width factor m/d when it is not 1 ("mlp ×2", "vgg-small ×1/4").
  public var displayName: String {
    if widthDivisor == 1 { return widthMultiplier == 1 ? architecture : "\(architecture) ×\(widthMultiplier)" }
    var (m, d) = (widthMultiplier, widthDivisor)
    while m % 2 == 0 && d % 2 == 0 { (m, d) = (m / 2, d / 2) }
    return d == 1 ? "\(architecture) ×\(m)" : "\(architecture) ×\(m)/\(d)"
  }

  /// The low-bit layers' accumulator width in bits (`accumulatorWidth.bits`).
  public var accumulatorBits: Int { accumulatorWidth.bits }

  /// The low-bit layers' accumulator.
  public var accumulator: Accumulator {
    Accumulator(width: accumulatorMode == .exact ? .wide : accumulatorWidth, mode: accumulatorMode, slope: slope)
  }
}

/// A configuration or flag value that cannot be used.
public struct ConfigError: Error, CustomStringConvertible {
  public var message: String
  public init(message: String) { self.message = message }
  public var description: String { message }
}
