import ArgumentParser
import WrapNet
import WrapNetEngine

extension AccumulatorMode: ExpressibleByArgument {}

/// The low-bit layers' weight and activation code widths (shared by `train`, `sweep` and `bench`).
struct CodeBitsOptions: ParsableArguments {
  @Option(parsing: .unconditional, help: "Low-bit layers' weights: 1 binary, 2 ternary, 3...8 symmetric k-bit.")
  var weightBits: Int = 1

  @Option(parsing: .unconditional, help: "Unsigned activation bits a (codes 0 … 2^a−1).")
  var actBits: Int = 2

  func validate() throws {
    guard (1...8).contains(weightBits) else { throw ValidationError("--weight-bits must be 1 (binary), 2 (ternary) or 3...8, got \(weightBits)") }
    guard (1...8).contains(actBits) else { throw ValidationError("--act-bits must be in 1...8, got \(actBits)") }
  }
}

extension AccumulatorWidth {
  /// Parses the value of `flag` (e.g. `--acc-bits`): a width in `supported`, or a message naming the flag, the range
  /// and the value given.
  static func argument(_ flag: String) -> @Sendable (String) throws -> AccumulatorWidth {
    { text in
      do { return try AccumulatorWidth(parsing: text, field: flag) } catch { throw ValidationError("\(error)") }
    }
  }
}

/// Flags that describe a model's architecture and its weight and activation quantization (shared by `train` and
/// `sweep`; the accumulator is separate because `sweep` varies it).
struct ArchitectureOptions: ParsableArguments {
  @Option(help: ArgumentHelp(
    "Architecture: mlp, cnn (28×28), vgg-small, resnet20 (28×28 grey or 32×32 colour).",
    discussion: "vgg-small pools three times to a ⌊H/8⌋×⌊W/8⌋ plane (3×3 for 28×28, 4×4 for 32×32); resnet20 halves H and W twice (28 → 14 → 7, 32 → 16 → 8; multiples of 4) and sum-pools the last plane."))
  var model: String = "mlp"

  @OptionGroup var codes: CodeBitsOptions
  var weightBits: Int { codes.weightBits }
  var actBits: Int { codes.actBits }

  @Option(parsing: .unconditional, help: "Ternary threshold factor t (threshold t·mean|w| per output channel).")
  var ternaryThreshold: Float = 0.7

  @Option(parsing: .unconditional, help: "Activation clip range (Float value of the largest code).")
  var actClip: Float = 2

  @Option(parsing: .unconditional, help: ArgumentHelp(
    "Multiply every hidden width of the architecture (mlp: 1024·m units per hidden layer; cnn: 16m, 32m, 64m, 64m channels; vgg-small: 128m, 256m, 512m; resnet20: 16m, 32m, 64m).",
    discussion: "Wider layers sum more products, so their accumulators overflow b bits more often: use it to study the regime where naive wrap-around collapses."))
  var widthMultiplier: Int = 1

  @Option(parsing: .unconditional, help: ArgumentHelp(
    "Divide every hidden width (after --width-multiplier) by d: 1, 2, 4 or 8.",
    discussion: "vgg-small --width-divisor 4 has 32, 32, 64, 64, 128, 128 channels and 1/16 of the MACs, so it trains on a few CPU cores."))
  var widthDivisor: Int = 1

  @Flag(help: "Quantize the first layer like the low-bit layers (default: 8-bit weights, 32-bit accumulator on raw pixels).")
  var lowBitFirstLayer = false

  @Flag(help: "Quantize the last layer like the low-bit layers (default: 8-bit weights, 32-bit accumulator).")
  var lowBitLastLayer = false

  /// The configuration for images of the given shape with the given low-bit accumulator.
  func config(
    channels: Int, height: Int, width: Int, classes: Int, accumulatorWidth: AccumulatorWidth, accumulatorMode: AccumulatorMode,
    slope: Float, penalty: Float
  ) throws -> ModelConfig {
    let c = ModelConfig(
      architecture: model, inputChannels: channels, inputHeight: height, inputWidth: width, classes: classes,
      weightBits: weightBits, ternaryThreshold: ternaryThreshold, activationBits: actBits, activationClip: actClip,
      accumulatorBits: accumulatorMode == .exact ? 32 : accumulatorWidth.bits, accumulatorMode: accumulatorMode, slope: slope,
      penalty: penalty, wideFirstLayer: !lowBitFirstLayer, wideLastLayer: !lowBitLastLayer,
      widthMultiplier: widthMultiplier, widthDivisor: widthDivisor)
    try c.validate()
    return c
  }

  func validate() throws {
    guard ModelConfig.architectures.contains(model) else {
      throw ValidationError("unknown --model '\(model)'; choose one of \(ModelConfig.architectures.joined(separator: ", "))")
    }
    guard actClip > 0, actClip.isFinite else { throw ValidationError("--act-clip must be > 0, got \(actClip)") }
    guard ternaryThreshold > 0, ternaryThreshold < 1 else {
      throw ValidationError("--ternary-threshold must be in (0, 1), got \(ternaryThreshold)")
    }
    guard ModelConfig.widthMultipliers.contains(widthMultiplier) else {
      throw ValidationError("--width-multiplier must be in \(ModelConfig.widthMultipliers), got \(widthMultiplier)")
    }
    guard ModelConfig.widthDivisors.contains(widthDivisor) else {
      throw ValidationError(
        "--width-divisor must be one of \(ModelConfig.widthDivisors.map(String.init).joined(separator: ", ")), got \(widthDivisor)")
    }
  }
}

/// Architecture flags plus the low-bit layers' accumulator (`train`).
struct ModelOptions: ParsableArguments {
  @OptionGroup var architecture: ArchitectureOptions

  @Option(
    parsing: .unconditional, help: "Accumulator width b of the low-bit layers, 2...32 (default: 8).",
    transform: AccumulatorWidth.argument("--acc-bits"))
  var accBits = AccumulatorWidth(bits: 8)

  @Option(help: "Accumulator mode: exact (32-bit baseline), wrap, cyclic (WrapNet), clamp (wide acc + clamp), saturate (real b-bit saturating acc), avoid (weights constrained so a b-bit acc cannot overflow).")
  var accMode: AccumulatorMode = .cyclic

  @Option(parsing: .unconditional, help: "Transition slope k of the cyclic activation.")
  var slope: Float = 2

  @Option(
    parsing: .unconditional,
    help: ArgumentHelp(
      "Overflow penalty weight λ on the unwrapped sums.",
      discussion: "0.001, after range calibration, is the WrapNet recipe: the fewest overflows, and the best accuracy on the mlp at 7–8 bits. At 6 bits, and on the cnn at every width, the cyclic activation alone (--penalty 0) reaches higher accuracy (docs/results)."))
  var penalty: Float = 0.001

  @Flag(inversion: .prefixedNo, help: ArgumentHelp(
    "Per-channel accumulator preloads for the low-bit layers, set by range calibration (default: on when calibrating a wrap, cyclic, clamp or saturate accumulator below 32 bits).",
    discussion: "The register of output channel c starts at p[c] = −round(mean of the channel's sums) instead of 0, so it holds the sum's deviation from its channel mean, and p[c] is taken off after the accumulator. Sums whose channel means sit far from 0 (binary weights correlated with non-negative activation codes) then fit b bits with less shrinking of the codes. A wrap-around register costs nothing for it: the engine and the generated hardware fold p into their per-value tables (the engine does not run preloaded clamp models: train those with --no-preload to convert them)."))
  var preload: Bool?

  /// Whether the accumulator takes preloads (`ModelConfig.acceptsPreload`).
  var acceptsPreload: Bool { ModelConfig.acceptsPreload(mode: accMode, bits: accBits.bits) }

  /// The configuration for images of the given shape.
  /// The configuration for images of the given shape; `calibrating`: range calibration will run (it sets the
  /// preloads, which are on by default then).
  func config(channels: Int, height: Int, width: Int, classes: Int, calibrating: Bool) throws -> ModelConfig {
    var c = try architecture.config(
      channels: channels, height: height, width: width, classes: classes, accumulatorWidth: accBits,
      accumulatorMode: accMode, slope: slope, penalty: penalty)
    c.accumulatorPreload = preload ?? (calibrating && acceptsPreload)
    try c.validate()
    return c
  }

  func validate() throws {
    if preload == true && !acceptsPreload {
      throw ValidationError("--preload needs a low-bit --acc-mode wrap, cyclic, clamp or saturate (below 32 bits), got \(accMode.rawValue) \(accBits.bits)-bit")
    }
    guard slope > 0, slope.isFinite else { throw ValidationError("--slope must be > 0, got \(slope)") }
    guard penalty >= 0, penalty.isFinite else { throw ValidationError("--penalty must be >= 0, got \(penalty)") }
  }
}

/// How the overflow penalty λ is applied over the steps and the layers of a fine-tuning run (train and sweep).
struct PenaltyScheduleOptions: ParsableArguments {
  @Option(parsing: .unconditional, help: ArgumentHelp(
    "Overflow-penalty warm-up: λ rises linearly to its full value over this fraction of the run's steps, in (0, 1].",
    discussion: "Lets the cyclic activation adapt before the penalty pulls the sums in (default: full λ from the first step)."))
  var penaltyWarmup: Double?

  @Option(help: ArgumentHelp(
    "How λ is spread over the low-bit layers: uniform, fan-in or overflow.",
    discussion: "uniform: λ in every layer. fan-in: λ · F̄ / F_l for a layer of fan-in F_l (F̄: the low-bit layers' mean fan-in), so wide-fan-in layers, whose excess sums are larger, are not pulled harder than narrow ones (the mlp's low-bit layers share one fan-in, so there it is uniform). overflow: λ · r_l / r̄ at every step, r_l the share of the layer's outputs that overflowed so far in the epoch and r̄ the mean over the low-bit layers, so the penalty goes where the overflows are."))
  var penaltyScaling: String = "uniform"

  /// Sets the schedule fields of `options` (left unset for the defaults, so stored settings stay as they were).
  func apply(to options: inout TrainingOptions) {
    options.penaltyWarmup = penaltyWarmup
    options.penaltyScaling = penaltyScaling == "uniform" ? nil : penaltyScaling
  }

  /// The flags are checked by `TrainingOptions.validate()` (one rule for flags and stored settings), before any work.
  func validate() throws {
    var options = TrainingOptions()
    apply(to: &options)
    do { try options.validate() } catch { throw ValidationError("\(error)") }
  }
}
