import Foundation

/// Why a packed engine model was rejected: the file (or "<memory>"), what was expected and what was found.
public typealias InferenceModelError = FileError

/// What the integer engine does with a layer's sums.
public enum EngineAccumulatorMode: String, Sendable, CaseIterable {
  /// 32-bit accumulator: the exact sum z.
  case exact
  /// b-bit wrap-around accumulator: wrap_b(z).
  case wrap
  /// b-bit wrap-around accumulator followed by the cyclic activation (folded into the layer's table).
  case cyclic
  /// Exact sum clamped once to [-2^(b-1), 2^(b-1)-1].
  case clamp
}

/// How a dense layer turns its accumulator value `v` (per output channel c) into its output.
public enum DenseOutput: Sendable, Equatable {
  /// Next activation code = `codes[c · 2^b + (v + 2^(b-1))]` for v in [-2^(b-1), 2^(b-1)-1]; `codes` is [C, 2^b].
  case table(codes: [UInt8])
  /// Next activation code = number of thresholds passed: ascending channels count `v >= t[c, L]`, descending ones
  /// count `v <= t[c, L]`, L = 1...levels. `thresholds` is [C, levels], `descending` [C].
  case thresholds(thresholds: [Int64], levels: Int, descending: [Bool])
  /// The last layer of a residual block: next code = `codes[(c · S + s) · 2^b + (v + 2^(b-1))]`, where s is the
  /// block input's code at the shortcut position (0 for channels the shortcut does not reach); `codes` is
  /// [C, S, 2^b] with S = `shortcut.codes`. The table holds the trainer's BN, residual add and quantizer.
  case residualTable(codes: [UInt8], shortcut: Shortcut)
  /// `thresholds` with one threshold row per shortcut code s: `thresholds` is [C, S, levels]; the exact sum z is
  /// compared with row (c, s).
  case residualThresholds(thresholds: [Int64], levels: Int, descending: [Bool], shortcut: Shortcut)
  /// Accumulators too wide for a table (b > 12, or a residual table over its size limit): the next code is computed
  /// per value at run time with the trainer's own Float functions (see `FloatOutput`).
  case float(FloatOutput)
  /// Logits `Float(v) * scale[c] + bias[c]` (two roundings, no fused multiply-add).
  case logits(scale: [Float], bias: [Float])
}

/// Post-processing evaluated in Float at run time, exactly as the trainer evaluates it (same functions, same
/// order of operations), for channel c, accumulator value v and (residual layers) shortcut code s:
///
///     y    = cyclic_{b,k}(Float(v))  (cyclic)  or  Float(v)  (wrap, clamp: v is already wrap_b(z) / clamp_b(z))
///     n    = BatchNormEvaluation.normalize(y * scale[c] + 0, mean[c], std[c], gamma[c], beta[c])
///     code = UnsignedActivationQuantizer(bits: a, clip).code(n)                    (plain layers)
///     code = UnsignedActivationQuantizer(bits: a, clip).code(n + Float(s) * shortcutScale)  (residual layers)
public struct FloatOutput: Sendable, Equatable {
  /// Cyclic activation applied to v, or nil (wrap, clamp).
  public var cyclic: CyclicActivation?
  /// Per-channel weight scale times input scale, as `WrapLayer.forward` multiplies it.
  public var scale: [Float]
  /// Batch-norm running mean, `(runningVar + epsilon).squareRoot()`, gamma and beta per channel.
  public var mean: [Float], std: [Float], gamma: [Float], beta: [Float]
  /// The activation quantizer of the next codes.
  public var quantizer: UnsignedActivationQuantizer
  /// The residual block's shortcut (nil for plain layers) and the Float value of one shortcut code.
  public var shortcut: Shortcut?
  public var shortcutScale: Float

  /// The next code for accumulator value `v` of channel `c` with shortcut code `s` (0 for plain layers).
  @inlinable @inline(__always)
  public func code(_ v: Int32, channel c: Int, shortcut s: Int) -> UInt8 {
    var y = Float(v)
    if let cyclic { y = cyclic(y) }
    let bias: Float = 0  // the trainer adds `bias ?? 0`; kept so -0 becomes +0 exactly as there
    let out = y * scale[c] + bias
    let n = BatchNormEvaluation.normalize(out, mean: mean[c], std: std[c], gamma: gamma[c], beta: beta[c])
    return quantizer.code(shortcut == nil ? n : n + Float(s) * shortcutScale)
  }
}

/// The option-A shortcut of a CIFAR ResNet block, as the last layer of the block reads it: the block input
/// (saved by `InferenceOperation.saveShortcut`, [H, W, channels] codes) subsampled by `stride`, its channels placed
/// at output channels `padBefore ..< padBefore + channels`; other output channels see shortcut code 0.
///
///     s(y, x, o) = saved[y · stride, x · stride, o − padBefore]   if padBefore <= o < padBefore + channels, else 0
public struct Shortcut: Sendable, Equatable {
  /// Subsampling stride (1 or 2 in ResNet-20).
  public var stride: Int
  /// Channels of the saved block input.
  public var channels: Int
  /// Output channel of the saved input's channel 0.
  public var padBefore: Int
  /// Shortcut codes 0 ..< `codes` (the saved input's largest code + 1): the tables' S.
  public var codes: Int
  /// A shortcut; see the type's documentation.
  public init(stride: Int, channels: Int, padBefore: Int, codes: Int) {
    (self.stride, self.channels, self.padBefore, self.codes) = (stride, channels, padBefore, codes)
  }
}

/// The geometry of a dense layer: fully connected or 2-D convolution (NHWC activations, see `InferenceModel`).
public enum DenseGeometry: Sendable, Equatable {
  /// [N, inFeatures] → [N, outFeatures].
  case linear(inFeatures: Int, outFeatures: Int)
  /// [N, H, W, C] → [N, Ho, Wo, O]; Ho = (H + 2p − k)/s + 1.
  case conv(inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int)
}

/// One integer layer: packed weight codes W [O, fanIn], its accumulator and its output map.
///
///     z[n, o]  = Σ_t W[o, t] · x[n, t]         (x: input codes; conv: im2col rows, columns ordered (ky, kx, c))
///     v        = wrap_b(z) (wrap, cyclic), clamp_b(z) (clamp), z (exact)
///     out      = output(v, channel o)            (table, thresholds or logits)
public struct DenseLayer: Sendable, Equatable {
  /// Layer name as in the trainer ("input", "fc2", "conv3", "logits").
  public var name: String
  /// Shape of the dot products.
  public var geometry: DenseGeometry
  /// Weight codes packed for `wrapGEMM`, [O, fanIn].
  public var weights: PackedWeights
  /// Accumulator width b (32 for exact).
  public var accumulatorWidth: AccumulatorWidth
  /// Accumulator semantics.
  public var accumulatorMode: EngineAccumulatorMode
  /// Output map.
  public var output: DenseOutput
  /// Largest output code (table / thresholds outputs; 0 for logits).
  public var maxOutputCode: Int
  /// The fastest kernel this layer has on this CPU, chosen by the loader (`LayerKernel`): `.gemm` unless the
  /// avx2 path has a kernel made for the layer's weights and shape. `InferenceRunner` falls back to `.gemm` where
  /// the options rule that kernel out (another path, wider lanes). Until the loader sets it: the reference GEMM,
  /// which runs anywhere.
  public var kernel: LayerKernel = .gemm(lanes: 32, path: .reference)

  /// Accumulator width b in bits (`accumulatorWidth.bits`).
  public var accumulatorBits: Int { accumulatorWidth.bits }
  /// Whether the accumulator is a b-bit wrap-around register run by `wrapGEMM(bits: b)`.
  public var wrapsAround: Bool { (accumulatorMode == .wrap || accumulatorMode == .cyclic) && accumulatorBits < 32 }
  /// Whether this is a low-bit layer (its accumulator has fewer than 32 bits and is not exact).
  public var isLowBit: Bool { accumulatorMode != .exact && accumulatorBits < 32 }
  /// Output channels O.
  public var outChannels: Int { weights.m }
  /// Whether the output reads a residual block's saved input (the block's last layer).
  public var readsShortcut: Bool {
    switch output {
    case .residualTable, .residualThresholds: return true
    case .float(let f): return f.shortcut != nil
    case .table, .thresholds, .logits: return false
    }
  }
}

/// One step of an integer network.
public enum InferenceOperation: Sendable, Equatable {
  /// A linear or convolution layer with its accumulator and output map.
  case dense(DenseLayer)
  /// Max pooling of activation codes over k×k windows with stride s (no padding).
  case maxPool(kernel: Int, stride: Int)
  /// Flatten [H, W, C] → [H·W·C] (NHWC order; a no-op on the engine's buffers).
  case flatten
  /// Keep the current codes [H, W, C] as the input of a residual block; the block's last dense layer (a
  /// `residualTable` or `residualThresholds` output) reads them.
  case saveShortcut
  /// Sum the codes of each channel over all H·W positions: [H, W, C] → [C] (the loader checks that the sums
  /// fit a `UInt8` code).
  case sumPool
  /// Replace every current code c by `codes[c]` (256 entries; those above the incoming codes' maximum are 0): a
  /// residual block's first convolution reading the block input at its own code step. A saved shortcut keeps the
  /// codes it saved.
  case recode(codes: [UInt8])
}

/// An integer-only network loaded from a packed engine model (`wrapnet convert`): pixels (UInt8) in, logits out.
///
/// Activations are UInt8 codes in NHWC order; a linear layer after a spatial tensor reads it flattened as
/// (h, w, c), and the converter permutes the trainer's (c, h, w) weight columns accordingly. Convolutions use an
/// integer im2col whose columns are ordered (ky, kx, c) with zero padding (code 0 adds nothing).
public struct InferenceModel: Sendable, Equatable {
  /// Zoo architecture the model came from ("mlp", "cnn").
  public var architecture: String
  /// Input image shape [C, H, W]; pixels are passed NCHW, as datasets store them.
  public var inputShape: [Int]
  /// Number of classes (logits per image).
  public var classes: Int
  /// The steps, in forward order.
  public var operations: [InferenceOperation]
  /// Metadata of the file (format, version, architecture, source config, ...).
  public var metadata: [String: String]

  /// The dense layers, in forward order.
  public var denseLayers: [DenseLayer] {
    operations.compactMap { if case .dense(let d) = $0 { return d } else { return nil } }
  }
}
