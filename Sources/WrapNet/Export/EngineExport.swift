import Foundation
import WrapNetEngine

/// Why a model cannot be converted into a packed engine model.
public struct EngineExportError: Error, CustomStringConvertible, Sendable {
  /// What is not supported or wrong, and what to do.
  public var message: String
  /// An error with `message`.
  public init(message: String) { self.message = message }
  /// The message.
  public var description: String { message }
}

/// Converts a trained `WrapModel` into the packed engine format (`docs/FORMAT.md`) read by `InferenceModel`.
///
/// Every number the engine needs is computed here with the trainer's own Float functions, so the integer engine
/// reproduces the trainer's `.evaluation` forward bit for bit:
/// - low-bit layers (wrap, cyclic, clamp; b <= 12): a per-channel table over every accumulator value v in
///   [-2^(b-1), 2^(b-1)-1]: `act.code(bn.normalize(value: acc.apply(Float(v)) * scale[c] + 0, channel: c))`,
///   with `scale[c] = scales[c] * inputScale` (one Float multiplication, as in `WrapLayer.forward`);
/// - 32-bit layers followed by batch norm and activation codes: per-channel integer thresholds where each code
///   level starts (`thresholds(levels:descending:code:)`);
/// - the last layer of a residual block: the same, per shortcut code s, with `+ Float(s) * inputScale` added
///   after batch norm (`residualCodeFunction`), as a [C, S, 2^b] table or [C, S, levels] thresholds;
/// - the last layer: `scale[c]` and `bias[c]`, so that logits are `Float(z) * scale[c] + bias[c]`.
///
/// - low-bit layers with b > 12 (or a residual table over its size limit): the BN parameters, scale and
///   activation clip, so that the engine evaluates the same Float functions per value (`FloatOutput`);
///
/// - a sum pool whose sums exceed a byte (resnet20 with 3-bit activations: up to 7 · 49 or 7 · 64): a flatten, and
///   the logits layer's weight row repeated once per position, z = Σ_p W · x[p] = W · Σ_p x[p] (exact sums).
///
/// Supported: every zoo model (`mlp`, `cnn`, `vgg-small`, `resnet20`) with
/// exact, wrap, cyclic, clamp or avoid accumulators of any width and a wide (32-bit) last layer. Rejected with an
/// `EngineExportError`: `saturate` accumulators, low-bit last layers, low-bit sums the trainer cannot compute
/// exactly in Float (beyond 2^24).
public enum EngineExport {
  /// Where each of the `levels` code levels starts, for a map `code` from the integer sums z a layer can reach,
  /// `range` (a sub-range of [Int32.min, Int32.max]; only these sums are evaluated), to codes 0...levels that is
  /// monotone on `range`: non-decreasing (`descending == false`) or non-increasing (`descending == true`).
  ///
  ///     ascending:  t[L] = min { z in range : code(z) >= L }   (Int32.max + 1 when no z reaches L)
  ///                 code(z) = #{ L : z >= t[L] }  for every z in range
  ///     descending: t[L] = max { z in range : code(z) >= L }   (Int32.min - 1 when no z reaches L)
  ///                 code(z) = #{ L : z <= t[L] }  for every z in range
  ///
  /// Binary search: at most 32 evaluations of `code` per level. Returns t[1...levels] as `[Int64]`.
  public static func thresholds(
    levels: Int, descending: Bool, range: ClosedRange<Int64> = Int64(Int32.min)...Int64(Int32.max),
    code: (Int64) -> Int
  ) -> [Int64] {
    precondition(levels >= 1, "thresholds: levels must be >= 1, got \(levels)")
    precondition(
      range.lowerBound >= Int64(Int32.min) && range.upperBound <= Int64(Int32.max),
      "thresholds: range \(range) must lie within [Int32.min, Int32.max]")
    let lo = range.lowerBound, hi = range.upperBound
    let never = descending ? Int64(Int32.min) - 1 : Int64(Int32.max) + 1
    var out: [Int64] = []
    out.reserveCapacity(levels)
    for level in 1...levels {
      if descending {
        // Largest z with code(z) >= level: the predicate holds on a prefix [lo, t].
        if code(lo) < level { out.append(never); continue }
        var (a, b) = (lo, hi)  // invariant: code(a) >= level; answer in [a, b]
        while a < b {
          let mid = a + (b - a + 1) / 2
          if code(mid) >= level { a = mid } else { b = mid - 1 }
        }
        out.append(a)
      } else {
        // Smallest z with code(z) >= level: the predicate holds on a suffix [t, hi].
        if code(hi) < level { out.append(never); continue }
        var (a, b) = (lo, hi)  // invariant: code(b) >= level; answer in [a, b]
        while a < b {
          let mid = a + (b - a) / 2
          if code(mid) >= level { b = mid } else { a = mid + 1 }
        }
        out.append(a)
      }
    }
    return out
  }

  /// The trainer's map from a hidden layer's accumulator value (or exact sum) to the next activation code for
  /// channel `channel`: `act.code(bn.normalize(value: acc.apply(Float(z)) * scale + 0, channel: c))`, with the same
  /// Float operations as `WrapLayer.forward` → `BatchNorm` (evaluation) → `ActivationCodes`. With a `preload` p the
  /// register holds z + p: `acc.apply(Float(z + p)) − Float(p)` replaces `acc.apply(Float(z))`. For wrap-around
  /// accumulators acc.apply(z + p) depends on z only modulo 2^b, so the map of the wrapped sum is the map of z.
  public static func codeFunction(
    accumulator: Accumulator, scale: Float, batchNorm: BatchNorm, activation: ActivationCodes, channel: Int,
    preload: Int64? = nil
  ) -> (Int64) -> Int {
    codeMap(accumulator: accumulator, scale: scale, batchNorm: batchNorm, activation: activation, channel: channel,
            added: nil, preload: preload)
  }

  /// The trainer's map from the last layer of a residual block to the block's output code, for channel `channel`
  /// and shortcut code `shortcut`: `act.code(bn.normalize(value: acc.apply(Float(z)) * scale + 0, channel: c) +
  /// Float(shortcut) * inputScale)`, the same Float operations as `WrapLayer.forward` → `BatchNorm` (evaluation)
  /// → `ResidualBlock` (sum with the shortcut) → `ActivationCodes`. Channels the shortcut does not reach use 0.
  public static func residualCodeFunction(
    accumulator: Accumulator, scale: Float, batchNorm: BatchNorm, activation: ActivationCodes, channel: Int,
    shortcut: Int, inputScale: Float, preload: Int64? = nil
  ) -> (Int64) -> Int {
    codeMap(accumulator: accumulator, scale: scale, batchNorm: batchNorm, activation: activation, channel: channel,
            added: Float(shortcut) * inputScale, preload: preload)
  }

  /// Both maps above: `added` (the shortcut's value) is summed after batch norm when given; plain layers add
  /// nothing at all (not even 0, which would turn -0 into +0 before the quantizer).
  private static func codeMap(
    accumulator: Accumulator, scale: Float, batchNorm: BatchNorm, activation: ActivationCodes, channel: Int,
    added: Float?, preload: Int64?
  ) -> (Int64) -> Int {
    let q = UnsignedActivationQuantizer(bits: activation.bits, clip: activation.clip)
    return { z in
      // As `Accumulator.applyScaled`: the preload is taken off after the accumulator (integers: exact in Float).
      let y = preload.map { accumulator.apply(Float(z + $0)) - Float($0) } ?? accumulator.apply(Float(z))
      let bias: Float = 0  // WrapLayer adds `bias ?? 0` after scaling; kept so -0 becomes +0 exactly as there.
      let out = y * scale + bias
      let n = batchNorm.normalize(value: out, channel: channel)
      return Int(q.code(added.map { n + $0 } ?? n))
    }
  }

  /// The packed engine model of `model` (see the type's documentation). Throws `EngineExportError` for models the
  /// engine does not support.
  public static func packedFile(for model: WrapModel) throws -> SafeTensorsFile {
    let cfg = model.config
    var writer = PackedWriter(c: cfg.inputChannels, h: cfg.inputHeight, w: cfg.inputWidth)
    let layers = model.network.layers
    var i = 0
    while i < layers.count {
      let (name, layer) = layers[i]
      if layer is Flatten {
        writer.flattened = (writer.c, writer.h, writer.w)
        (writer.c, writer.h, writer.w) = (writer.c * writer.h * writer.w, 1, 1)
        writer.descriptors.append(PackedLayerDescriptor(name: name, kind: "flatten"))
        i += 1
        continue
      }
      if let pool = layer as? MaxPool2D {
        (writer.h, writer.w) = ((writer.h - pool.kernel) / pool.stride + 1, (writer.w - pool.kernel) / pool.stride + 1)
        writer.descriptors.append(PackedLayerDescriptor(name: name, kind: "maxpool", kernel: pool.kernel, stride: pool.stride))
        i += 1
        continue
      }
      if layer is GlobalSumPool {
        let plane = writer.h * writer.w
        let sumMax = writer.maxCode * plane
        if sumMax <= 255 {
          (writer.h, writer.w, writer.maxCode) = (1, 1, sumMax)
          writer.descriptors.append(PackedLayerDescriptor(name: name, kind: "sumpool"))
        } else {
          // The sums do not fit the engine's byte codes. The last layer is exact, so W · Σ_p x[p] = Σ_p W · x[p]:
          // flatten instead, and the next linear layer repeats its weights once per position (`dense`).
          guard i + 1 == layers.count - 1, layers[i + 1].layer is WrapLayer else {
            throw EngineExportError(
              message: "layer '\(name)': sums of \(plane) activation codes up to \(writer.maxCode) reach \(sumMax), more than a byte, and only a sum pool right before the logits layer can be folded into it")
          }
          writer.summedPlane = plane
          (writer.c, writer.h, writer.w) = (writer.c * plane, 1, 1)
          writer.descriptors.append(PackedLayerDescriptor(name: name, kind: "flatten"))
        }
        i += 1
        continue
      }
      if let block = layer as? ResidualBlock {
        try writer.residualBlock(name: name, block)
        i += 1
        continue
      }
      guard let wrap = layer as? WrapLayer else {
        throw EngineExportError(message: "layer '\(name)' (\(type(of: layer))) is not supported by the engine")
      }
      if i + 2 < layers.count, let bn = layers[i + 1].layer as? BatchNorm, let act = layers[i + 2].layer as? ActivationCodes {
        try writer.dense(wrap, name: name, then: .codes(bn, act))
        i += 3
        continue
      }
      guard i == layers.count - 1 else {
        throw EngineExportError(
          message: "layer '\(name)' is neither followed by batch norm and activation codes nor the last layer; the engine cannot run it")
      }
      try writer.dense(wrap, name: name, then: .logits)
      i += 1
    }
    guard writer.descriptors.last?.output == "logits" else {
      throw EngineExportError(message: "the model does not end with a logits layer")
    }
    var file = writer.file
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    file.metadata["format"] = PackedModelFormat.name
    file.metadata["format_version"] = writer.descriptors.contains { $0.kind == "recode" }
      ? PackedModelFormat.version : PackedModelFormat.versionWithoutRecode
    file.metadata["architecture"] = cfg.architecture
    file.metadata["input_shape"] = "[\(cfg.inputChannels),\(cfg.inputHeight),\(cfg.inputWidth)]"
    file.metadata["classes"] = String(cfg.classes)
    file.metadata["layers"] = String(decoding: try encoder.encode(writer.descriptors), as: UTF8.self)
    file.metadata["source_config"] = String(decoding: try encoder.encode(cfg), as: UTF8.self)
    try verify(file, against: writer.checks)
    return file
  }

  /// Reads the checkpoint at `checkpoint`, converts it and writes the packed model atomically to `output`.
  /// Returns the packed file. Throws `CheckpointError`, `EngineExportError` or `FileError`.
  @discardableResult
  public static func convert(checkpoint: String, to output: String) throws -> SafeTensorsFile {
    try convert(Checkpoint.load(from: checkpoint).model, checkpoint: checkpoint, to: output)
  }

  /// Converts `model`, read from the checkpoint at `checkpoint` (named in errors), and writes the packed model
  /// atomically to `output`. Returns the packed file.
  @discardableResult
  public static func convert(_ model: WrapModel, checkpoint: String, to output: String) throws -> SafeTensorsFile {
    let file: SafeTensorsFile
    do { file = try packedFile(for: model) } catch let e as EngineExportError {
      throw EngineExportError(message: "\(checkpoint): \(e.message)")
    }
    try file.write(to: output)
    return file
  }
}

/// Builds the packed file layer by layer while tracking the activation shape (c, h, w) and largest code.
private struct PackedWriter {
  /// What follows a dense layer.
  enum Next {
    /// Batch norm and activation codes: a table (low-bit) or thresholds (32-bit).
    case codes(BatchNorm, ActivationCodes)
    /// Batch norm, the sum with a residual block's shortcut, and the block's activation codes.
    case residual(BatchNorm, ActivationCodes, Shortcut, inputScale: Float)
    /// Nothing: the layer produces the logits.
    case logits
  }

  var c: Int, h: Int, w: Int
  /// Largest activation code flowing (raw pixels: 255).
  var maxCode = 255
  /// The spatial shape a flatten consumed (for the linear layer that follows it).
  var flattened: (c: Int, h: Int, w: Int)? = nil
  /// Positions of a sum pool flattened instead (its sums exceed a byte): the next linear layer repeats its weight
  /// columns once per position, so it computes Σ_p W · x[p] = W · Σ_p x[p].
  var summedPlane: Int? = nil
  var descriptors: [PackedLayerDescriptor] = []
  var file = SafeTensorsFile()
  /// The trainer's post-processing of every layer that produces codes, for `EngineExport.verify`.
  var checks: [EngineExport.LayerCheck] = []

  init(c: Int, h: Int, w: Int) {
    (self.c, self.h, self.w) = (c, h, w)
  }

  /// A CIFAR ResNet basic block: `shortcut`, (recode,) conv1 → bn1 → act1 (codes), conv2 → bn2 → + shortcut →
  /// codes.
  mutating func residualBlock(name: String, _ block: ResidualBlock) throws {
    let recode = block.body.layers.first?.layer as? CodeRequantizer
    let l = Array(block.body.layers.dropFirst(recode == nil ? 0 : 1))
    guard l.count == 5, let conv1 = l[0].layer as? WrapLayer, let bn1 = l[1].layer as? BatchNorm,
      let act1 = l[2].layer as? ActivationCodes, let conv2 = l[3].layer as? WrapLayer,
      let bn2 = l[4].layer as? BatchNorm
    else {
      throw EngineExportError(message: "residual block '\(name)' is not (recode →) conv → bn → act → conv → bn; the engine cannot run it")
    }
    guard block.inChannels == c else {
      throw EngineExportError(message: "residual block '\(name)' expects \(block.inChannels) input channels, the previous layer gives \(c)")
    }
    let shortcut = Shortcut(
      stride: block.stride, channels: block.inChannels, padBefore: (block.outChannels - block.inChannels) / 2,
      codes: maxCode + 1)
    descriptors.append(PackedLayerDescriptor(name: "\(name).shortcut", kind: "shortcut"))
    if let recode {
      // The trainer's map of every incoming code, computed as `CodeRequantizer.forward` computes it; an identity
      // map (the input clip equal to the input's) is left out.
      let q = UnsignedActivationQuantizer(bits: recode.output.bits, clip: recode.output.clip)
      let map = (0...maxCode).map { q.code(Float($0) * recode.inputScale) }
      if map != (0...maxCode).map({ UInt8($0) }) {
        var d = PackedLayerDescriptor(name: "\(name).recode", kind: "recode")
        d.activationBits = recode.output.bits
        descriptors.append(d)
        file.tensors["\(name).recode.codes"] = SafeTensor(shape: [map.count], values: map)
        maxCode = recode.output.maxCode
      }
    }
    try dense(conv1, name: conv1.name, then: .codes(bn1, act1))
    try dense(conv2, name: conv2.name, then: .residual(bn2, block.output, shortcut, inputScale: block.inputScale))
  }

  /// One linear or convolution layer with what follows it; appends its descriptor and tensors.
  mutating func dense(_ wrap: WrapLayer, name: String, then next: Next) throws {
    let acc = wrap.accumulator
    if acc.mode == .saturate && acc.bits < 32 {
      throw EngineExportError(
        message: "layer '\(name)' uses a saturate accumulator, whose result depends on the order of summation; the engine does not support it (use wrap, cyclic, clamp or exact)")
    }
    if acc.isLowBit && !wrap.float32IsExact {
      throw EngineExportError(
        message: "layer '\(name)': low-bit accumulator on sums that can exceed 2^24, where the trainer's Float sums are not exact; the engine cannot reproduce it")
    }
    let bound = Double(wrap.geometry.fanIn) * Double(wrap.maxInputCode) * Double(wrap.weightFormat.maxCode)
    if bound >= 2_147_483_648 {
      throw EngineExportError(message: "layer '\(name)': exact sums can reach \(Int(bound)), beyond 32 bits")
    }
    // |z| <= reach for every input: the sums the post-processing is computed (and verified) for.
    let reach = Int64(bound)
    let (codesF, scales) = wrap.quantizedWeights()
    let outC = wrap.geometry.outChannels
    let fanIn = wrap.geometry.fanIn
    // A folded sum pool: the engine's layer reads positions × fanIn codes (see `summedPlane`).
    let positions = summedPlane ?? 1
    summedPlane = nil
    // Reorder the codes into the engine's NHWC column order.
    var codes = [Int8](repeating: 0, count: codesF.count * positions)
    let kindName: String
    switch wrap.geometry {
    case .conv(let inC, _, let k, let s, let p):
      for o in 0..<outC {
        for ch in 0..<inC {
          for ky in 0..<k {
            for kx in 0..<k {
              codes[o * fanIn + (ky * k + kx) * inC + ch] = Int8(codesF[o * fanIn + (ch * k + ky) * k + kx])
            }
          }
        }
      }
      kindName = "conv"
      (c, h, w) = (outC, (h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1)
    case .linear(let inF, _):
      if let f = flattened, positions == 1, f.c * f.h * f.w == inF, f.h * f.w > 1 {
        // Trainer columns are (c, y, x) of an NCHW flatten; the engine flattens NHWC as (y, x, c).
        for o in 0..<outC {
          for ch in 0..<f.c {
            for y in 0..<f.h {
              for x in 0..<f.w {
                codes[o * fanIn + (y * f.w + x) * f.c + ch] = Int8(codesF[o * fanIn + (ch * f.h + y) * f.w + x])
              }
            }
          }
        }
      } else {
        // Row o: the trainer's row repeated once per summed position (once without a folded sum pool).
        for o in 0..<outC {
          for p in 0..<positions {
            for j in 0..<inF { codes[(o * positions + p) * inF + j] = Int8(codesF[o * inF + j]) }
          }
        }
      }
      kindName = "linear"
      (c, h, w) = (outC, 1, 1)
    }
    let kind: PackedWeights.CodeKind
    switch wrap.weightFormat {
    case .binary: kind = .binary
    case .ternary: kind = .ternary
    case .symmetric(let k): kind = .symmetric(bits: k)
    }
    let scale = (0..<outC).map { scales[$0] * wrap.inputScale }
    let (inputs, kernel, stride, padding): (Int, Int?, Int?, Int?)
    switch wrap.geometry {
    case .conv(let inC, _, let k, let s, let p): (inputs, kernel, stride, padding) = (inC, k, s, p)
    case .linear(let inF, _): (inputs, kernel, stride, padding) = (inF * positions, nil, nil, nil)
    }
    // `avoid` runs on a plain b-bit wrap-around accumulator: its weight constraint means the wrap never acts.
    var d = PackedLayerDescriptor(
      name: name, kind: kindName, inputs: inputs, outputs: outC, kernel: kernel, stride: stride, padding: padding,
      weightFormat: wrap.weightFormat.name, accumulatorBits: acc.isLowBit ? acc.bits : 32,
      accumulatorMode: acc.isLowBit ? (acc.mode == .avoid ? AccumulatorMode.wrap.rawValue : acc.mode.rawValue) : "exact",
      slope: acc.mode == .cyclic ? acc.slope : nil)
    file.tensors["\(name).weight_codes"] = SafeTensor(
      shape: [WeightCodePacking.byteCount(codes: codes.count, kind: kind)],
      values: WeightCodePacking.pack(codes, kind: kind))

    switch next {
    case .codes(let bn, let act), .residual(let bn, let act, _, _):
      guard bn.channels == outC else {
        throw EngineExportError(message: "the batch norm after layer '\(name)' has \(bn.channels) channels, the layer \(outC)")
      }
      d.activationBits = act.bits
      // The residual block's shortcut and the value of one of its codes (nil for plain layers).
      var shortcut: (sc: Shortcut, inputScale: Float)? = nil
      if case .residual(_, _, let sc, let inputScale) = next {
        shortcut = (sc, inputScale)
        d.shortcutStride = sc.stride
        d.shortcutChannels = sc.channels
        d.shortcutPadBefore = sc.padBefore
      }
      let residual = shortcut != nil
      // One code map per (channel, shortcut code); plain layers have a single "shortcut code".
      let shortcutCodes = shortcut?.sc.codes ?? 1
      let preloads = wrap.preload.map { $0.data.map { Int64($0) } }
      // Low-bit outputs too wide for a table: the engine evaluates the same Float functions per value instead.
      let floatOutput = acc.isLowBit
        && (acc.bits > PackedModelFormat.maxTableBits
          || (outC * shortcutCodes) << acc.bits > PackedModelFormat.maxResidualTableEntries)
      func map(_ ch: Int, _ s: Int) -> (Int64) -> Int {
        guard let shortcut else {
          return EngineExport.codeFunction(
            accumulator: acc, scale: scale[ch], batchNorm: bn, activation: act, channel: ch, preload: preloads?[ch])
        }
        return EngineExport.residualCodeFunction(
          accumulator: acc, scale: scale[ch], batchNorm: bn, activation: act, channel: ch, shortcut: s,
          inputScale: shortcut.inputScale, preload: preloads?[ch])
      }
      if let preloads, preloads.contains(where: { $0 != 0 }), acc.isLowBit {
        // The engine reads the preload out of its per-value table: that needs a wrap-around register
        // (wrap(z + p) = wrap(wrap(z) + p)) and a table.
        guard acc.mode == .wrap || acc.mode == .cyclic else {
          throw EngineExportError(
            message: "layer '\(name)' has an accumulator preload with a \(acc.mode.rawValue) accumulator; the engine folds preloads into its tables, which works for wrap-around (wrap, cyclic) accumulators only; fine-tune it with --no-preload to convert it")
        }
        guard !floatOutput else {
          throw EngineExportError(
            message: "layer '\(name)' has an accumulator preload but its output is too wide for a per-value table (\(acc.bits) bits, \(outC * shortcutCodes) rows); the engine folds preloads into tables only")
        }
      }
      checks.append(
        EngineExport.LayerCheck(name: name, channels: outC, shortcutCodes: shortcutCodes, reach: reach, code: map))
      if floatOutput {
        d.output = residual ? "residual_float" : "float"
        d.activationClip = act.clip
        d.shortcutScale = shortcut?.inputScale
        let std = (0..<outC).map { (bn.runningVar.data[$0] + bn.epsilon).squareRoot() }
        file.tensors["\(name).scale"] = SafeTensor(shape: [outC], values: scale)
        file.tensors["\(name).bn_mean"] = SafeTensor(shape: [outC], values: Array(bn.runningMean.data))
        file.tensors["\(name).bn_std"] = SafeTensor(shape: [outC], values: std)
        file.tensors["\(name).bn_gamma"] = SafeTensor(shape: [outC], values: Array(bn.gamma.data))
        file.tensors["\(name).bn_beta"] = SafeTensor(shape: [outC], values: Array(bn.beta.data))
      } else if acc.isLowBit {
        let size = 1 << acc.bits
        var table = [UInt8](repeating: 0, count: outC * shortcutCodes * size)
        for ch in 0..<outC {
          for s in 0..<shortcutCodes {
            let f = map(ch, s)
            let base = (ch * shortcutCodes + s) * size
            for v in 0..<size { table[base + v] = UInt8(f(Int64(v - size / 2))) }
          }
        }
        d.output = residual ? "residual_table" : "table"
        file.tensors["\(name).table"] = SafeTensor(shape: residual ? [outC, shortcutCodes, size] : [outC, size], values: table)
      } else {
        var all: [Int64] = []
        var direction: [Int8] = []
        for ch in 0..<outC {
          // scale > 0 and the BN's std > 0, so the map's direction is the sign of gamma (adding the shortcut's
          // constant does not change it).
          let descending = bn.gamma.data[ch] < 0
          for s in 0..<shortcutCodes {
            all += EngineExport.thresholds(levels: act.maxCode, descending: descending, range: -reach...reach, code: map(ch, s))
          }
          direction.append(descending ? -1 : 1)
        }
        d.output = residual ? "residual_thresholds" : "thresholds"
        file.tensors["\(name).thresholds"] = SafeTensor(
          shape: residual ? [outC, shortcutCodes, act.maxCode] : [outC, act.maxCode], values: all)
        file.tensors["\(name).direction"] = SafeTensor(shape: [outC], values: direction)
      }
      maxCode = act.maxCode
    case .logits:
      guard let bias = wrap.bias else {
        throw EngineExportError(message: "the last layer '\(name)' has no bias; the engine cannot run it")
      }
      guard !acc.isLowBit else {
        throw EngineExportError(
          message: "the last layer '\(name)' has a low-bit accumulator; the engine needs a wide (32-bit) last layer (train with the default wide last layer)")
      }
      d.output = "logits"
      file.tensors["\(name).scale"] = SafeTensor(shape: [outC], values: scale)
      file.tensors["\(name).bias"] = SafeTensor(shape: [outC], values: bias.data)
    }
    descriptors.append(d)
  }
}
