import Foundation

/// Range calibration: fits a pretrained model's low-bit sums into the b-bit accumulator before fine-tuning.
///
/// A model trained with 32-bit accumulators has no reason to keep its sums small: with 3-bit activations and a
/// fan-in of 1024, the MNIST `mlp`'s sums spread with an RMS of 83–98 around 0, so 11 % of them leave the 8-bit
/// range [−128, 127] and more fall past the cyclic activation's knee Q = 85 (k = 2). The RMS of a layer's sums
/// is set by the activation codes that feed it, and those by the batch norm before them, which the 32-bit model
/// leaves near γ = 1, β = 0. Fine-tuning with the overflow penalty shrinks them (γ, β) and decorrelates the weights
/// from the inputs, slowly. Calibration does the first part at once:
///
///     for every low-bit layer L fed by  BatchNorm → ActivationCodes (→ MaxPool2D / Flatten)  in the same chain:
///         rms(L) = √(mean z²) of L's exact sums over the calibration images (batch-norm batch statistics)
///         if rms(L) > target · 2^(b−1):   γ, β of that batch norm  ×=  target · 2^(b−1) / rms(L)
///
/// with `target` = 1/3 by default (three RMS fit in the range).
///
/// repeated (at most `rounds` times) until every RMS is within 3 % of its target or below it, since the codes are
/// rounded and clipped, so the RMS is not exactly proportional to the factor. Scaling γ and β by r scales the batch
/// norm's output by r: the activation codes shrink (more zeros, fewer large codes), and the layer's sums with them.
/// Layers whose inputs come from a residual sum (the first convolution of a ResNet block) read codes that also
/// feed the block's shortcut, so no batch norm can narrow them without reweighting the shortcut. `residual`
/// (`ResidualCalibration`) says what happens to them:
///
///     code-step:   the layer reads its input re-coded at a clip c ×= rms(L) / (target · 2^(b−1)), starting from
///                  the activation clip (`ModelConfig.residualInputClips`, `CodeRequantizer`)
///     batch-norm:  γ, β of the batch norm that ends the previous block's body (or the stem's)  ×=  the usual r
///     none:        reported and left alone
///
/// A larger clip makes the layer's input codes coarser and smaller while each code is worth more: the layer's
/// float output (sum × input scale) stays the same up to rounding, only its integer sums shrink, and the shortcut
/// keeps the block input's own codes. Scaling the batch norm instead shrinks the previous body's output against
/// its shortcut, and coarsens the codes that every later block reads.
///
/// A model with accumulator preloads (`ModelConfig.accumulatorPreload`) has them set at every measurement:
///
///     p[c] = −round(mean of channel c's sums),   clamped to [−2^(b−1), 2^(b−1)−1]
///
/// and rms(L) is then the RMS of the register contents z + p[c]: the spread of each channel's sums around its own
/// mean, which is what a preloaded register has to hold. Calibration then shrinks only that spread.
///
/// When any batch norm was scaled, every batch norm's running statistics are then re-estimated over the first
/// batches in training mode (an exact average, not a moving one), so the calibrated model can be evaluated as it is.
///
/// Deterministic: the calibration images are the first images of the training set in their stored order, without
/// augmentation, and every forward is independent of the thread count.
public enum RangeCalibration {
  /// How layers fed by a residual sum are calibrated (see `RangeCalibration`).
  public enum ResidualCalibration: String, Sendable, Codable, CaseIterable {
    case none
    case codeStep = "code-step"
    case batchNorm = "batch-norm"
  }

  /// What calibration did to one low-bit layer.
  public struct LayerResult: Sendable, Equatable, Codable {
    /// The low-bit layer, e.g. "fc2".
    public var name: String
    /// The batch norm that was scaled (nil: the layer's input cannot be scaled, see `RangeCalibration`).
    public var batchNorm: String?
    /// RMS of the layer's exact sums before and after calibration.
    public var rmsBefore: Double
    public var rmsAfter: Double
    /// The RMS calibration aims at: target · 2^(b−1) (by default 2^(b−1) / 3).
    public var target: Double
    /// The factor γ and β of `batchNorm` were multiplied by, or with `inputClip` the factor the layer's input
    /// codes were scaled by (activation clip / input clip); 1: unchanged.
    public var factor: Double
    /// `code-step`: the clip at which this residual-fed layer reads its input (`ModelConfig.residualInputClips`);
    /// nil for layers calibrated through a batch norm or not at all.
    public var inputClip: Double?
    /// With accumulator preloads: their RMS over the layer's channels, √(mean p[c]²) (`rmsAfter` is then the RMS of
    /// the register contents z + p[c]); nil without preloads.
    public var preloadRMS: Double?

    enum CodingKeys: String, CodingKey {
      case name
      case batchNorm = "batch_norm"
      case rmsBefore = "rms_before"
      case rmsAfter = "rms_after"
      case target, factor
      case inputClip = "input_clip"
      case preloadRMS = "preload_rms"
    }
  }

  /// Measure–scale rounds at most.
  public static let rounds = 5

  /// Calibrates `model` in place on the first `calibrationImages` images of `train` (see the type's
  /// documentation); when it scaled any batch norm, it then re-estimates the batch-norm statistics over
  /// `reestimationBatches` batches of `batchSize`; a model whose sums all fit is left exactly as it was. Returns one result per low-bit layer, in forward order. A model without low-bit layers (a 32-bit
  /// model) or a training set of fewer than 2 images leaves the model unchanged and returns no results.
  public static func calibrate(
    _ model: inout WrapModel, train: ImageDataset, target: Double = defaultTarget, batchSize: Int = 128,
    calibrationImages: Int = 512, reestimationBatches: Int = 40, residual: ResidualCalibration = .none
  ) throws -> [LayerResult] {
    precondition(target > 0 && target <= 1, "RangeCalibration: target \(target) must be in (0, 1]")
    let targets = lowBitTargets(model, fraction: target)
    let lowBit = targets.map(\.name)
    let targetRMS = Dictionary(uniqueKeysWithValues: targets)
    guard !lowBit.isEmpty, train.count >= 2, calibrationImages >= 2, batchSize >= 2 else { return [] }
    let calibration = batches(train, images: calibrationImages, batchSize: calibrationImages)[0]
    // Measuring runs training-mode forwards, which move the running statistics: a model that needs no scaling is
    // given back exactly as it came.
    let original = model

    // The scalable batch norm of each low-bit layer, by path (see `feedingBatchNorms`), and the block index of
    // each residual-fed layer.
    let feeds = feedingBatchNorms(model.network, prefix: "", residual: residual == .batchNorm)
    let blocks = residual == .codeStep ? residualFedLayers(model.network) : [:]
    let startClips = model.config.residualInputClips
      ?? [Float](repeating: model.config.activationClip, count: blocks.isEmpty ? 0 : ModelConfig.residualBlockCount)
    var clips = startClips
    var factor: [String: Double] = [:]
    let before = sumRMS(&model, images: calibration.images, layers: lowBit)
    var rms = before
    let preloaded = model.config.accumulatorPreload
    if preloaded { rms = sumRMS(&model, images: calibration.images, layers: lowBit, settingPreloads: true) }
    for _ in 0..<rounds {
      var changed = false
      for name in lowBit {
        guard feeds[name] != nil || blocks[name] != nil, let r = rms[name], let target = targetRMS[name] else { continue }
        let have = factor[name] ?? 1
        // Aim at the target, never above a factor of 1 overall (calibration only shrinks).
        let want = min(1, have * target / max(r, 1e-9))
        if r > target * 1.03 || (want > have * 1.03 && have < 1) {
          if let bn = feeds[name] {
            scaleBatchNorm(&model.network, path: bn, by: Float(want / have))
          } else if let k = blocks[name] {
            clips[k] = startClips[k] / Float(want)
          }
          factor[name] = want
          changed = true
        }
      }
      if !changed { break }
      if !blocks.isEmpty, clips != (model.config.residualInputClips ?? startClips) {
        model = try model.withResidualInputClips(clips)
      }
      rms = sumRMS(&model, images: calibration.images, layers: lowBit, settingPreloads: preloaded)
    }
    var preloads: [String: Tensor] = [:]
    model.network.visitWrapLayers { if let p = $0.preload { preloads[$0.name] = p } }
    // A layer's preloads were set from sums computed with the previous preloads upstream (which change what a
    // low-bit register passes on): measure again until they stay the same, so the results describe the model.
    for _ in 0..<(preloaded ? rounds : 0) {
      rms = sumRMS(&model, images: calibration.images, layers: lowBit, settingPreloads: true)
      var now: [String: Tensor] = [:]
      model.network.visitWrapLayers { if let p = $0.preload { now[$0.name] = p } }
      if now == preloads { break }
      preloads = now
    }
    if factor.values.contains(where: { $0 < 1 }) {
      reestimateBatchNorms(&model, train: train, batchSize: batchSize, batches: reestimationBatches)
      model.resetStatistics()
    } else {
      // Nothing was scaled: the model as it came, with its preloads set.
      model = original
      model.network.visitWrapLayers { if let p = preloads[$0.name] { $0.preload = p } }
    }
    return lowBit.map { name in
      LayerResult(
        name: name, batchNorm: feeds[name], rmsBefore: before[name] ?? 0, rmsAfter: rms[name] ?? 0,
        target: targetRMS[name]!, factor: factor[name] ?? 1, inputClip: blocks[name].map { Double(clips[$0]) },
        preloadRMS: preloads[name].map { p in (p.data.reduce(0) { $0 + Double($1) * Double($1) } / Double(max(p.count, 1))).squareRoot() })
    }
  }

  /// The first convolution of each residual block, keyed by name, with the block's index in forward order (its
  /// entry in `ModelConfig.residualInputClips`).
  static func residualFedLayers(_ chain: Sequential) -> [String: Int] {
    var out: [String: Int] = [:]
    var k = 0
    for entry in chain.layers {
      guard let block = entry.layer as? ResidualBlock else { continue }
      if let first = block.body.layers.first(where: { $0.layer is WrapLayer })?.layer as? WrapLayer {
        out[first.name] = k
      }
      k += 1
    }
    return out
  }

  /// The default target RMS, as a fraction of 2^(b−1): three RMS fit in the range.
  public static let defaultTarget = 1.0 / 3

  /// The low-bit layers (accumulators narrower than 32 bits) in forward order, each with its target RMS
  /// `fraction` · 2^(b−1) for its accumulator width b.
  static func lowBitTargets(_ model: WrapModel, fraction: Double) -> [(name: String, target: Double)] {
    var model = model
    var out: [(name: String, target: Double)] = []
    model.network.visitWrapLayers {
      if $0.accumulator.isLowBit { out.append(($0.name, Double(1 << ($0.accumulator.bits - 1)) * fraction)) }
    }
    return out
  }

  /// For every WrapLayer of `chain` (and of the residual blocks' bodies), the path of the batch norm that feeds
  /// it through activation codes and shape-only layers within the same chain, keyed by the WrapLayer's name.
  /// Paths are layer names joined by "/" (e.g. "bn2", "stage1.block1/bn1").
  ///
  /// With `residual`, the first convolution of a residual block (fed by the block input) is given the batch norm
  /// that ends the layer before the block: the last one of the previous block's body (scaling it reweights that
  /// block's body against its shortcut) or the stem's.
  static func feedingBatchNorms(_ chain: Sequential, prefix: String, residual: Bool = false) -> [String: String] {
    var out: [String: String] = [:]
    for (i, entry) in chain.layers.enumerated() {
      if let block = entry.layer as? ResidualBlock {
        out.merge(feedingBatchNorms(block.body, prefix: prefix + entry.name + "/", residual: residual)) { a, _ in a }
        if residual, let first = block.body.layers.first(where: { $0.layer is WrapLayer })?.layer as? WrapLayer,
          out[first.name] == nil,
          let feed = batchNormBefore(chain, index: i, prefix: prefix, throughResidualBlock: true)
        {
          out[first.name] = feed
        }
        continue
      }
      guard let wrap = entry.layer as? WrapLayer else { continue }
      if let feed = batchNormBefore(chain, index: i, prefix: prefix, throughResidualBlock: false) {
        out[wrap.name] = feed
      }
    }
    return out
  }

  /// The path of the batch norm whose output reaches layer `index` of `chain` through activation codes and
  /// shape-only layers, or (with `throughResidualBlock`) that ends the body of a residual block found on the way;
  /// nil when there is none.
  static func batchNormBefore(_ chain: Sequential, index: Int, prefix: String, throughResidualBlock: Bool) -> String? {
    var j = index - 1
    while j >= 0 {
      let previous = chain.layers[j]
      if previous.layer is BatchNorm { return prefix + previous.name }
      if throughResidualBlock, let block = previous.layer as? ResidualBlock {
        guard let bn = block.body.layers.last(where: { $0.layer is BatchNorm }) else { return nil }
        return prefix + previous.name + "/" + bn.name
      }
      guard previous.layer is ActivationCodes || previous.layer is MaxPool2D || previous.layer is Flatten else {
        return nil
      }
      j -= 1
    }
    return nil
  }

  /// Multiplies γ and β of the batch norm at `path` by `factor`.
  static func scaleBatchNorm(_ chain: inout Sequential, path: String, by factor: Float) {
    let parts = path.split(separator: "/", maxSplits: 1).map(String.init)
    guard let i = chain.layers.firstIndex(where: { $0.name == parts[0] }) else {
      preconditionFailure("RangeCalibration: no layer '\(parts[0])'")
    }
    if parts.count == 2 {
      guard var block = chain.layers[i].layer as? ResidualBlock else {
        preconditionFailure("RangeCalibration: '\(parts[0])' is not a residual block")
      }
      scaleBatchNorm(&block.body, path: parts[1], by: factor)
      chain.layers[i].layer = block
      return
    }
    guard var bn = chain.layers[i].layer as? BatchNorm else {
      preconditionFailure("RangeCalibration: '\(path)' is not a batch norm")
    }
    for c in 0..<bn.channels {
      bn.gamma.data[c] *= factor
      bn.beta.data[c] *= factor
    }
    chain.layers[i].layer = bn
  }

  /// √(mean z²) of each named layer's exact sums for one training-mode forward of `images`. With
  /// `settingPreloads`, each named layer that has a preload first gets p[c] = −round(mean of channel c's sums)
  /// (clamped to the register's range), and the RMS is that of z + p[c].
  static func sumRMS(
    _ model: inout WrapModel, images: Tensor, layers: [String], settingPreloads: Bool = false
  ) -> [String: Double] {
    let wanted = Set(layers)
    model.network.visitWrapLayers { if wanted.contains($0.name) { $0.keepSums = true } }
    _ = model.forward(images, phase: .training)
    var out: [String: Double] = [:]
    model.network.visitWrapLayers { layer in
      guard wanted.contains(layer.name), let z = layer.lastSums else { return }
      // z: [N, C] or [N, C, H, W]; offset[c] is added to every sum of channel c.
      let channels = z.shape[1]
      let plane = z.count / (z.shape[0] * channels)
      var offset = [Double](repeating: 0, count: channels)
      if settingPreloads, layer.preload != nil {
        var mean = [Double](repeating: 0, count: channels)
        for (i, v) in z.data.enumerated() { mean[i / plane % channels] += Double(v) }
        let (lo, hi) = (Double(layer.accumulator.minValue), Double(layer.accumulator.maxValue))
        let perChannel = Double(z.count / channels)
        offset = mean.map { min(max(-($0 / perChannel).rounded(), lo), hi) }
        layer.preload = Tensor(shape: [channels], data: offset.map { Float($0) })
      }
      var sum = 0.0
      for (i, v) in z.data.enumerated() {
        let m = Double(v) + offset[i / plane % channels]
        sum += m * m
      }
      out[layer.name] = (sum / Double(max(z.count, 1))).squareRoot()
      layer.keepSums = false
    }
    return out
  }

  /// Replaces every batch norm's running mean and variance by their average over the first `batches` batches of
  /// `train` (training-mode forwards with momentum 1/t for batch t).
  public static func reestimateBatchNorms(_ model: inout WrapModel, train: ImageDataset, batchSize: Int, batches count: Int) {
    let list = batches(train, images: count * batchSize, batchSize: batchSize)
    var saved: [Float] = []
    visitBatchNorms(&model.network) { saved.append($0.momentum) }
    for (t, batch) in list.enumerated() where batch.labels.count >= 2 {
      visitBatchNorms(&model.network) { $0.momentum = 1 / Float(t + 1) }
      _ = model.forward(batch.images, phase: .training)
    }
    var k = 0
    visitBatchNorms(&model.network) { bn in
      bn.momentum = saved[k]
      k += 1
    }
    model.resetStatistics()
  }

  /// Every batch norm of `chain` and of its residual blocks' bodies, in forward order.
  static func visitBatchNorms(_ chain: inout Sequential, _ visit: (inout BatchNorm) -> Void) {
    for i in chain.layers.indices {
      if var bn = chain.layers[i].layer as? BatchNorm {
        visit(&bn)
        chain.layers[i].layer = bn
      } else if var block = chain.layers[i].layer as? ResidualBlock {
        visitBatchNorms(&block.body, visit)
        chain.layers[i].layer = block
      }
    }
  }

  /// The first `images` images of `train` (stored order, no augmentation) in batches of `batchSize`; a last
  /// batch of one image is dropped (batch norm needs two).
  static func batches(_ train: ImageDataset, images: Int, batchSize: Int) -> [ImageBatch] {
    let subset = train.subset(first: min(images, train.count))
    let pipeline = DataPipeline(
      images: subset.images, labels: subset.labels, count: subset.count, channels: subset.channels,
      height: subset.height, width: subset.width, batchSize: min(batchSize, subset.count), shuffle: false,
      dropLast: false, minimumLastBatch: 2, seed: 0, scaling: .raw, augmentation: .none)
    return Array(pipeline.epoch(0))
  }
}
