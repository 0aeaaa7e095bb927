import WrapNetEngine

/// One layer's product as the integer engine computes it: `W [m, k] × X [n, k] → [n, m]` (see `wrapGEMM`).
///
///     m = output channels,  k = fan-in (in · kh · kw),  n = output positions (Ho · Wo, 1 for linear) · batch
public struct LayerGEMMShape: Sendable, Equatable, Codable {
  /// Layer name as in the trainer ("fc2", "conv3", "stage2.block1.conv1").
  public var layer: String
  /// Output channels (rows of W).
  public var m: Int
  /// Output positions times batch (rows of X).
  public var n: Int
  /// Fan-in (columns of W and X).
  public var k: Int
  /// Multiply-accumulates of the product: m · n · k.
  public var macs: Int { m * n * k }

  /// A shape; no checks (the benchmark checks `m, n, k >= 1`).
  public init(layer: String, m: Int, n: Int, k: Int) {
    self.layer = layer
    self.m = m
    self.n = n
    self.k = k
  }
}

/// Size of a packed engine model (`docs/FORMAT.md`) computed from layer shapes, tensor by tensor, exactly as
/// `EngineExport.packedFile` lays it out (file header and JSON metadata not included):
///
///     weight codes   ceil(O · fanIn · w / 8)  per layer  (w = 1 binary, 2 ternary, k symmetric k-bit, 8 for int8)
///     tables         O · S · 2^b              per low-bit layer (accumulator value → next code)
///     thresholds     O · S · (2^a − 1) · 8 + O per 32-bit hidden layer (Int64 thresholds + direction bytes)
///     logits         O · 4 · 2                last layer (Float32 scale and bias)
///
/// S = 1, except for the last layer of a residual block, whose tables and thresholds have one row per shortcut
/// code (S = 2^a); the shortcut itself needs no stored tensors (option-A: subsample and pad channels).
public struct PackedSizeEstimate: Sendable, Equatable, Codable {
  /// Packed weight codes of every layer.
  public var weightCodeBytes: Int
  /// Per-channel tables of the low-bit layers.
  public var tableBytes: Int
  /// Per-channel thresholds and direction bytes of the 32-bit hidden layers.
  public var thresholdBytes: Int
  /// Scale and bias of the logits layer.
  public var logitsBytes: Int
  /// Sum of the four.
  public var totalBytes: Int { weightCodeBytes + tableBytes + thresholdBytes + logitsBytes }
}

extension WrapModel {
  /// The `wrapGEMM` shape of every low-bit layer (all but a wide first and a wide last layer) for `batch` images,
  /// in forward order; residual blocks' convolutions included. Shapes come from a one-image forward pass.
  /// Precondition: `batch >= 1`.
  public mutating func lowBitGEMMShapes(batch: Int) -> [LayerGEMMShape] {
    precondition(batch >= 1, "lowBitGEMMShapes: batch must be >= 1, got \(batch)")
    return wrapLayerInputSizes().compactMap { h, w, layer in
      guard isLowBitLayer(layer.name) else { return nil }
      let positions = layer.macs(height: h, width: w) / (layer.geometry.outChannels * layer.geometry.fanIn)
      return LayerGEMMShape(
        layer: layer.name, m: layer.geometry.outChannels, n: positions * batch, k: layer.geometry.fanIn)
    }
  }

  /// Bytes of the Float32 model with the same parameters: 4 · (weights + biases + batch-norm γ, β, running mean
  /// and running variance).
  public mutating func float32ParameterBytes() -> Int {
    var count = 0
    network.visitParameters { _, value, _ in count += value.count }
    network.visitBuffers { _, value in count += value.count }
    return 4 * count
  }

  /// The packed engine size of this model computed from its layer shapes (see `PackedSizeEstimate`).
  public mutating func packedSizeEstimate() -> PackedSizeEstimate {
    var estimate = PackedSizeEstimate(weightCodeBytes: 0, tableBytes: 0, thresholdBytes: 0, logitsBytes: 0)
    let levels = (1 << config.activationBits) - 1
    // The last layer of each residual block has one table or threshold row per shortcut code.
    var residualLayers = Set<String>()
    for (_, layer) in network.layers {
      if let block = layer as? ResidualBlock, let conv2 = block.body.layers.first(where: { $0.name == "conv2" })?.layer as? WrapLayer {
        residualLayers.insert(conv2.name)
      }
    }
    for (_, _, layer) in wrapLayerInputSizes() {
      let rows = residualLayers.contains(layer.name) ? levels + 1 : 1
      let outC = layer.geometry.outChannels
      let kind: PackedWeights.CodeKind
      switch layer.weightFormat {
      case .binary: kind = .binary
      case .ternary: kind = .ternary
      case .symmetric(let k): kind = .symmetric(bits: k)
      }
      estimate.weightCodeBytes += WeightCodePacking.byteCount(codes: outC * layer.geometry.fanIn, kind: kind)
      if layer.name == ModelZoo.lastLayerName && layer.bias != nil {
        estimate.logitsBytes += 8 * outC
      } else if layer.accumulator.isLowBit {
        estimate.tableBytes += (outC * rows) << layer.accumulator.bits
      } else {
        estimate.thresholdBytes += outC * rows * levels * 8 + outC
      }
    }
    return estimate
  }
}
