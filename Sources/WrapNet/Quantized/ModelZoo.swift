/// A WrapNet model: the architecture from `ModelConfig`, built from the zoo, as one `Sequential` network.
///
/// Input: raw 8-bit pixels as Float values 0…255, [N, C, H, W]. Output: logits [N, classes].
/// Every hidden layer is `WrapLayer → BatchNorm → ActivationCodes`, so each layer's input is integer codes.
public struct WrapModel: Sendable {
  public var config: ModelConfig
  public var network: Sequential

  /// Builds the zoo architecture named in `config` with weights drawn from `seed`. Throws `ConfigError` for an
  /// invalid configuration or one whose weights and gradients would not fit in the memory available.
  public init(config: ModelConfig, seed: UInt64) throws {
    try config.validate()
    try config.checkMemory(copies: 2, purpose: "building")
    self.config = config
    var rng = SeededGenerator(seed: seed)
    self.network = ModelZoo.build(config, generator: &rng)
    if config.accumulatorPreload {
      let model = self
      network.visitWrapLayers { layer in
        if model.isLowBitLayer(layer.name) { layer.preload = Tensor(shape: [layer.geometry.outChannels]) }
      }
    }
    if let reason = avoidInfeasibility() { throw ConfigError(message: reason) }
  }

  /// Why the low-bit layers cannot meet the `avoid` constraint (binary weights whose fan-in is too large for the
  /// accumulator), or nil when they can or the mode is not `avoid`.
  public mutating func avoidInfeasibility() -> String? {
    var reason: String? = nil
    network.visitWrapLayers { layer in
      if reason == nil { reason = layer.avoidInfeasibility }
    }
    return reason
  }

  /// Under `avoid`: share of the low-bit layers' weight codes that the ‖w‖₁ projection forces to zero (0 otherwise).
  public mutating func avoidForcedZeroShare() -> Double {
    var forced = 0.0, total = 0.0
    network.visitWrapLayers { layer in
      let count = Double(layer.weight.count)
      forced += layer.avoidForcedZeroShare() * count
      total += count
    }
    return total == 0 ? 0 : forced / total
  }

  /// logits [N, classes] for pixels [N, C, H, W] (values 0…255).
  public mutating func forward(_ images: Tensor, phase: Phase) -> Tensor {
    precondition(
      images.shape.count == 4 && images.shape[1] == config.inputChannels && images.shape[2] == config.inputHeight
        && images.shape[3] == config.inputWidth,
      "model '\(config.architecture)' expects [N, \(config.inputChannels), \(config.inputHeight), \(config.inputWidth)], got \(images.shape)")
    return network.forward(images, phase: phase)
  }

  /// Backward from dL/dlogits; accumulates every parameter gradient (and the overflow penalty's).
  public mutating func backward(_ gradLogits: Tensor) {
    _ = network.backward(gradLogits)
  }

  /// Sum of the overflow penalties of the last training forward (λ · Σ max(|z| − 2^(b−1), 0) / N).
  public mutating func penalty() -> Double {
    var p = 0.0
    network.visitWrapLayers { p += $0.penaltyValue }
    return p
  }

  /// Multiply-accumulates per image: (in the low-bit layers, total). The low-bit layers are all but a wide first
  /// and a wide last layer, whatever accumulator they are set to now (so a 32-bit baseline reports the same share).
  public mutating func macCounts() -> (lowBit: Int, total: Int) {
    var low = 0, total = 0
    for (h, w, layer) in wrapLayerInputSizes() {
      let m = layer.macs(height: h, width: w)
      total += m
      if isLowBitLayer(layer.name) { low += m }
    }
    return (low, total)
  }

  /// Whether the layer called `name` is one of the low-bit layers (not a wide first or last layer).
  public func isLowBitLayer(_ name: String) -> Bool {
    !((name == ModelZoo.firstLayerName && config.wideFirstLayer) || (name == ModelZoo.lastLayerName && config.wideLastLayer))
  }

  /// Each WrapLayer with the spatial size of its input, found by a one-image forward pass.
  public mutating func wrapLayerInputSizes() -> [(Int, Int, WrapLayer)] {
    var copy = self
    var sizes: [(Int, Int, WrapLayer)] = []
    copy.network.visitWrapLayers { $0.keepSums = true }
    _ = copy.forward(Tensor(shape: [1, config.inputChannels, config.inputHeight, config.inputWidth]), phase: .evaluation)
    copy.network.visitWrapLayers { layer in
      let s = layer.lastSums!.shape
      // Recover the input size from the output size: conv keeps it (stride 1) or halves it (stride 2).
      switch layer.geometry {
      case .linear: sizes.append((1, 1, layer))
      case .conv(_, _, _, let stride, _): sizes.append((s[2] * stride, s[3] * stride, layer))
      }
    }
    return sizes
  }

  /// Resets every layer's overflow statistics.
  public mutating func resetStatistics() {
    network.visitWrapLayers { $0.resetStatistics() }
  }

  /// Sets the accumulator of every low-bit layer (first and last layers stay as configured).
  public mutating func setLowBitAccumulator(_ accumulator: Accumulator) {
    let model = self
    network.visitWrapLayers { layer in
      if model.isLowBitLayer(layer.name) { layer.accumulator = accumulator }
    }
    config.accumulatorWidth = accumulator.width
    config.accumulatorMode = accumulator.mode
    config.slope = accumulator.slope
  }
}

/// The model zoo: `mlp` and `cnn` for 28×28 images; `vgg-small` and `resnet20` for 32×32 colour images (CIFAR-10)
/// and 28×28 grey ones (MNIST, Fashion-MNIST), built for the configuration's input size (`ModelConfig.validate`).
public enum ModelZoo {
  static let firstLayerName = "input"
  static let lastLayerName = "logits"

  /// Side of vgg-small's last plane for an input side `s`: three 2×2 pools, each ⌊·/2⌋, so ⌊s/8⌋.
  static func vggPlane(_ s: Int) -> Int { s / 8 }

  /// Builds the network for `config` (validated by the caller).
  static func build(_ config: ModelConfig, generator rng: inout SeededGenerator) -> Sequential {
    let actBits = config.activationBits
    let act = ActivationCodes(bits: actBits, clip: config.activationClip)
    let lowFormat = WeightFormat(bits: config.weightBits, ternaryThreshold: config.ternaryThreshold)
    let lowAcc = config.accumulator
    var layers: [(name: String, layer: any Layer)] = []
    var index = 0

    // The first layer sees raw pixels (codes 0…255, one code = 1/255).
    func first(_ g: WrapGeometry) -> WrapLayer {
      let wide = config.wideFirstLayer
      return WrapLayer(
        name: firstLayerName, geometry: g, weightFormat: wide ? .symmetric(bits: 8) : lowFormat,
        accumulator: wide ? .wide : lowAcc, maxInputCode: 255, inputScale: 1 / 255,
        penaltyWeight: wide ? 0 : config.penalty, generator: &rng)
    }
    // `input`: the activation quantizer whose codes the layer reads.
    func low(_ name: String, _ g: WrapGeometry, input: ActivationCodes? = nil) -> WrapLayer {
      let input = input ?? act
      return WrapLayer(
        name: name, geometry: g, weightFormat: lowFormat, accumulator: lowAcc, maxInputCode: input.maxCode,
        inputScale: input.scale, penaltyWeight: config.penalty, generator: &rng)
    }
    func last(_ g: WrapGeometry, maxInputCode: Int, inputScale: Float) -> WrapLayer {
      let wide = config.wideLastLayer
      return WrapLayer(
        name: lastLayerName, geometry: g, weightFormat: wide ? .symmetric(bits: 8) : lowFormat,
        accumulator: wide ? .wide : lowAcc, maxInputCode: maxInputCode, inputScale: inputScale,
        penaltyWeight: wide ? 0 : config.penalty, bias: true, generator: &rng)
    }
    // WrapLayer → BatchNorm → ActivationCodes
    func block(_ layer: WrapLayer, channels: Int) {
      index += 1
      let suffix = layer.name == firstLayerName ? "0" : "\(index)"
      layers.append((layer.name, layer))
      layers.append(("bn\(suffix)", BatchNorm(channels: channels)))
      layers.append(("act\(suffix)", act))
    }
    func conv(_ i: Int, _ o: Int, stride: Int = 1) -> WrapGeometry {
      .conv(inChannels: i, outChannels: o, kernel: 3, stride: stride, padding: 1)
    }

    let c = config.inputChannels, classes = config.classes
    let (h, w) = (config.inputHeight, config.inputWidth)
    // Hidden widths: base · m / d.
    func wide(_ base: Int) -> Int { config.hiddenWidth(base) }
    switch config.architecture {
    case "mlp":
      // 784 → 1024 → 1024 → 1024 → 1024 → classes (times the width factor); three 1024×1024 low-bit layers.
      let width = wide(1024)
      layers.append(("flatten", Flatten()))
      block(first(.linear(inFeatures: c * h * w, outFeatures: width)), channels: width)
      for _ in 0..<3 { block(low("fc\(index + 1)", .linear(inFeatures: width, outFeatures: width)), channels: width) }
      layers.append((lastLayerName, last(.linear(inFeatures: width, outFeatures: classes), maxInputCode: act.maxCode, inputScale: act.scale)))
    case "cnn":
      // Small VGG-style net for 28×28: 16 @28, pool, 32 @14, 64 @14, pool, 64 @7, linear (6.5 M MACs/image,
      // 98% of them in low-bit accumulators). Max pooling acts on activation codes, so it stays integer.
      block(first(conv(c, wide(16))), channels: wide(16))
      layers.append(("pool1", MaxPool2D(kernel: 2, stride: 2)))
      block(low("conv\(index + 1)", conv(wide(16), wide(32))), channels: wide(32))
      block(low("conv\(index + 1)", conv(wide(32), wide(64))), channels: wide(64))
      layers.append(("pool2", MaxPool2D(kernel: 2, stride: 2)))
      block(low("conv\(index + 1)", conv(wide(64), wide(64))), channels: wide(64))
      layers.append(("flatten", Flatten()))
      layers.append((lastLayerName, last(.linear(inFeatures: wide(64) * 7 * 7, outFeatures: classes), maxInputCode: act.maxCode, inputScale: act.scale)))
    case "vgg-small":
      // The VGG-Small of the low-bit CIFAR-10 literature: 128, 128, pool, 256, 256, pool, 512, 512, pool, linear.
      // Each 2×2 pool floors odd sides (its windows do not overlap the edge), so the last plane is ⌊H/8⌋×⌊W/8⌋:
      // 4×4 for 32×32, 3×3 for 28×28 (28 → 14 → 7 → 3; the 7th row and column of the 7×7 plane are dropped).
      block(first(conv(c, wide(128))), channels: wide(128))
      block(low("conv\(index + 1)", conv(wide(128), wide(128))), channels: wide(128))
      layers.append(("pool1", MaxPool2D(kernel: 2, stride: 2)))
      block(low("conv\(index + 1)", conv(wide(128), wide(256))), channels: wide(256))
      block(low("conv\(index + 1)", conv(wide(256), wide(256))), channels: wide(256))
      layers.append(("pool2", MaxPool2D(kernel: 2, stride: 2)))
      block(low("conv\(index + 1)", conv(wide(256), wide(512))), channels: wide(512))
      block(low("conv\(index + 1)", conv(wide(512), wide(512))), channels: wide(512))
      layers.append(("pool3", MaxPool2D(kernel: 2, stride: 2)))
      layers.append(("flatten", Flatten()))
      let features = wide(512) * ModelZoo.vggPlane(h) * ModelZoo.vggPlane(w)
      layers.append((lastLayerName, last(.linear(inFeatures: features, outFeatures: classes), maxInputCode: act.maxCode, inputScale: act.scale)))
    default:  // "resnet20"
      // CIFAR ResNet-20: 16-channel stem, three stages of three basic blocks (16, 32, 64), sum pool, linear. The
      // stride-2 stages halve H and W (multiples of 4): 32 → 16 → 8, 28 → 14 → 7.
      block(first(conv(c, wide(16))), channels: wide(16))
      var inC = wide(16)
      var blockIndex = 0
      for (stage, width) in [wide(16), wide(32), wide(64)].enumerated() {
        for b in 0..<3 {
          let stride = (stage > 0 && b == 0) ? 2 : 1
          let name = "stage\(stage + 1).block\(b + 1)"
          // With input clips the first convolution reads the block input re-coded at its own step; the
          // shortcut reads it as it is.
          var front: [(name: String, layer: any Layer)] = []
          var convInput = act
          if let clips = config.residualInputClips {
            convInput = ActivationCodes(bits: actBits, clip: clips[blockIndex])
            front = [("recode", CodeRequantizer(inputScale: act.scale, output: convInput))]
          }
          let body = Sequential(front + [
            ("conv1", low("\(name).conv1", conv(inC, width, stride: stride), input: convInput)),
            ("bn1", BatchNorm(channels: width)), ("act1", act),
            ("conv2", low("\(name).conv2", conv(width, width))),
            ("bn2", BatchNorm(channels: width)),
          ])
          blockIndex += 1
          layers.append((name, ResidualBlock(body: body, output: act, stride: stride, inChannels: inC,
                                             outChannels: width, inputScale: act.scale)))
          inC = width
        }
      }
      // The sum of (H/4)·(W/4) codes per channel: codes up to maxCode · plane, whose unit is scale / plane, so
      // the logits layer sees the average activation.
      layers.append(("pool", GlobalSumPool()))
      let plane = (h / 4) * (w / 4)
      layers.append((lastLayerName, last(.linear(inFeatures: wide(64), outFeatures: classes), maxInputCode: act.maxCode * plane,
                                         inputScale: act.scale / Float(plane))))
    }
    return Sequential(layers)
  }
}
