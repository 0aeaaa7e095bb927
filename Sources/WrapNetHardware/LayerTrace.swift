import WrapNetEngine

/// What one dense layer saw and produced on a batch of images, in the order a layer unit streams it.
///
///     inputs[r, t]  the t-th input code of row r (r = image · positions + position), columns in stream order
///     sums[r, o]    the exact dot product z
///     values[r, o]  the engine's accumulator value v: wrap_b(z), clamp_b(z) or z
///     codes[r, o]   the next activation code (empty for the logits layer)
///
/// Stream order is the trainer's: input channel, then kernel row, then kernel column (linear: feature 0, 1, ...),
/// so that a P = 1 saturating PE adds the terms in the order the trainer's `saturate` simulation does.
public struct DenseLayerTrace: Sendable {
  /// The layer, as the engine loaded it.
  public var layer: DenseLayer
  /// Rows (images × output positions) and the fan-in K.
  public var rows: Int
  public var fanIn: Int
  /// Output positions per image (Ho·Wo; 1 for linear).
  public var positions: Int
  /// [rows, K] input codes in stream order.
  public var inputs: [UInt8]
  /// [rows, O] exact sums, accumulator values and next codes.
  public var sums: [Int64]
  public var values: [Int64]
  public var codes: [UInt8]
  /// Weight codes [O, K] in stream order.
  public var weights: [Int8]
}

/// A batch of images run layer by layer through an engine model, keeping every dense layer's inputs and outputs:
/// the test vectors of the generated hardware. `init` checks it against the engine itself (every recorded
/// accumulator, every logit bit and every prediction) before anything uses it.
public struct NetworkTrace: Sendable {
  /// The dense layers in forward order.
  public var layers: [DenseLayerTrace]
  /// Logits [N, classes] and predicted classes [N] (first maximum).
  public var logits: [Float]
  public var predictions: [Int]
  /// Images traced.
  public var count: Int

  /// Traces `count` images (`pixels` NCHW UInt8, as datasets store them) through `model`, then checks the trace
  /// against `model.run` (reference path). Throws `HardwareError` for residual models (not traced) or when the
  /// trace and the engine disagree (a bug, reported with the first difference).
  public init(model: InferenceModel, pixels: [UInt8], count: Int) throws {
    let (c0, h0, w0) = (model.inputShape[0], model.inputShape[1], model.inputShape[2])
    precondition(pixels.count == count * c0 * h0 * w0, "NetworkTrace: \(pixels.count) pixels for \(count) images of \(model.inputShape)")
    // NHWC codes [count, h, w, c].
    var act = [UInt8](repeating: 0, count: pixels.count)
    for i in 0..<count {
      for ch in 0..<c0 {
        for p in 0..<(h0 * w0) { act[(i * h0 * w0 + p) * c0 + ch] = pixels[(i * c0 + ch) * h0 * w0 + p] }
      }
    }
    var (h, w, c) = (h0, w0, c0)
    var layers: [DenseLayerTrace] = []
    var logits: [Float] = []
    for op in model.operations {
      switch op {
      case .flatten:
        (h, w, c) = (1, 1, h * w * c)
      case .saveShortcut, .sumPool, .recode:
        throw HardwareError("model '\(model.architecture)' has residual blocks or sum pooling; the hardware generator builds plain layer chains (mlp, cnn)")
      case .maxPool(let k, let s):
        let (ho, wo) = ((h - k) / s + 1, (w - k) / s + 1)
        var out = [UInt8](repeating: 0, count: count * ho * wo * c)
        for i in 0..<count {
          for oy in 0..<ho {
            for ox in 0..<wo {
              for ch in 0..<c {
                var m: UInt8 = 0
                for u in 0..<k {
                  for v in 0..<k { m = max(m, act[((i * h + oy * s + u) * w + ox * s + v) * c + ch]) }
                }
                out[((i * ho + oy) * wo + ox) * c + ch] = m
              }
            }
          }
        }
        (act, h, w) = (out, ho, wo)
      case .dense(let layer):
        let t = Self.dense(layer, input: act, count: count, h: h, w: w, c: c)
        layers.append(t.trace)
        (h, w, c) = t.shape
        act = t.trace.codes
        if case .logits(let scale, let bias) = layer.output {
          let m = layer.outChannels
          logits = [Float](repeating: 0, count: count * m)
          for i in 0..<count {
            for o in 0..<m {
              let product = Float(Int32(truncatingIfNeeded: t.trace.values[i * m + o])) * scale[o]
              logits[i * m + o] = product + bias[o]
            }
          }
        }
      }
    }
    let classes = model.classes
    var predictions = [Int](repeating: 0, count: count)
    for i in 0..<count {
      var best = 0
      for j in 1..<classes where logits[i * classes + j] > logits[i * classes + best] { best = j }
      predictions[i] = best
    }
    self.layers = layers
    self.logits = logits
    self.predictions = predictions
    self.count = count
    try check(against: model, pixels: pixels)
  }

  /// One dense layer: the stream-order input rows, sums, values and codes, and the output shape (h, w, c).
  static func dense(_ layer: DenseLayer, input: [UInt8], count: Int, h: Int, w: Int, c: Int)
    -> (trace: DenseLayerTrace, shape: (Int, Int, Int))
  {
    let m = layer.outChannels
    let k = layer.weights.k
    let engineWeights = layer.weights.unpacked()  // [O, K], engine column order
    var inputs: [UInt8]
    var order: [Int]  // stream column j reads engine column order[j]
    let positions: Int, shape: (Int, Int, Int)
    switch layer.geometry {
    case .linear:
      positions = 1
      shape = (1, 1, m)
      inputs = input
      order = Array(0..<k)
    case .conv(let inC, _, let kk, let s, let p):
      let (ho, wo) = ((h + 2 * p - kk) / s + 1, (w + 2 * p - kk) / s + 1)
      positions = ho * wo
      shape = (ho, wo, m)
      // Engine column (ky·k + kx)·C + ch; stream column (ch·k + ky)·k + kx.
      order = [Int](repeating: 0, count: k)
      for ch in 0..<inC { for ky in 0..<kk { for kx in 0..<kk { order[(ch * kk + ky) * kk + kx] = (ky * kk + kx) * inC + ch } } }
      inputs = Self.streamRows(input, count: count, h: h, w: w, c: inC, kernel: kk, stride: s, padding: p)
    }
    var weights = [Int8](repeating: 0, count: m * k)
    for o in 0..<m { for j in 0..<k { weights[o * k + j] = engineWeights[o * k + order[j]] } }
    let rows = count * positions
    var sums = [Int64](repeating: 0, count: rows * m)
    var values = sums
    var codes = [UInt8](repeating: 0, count: 0)
    let isLogits: Bool
    if case .logits = layer.output { isLogits = true } else { isLogits = false; codes = [UInt8](repeating: 0, count: rows * m) }
    for r in 0..<rows {
      for o in 0..<m {
        var z: Int64 = 0
        for j in 0..<k { z += Int64(weights[o * k + j]) * Int64(inputs[r * k + j]) }
        let v = layer.accumulatorValue(exactSum: z)
        sums[r * m + o] = z
        values[r * m + o] = v
        if !isLogits { codes[r * m + o] = layer.code(forAccumulator: v, channel: o) }
      }
    }
    let trace = DenseLayerTrace(
      layer: layer, rows: rows, fanIn: k, positions: positions, inputs: inputs, sums: sums, values: values,
      codes: codes, weights: weights)
    return (trace, shape)
  }

  /// Convolution rows in stream order: for images [count, h, w, c] (NHWC codes), row (i, oy, ox) holds at column
  /// (ch·k + ky)·k + kx the code at (oy·s − p + ky, ox·s − p + kx, ch), 0 outside the image.
  /// Returns [count · Ho · Wo, c · k · k].
  public static func streamRows(
    _ input: [UInt8], count: Int, h: Int, w: Int, c: Int, kernel kk: Int, stride s: Int, padding p: Int
  ) -> [UInt8] {
    let (ho, wo) = ((h + 2 * p - kk) / s + 1, (w + 2 * p - kk) / s + 1)
    let k = c * kk * kk
    var rows = [UInt8](repeating: 0, count: count * ho * wo * k)
    for i in 0..<count {
      for oy in 0..<ho {
        for ox in 0..<wo {
          let row = (i * ho * wo + oy * wo + ox) * k
          for ch in 0..<c {
            for ky in 0..<kk {
              let iy = oy * s - p + ky
              guard iy >= 0 && iy < h else { continue }
              for kx in 0..<kk {
                let ix = ox * s - p + kx
                guard ix >= 0 && ix < w else { continue }
                rows[row + (ch * kk + ky) * kk + kx] = input[((i * h + iy) * w + ix) * c + ch]
              }
            }
          }
        }
      }
    }
    return rows
  }

  /// Compares the trace with the engine's own run (reference path): accumulators, logits (bit for bit) and
  /// predictions.
  func check(against model: InferenceModel, pixels: [UInt8]) throws {
    let run = try model.run(
      pixels: pixels, count: count, options: InferenceOptions(path: .reference, recordAccumulators: true))
    let hidden = layers.filter { if case .logits = $0.layer.output { return false } else { return true } }
    guard run.accumulators.count == hidden.count else {
      throw HardwareError("trace has \(hidden.count) hidden layers, the engine recorded \(run.accumulators.count)")
    }
    for (t, r) in zip(hidden, run.accumulators) {
      // Engine layout [N, positions, channels] equals the trace's [rows, O].
      for (i, v) in r.values.enumerated() where Int64(v) != t.values[i] {
        throw HardwareError("trace of layer '\(t.layer.name)' differs from the engine at value \(i): \(t.values[i]) against \(v)")
      }
    }
    for (i, l) in run.logits.enumerated() where l.bitPattern != logits[i].bitPattern {
      throw HardwareError("trace logit \(i) is \(logits[i]), the engine's \(l)")
    }
    guard run.predictions == predictions else { throw HardwareError("trace predictions differ from the engine's") }
  }
}
