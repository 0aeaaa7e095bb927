import Dispatch

/// How `InferenceModel.run` computes: kernel path, lane width, threads, and whether to record accumulators.
public struct InferenceOptions: Sendable, Equatable {
  /// Kernel implementation for every GEMM (all paths give identical integers).
  public var path: KernelPath
  /// Lane width (8, 16 or 32) for the wrap-around layers; nil picks the narrowest valid for each layer's b
  /// (8 for b <= 8, 16 for b <= 16). Exact and clamp layers always use 32-bit lanes with b = 32, since they need
  /// the exact sum.
  public var lanes: Int?
  /// Threads; the batch is split into `threads` fixed contiguous chunks, so results never depend on it.
  public var threads: Int
  /// Images per internal step of one thread (bounds the im2col and activation buffers).
  public var chunkSize: Int
  /// Whether to keep every hidden dense layer's accumulator values (see `RecordedAccumulators`).
  public var recordAccumulators: Bool

  /// Options; defaults: fastest path, narrowest lanes, one thread, 64-image steps, no recording.
  public init(
    path: KernelPath = .fastest, lanes: Int? = nil, threads: Int = 1, chunkSize: Int = 64,
    recordAccumulators: Bool = false
  ) {
    self.path = path
    self.lanes = lanes
    self.threads = threads
    self.chunkSize = chunkSize
    self.recordAccumulators = recordAccumulators
  }
}

/// The accumulator values v of one hidden dense layer for every image: wrap_b(z) (wrap, cyclic), clamp_b(z)
/// (clamp) or z (exact). Layout [N, positions, channels] (NHWC: positions = Ho·Wo, 1 for linear).
public struct RecordedAccumulators: Sendable, Equatable {
  /// Layer name.
  public var name: String
  /// Accumulator semantics and width of the layer.
  public var mode: EngineAccumulatorMode
  public var bits: Int
  /// Output positions per image (Ho·Wo; 1 for linear) and channels.
  public var positions: Int
  public var channels: Int
  /// Values, [N, positions, channels].
  public var values: [Int32]
}

/// What `InferenceModel.run` returns.
public struct InferenceResult: Sendable, Equatable {
  /// Logits [N, classes].
  public var logits: [Float]
  /// Classes per image.
  public var classes: Int
  /// argmax of each row of `logits` (the first maximum wins), [N].
  public var predictions: [Int]
  /// Hidden dense layers' accumulators, in forward order (empty unless `recordAccumulators`).
  public var accumulators: [RecordedAccumulators]
}

/// Why `run` refused its options (a user error, e.g. from command-line flags).
public struct InferenceOptionsError: Error, CustomStringConvertible, Sendable, Equatable {
  /// What is wrong and what to do.
  public var description: String
}

/// A pointer that threads may share because each writes a disjoint range.
private struct SharedPointer<T>: @unchecked Sendable {
  let base: UnsafeMutablePointer<T>
}

extension InferenceModel {
  /// Checks `options` against this model; throws `InferenceOptionsError` saying what to change.
  public func validate(_ options: InferenceOptions) throws {
    guard options.path.isAvailable else {
      throw InferenceOptionsError(description: "kernel path '\(options.path.rawValue)' is not available on this CPU; use portable or reference")
    }
    guard (1...256).contains(options.threads) else {
      throw InferenceOptionsError(description: "threads must be in 1...256, got \(options.threads)")
    }
    guard options.chunkSize >= 1 else {
      throw InferenceOptionsError(description: "chunk size must be at least 1, got \(options.chunkSize)")
    }
    if let lanes = options.lanes {
      guard [8, 16, 32].contains(lanes) else {
        throw InferenceOptionsError(description: "lanes must be 8, 16 or 32, got \(lanes)")
      }
      for layer in denseLayers where layer.wrapsAround && layer.accumulatorBits > lanes {
        throw InferenceOptionsError(
          description: "layer '\(layer.name)' has a \(layer.accumulatorBits)-bit accumulator, wider than \(lanes)-bit lanes; use lanes >= \(layer.accumulatorBits) or omit lanes")
      }
    }
  }

  /// The lane width a wrap-around layer runs with under `options`.
  public func lanes(for layer: DenseLayer, options: InferenceOptions) -> Int {
    guard layer.wrapsAround else { return 32 }
    if let l = options.lanes { return l }
    return layer.accumulatorBits <= 8 ? 8 : (layer.accumulatorBits <= 16 ? 16 : 32)
  }

  /// Runs the integer network on `count` images of `pixels` (UInt8, NCHW [count, C, H, W], as datasets store
  /// them): logits [count, classes], predictions, and optionally every hidden layer's accumulators.
  ///
  /// Integer-only up to the logits: codes × weight codes summed by `wrapGEMM`, tables / thresholds to the next
  /// codes, max pooling on codes; the last layer turns its exact 32-bit sums into `Float(z) * scale + bias`.
  /// Throws `InferenceOptionsError` for invalid options.
  /// Precondition: `pixels.count == count * C * H * W`.
  public func run(pixels: [UInt8], count: Int, options: InferenceOptions = InferenceOptions()) throws
    -> InferenceResult
  {
    try validate(options)
    let imageSize = inputShape.reduce(1, *)
    precondition(count >= 0 && pixels.count == count * imageSize,
                 "InferenceModel.run: pixels has \(pixels.count) values, [\(count), \(inputShape.map(String.init).joined(separator: ", "))] needs \(count * imageSize)")
    var logits = [Float](repeating: 0, count: count * classes)
    // Recorded layers and their per-image sizes, found from the shapes.
    var recorded: [RecordedAccumulators] = []
    if options.recordAccumulators {
      for (layer, positions) in denseLayersWithPositions() {
        if case .logits = layer.output { continue }
        recorded.append(RecordedAccumulators(
          name: layer.name, mode: layer.accumulatorMode, bits: layer.accumulatorBits, positions: positions,
          channels: layer.outChannels, values: [Int32](repeating: 0, count: count * positions * layer.outChannels)))
      }
    }
    if count == 0 {
      return InferenceResult(logits: [], classes: classes, predictions: [], accumulators: recorded)
    }
    let threads = min(options.threads, count)
    let perThread = (count + threads - 1) / threads
    // Recording buffers are allocated here (not borrowed from arrays) so their addresses stay valid while the
    // threads write disjoint image ranges of them.
    let recordBases = recorded.map { r -> SharedPointer<Int32> in
      let p = UnsafeMutablePointer<Int32>.allocate(capacity: max(r.values.count, 1))
      p.initialize(repeating: 0, count: max(r.values.count, 1))
      return SharedPointer(base: p)
    }
    defer { for b in recordBases { b.base.deallocate() } }
    logits.withUnsafeMutableBufferPointer { lp in
      let logitsBase = SharedPointer(base: lp.baseAddress!)
      pixels.withUnsafeBufferPointer { px in
        let pixelBase = SharedPointer(base: UnsafeMutablePointer(mutating: px.baseAddress!))
        let work: @Sendable (Int) -> Void = { t in
          let start = t * perThread
          let end = min(count, start + perThread)
          var i = start
          while i < end {
            let n = min(options.chunkSize, end - i)
            self.forward(
              pixels: UnsafePointer(pixelBase.base + i * imageSize), n: n, first: i, options: options,
              logits: logitsBase.base + i * self.classes, records: recordBases)
            i += n
          }
        }
        if threads <= 1 {
          work(0)
        } else {
          DispatchQueue.concurrentPerform(iterations: threads, execute: work)
        }
      }
    }
    for i in recorded.indices {
      recorded[i].values = Array(UnsafeBufferPointer(start: recordBases[i].base, count: recorded[i].values.count))
    }
    var predictions = [Int](repeating: 0, count: count)
    for i in 0..<count {
      var best = 0
      for j in 1..<classes where logits[i * classes + j] > logits[i * classes + best] { best = j }
      predictions[i] = best
    }
    return InferenceResult(logits: logits, classes: classes, predictions: predictions, accumulators: recorded)
  }

  /// Dense layers with their output positions per image (Ho·Wo; 1 for linear).
  public func denseLayersWithPositions() -> [(DenseLayer, Int)] {
    var (h, w) = (inputShape[1], inputShape[2])
    var out: [(DenseLayer, Int)] = []
    for op in operations {
      switch op {
      case .flatten: (h, w) = (1, 1)
      case .maxPool(let k, let s): (h, w) = ((h - k) / s + 1, (w - k) / s + 1)
      case .dense(let d):
        switch d.geometry {
        case .linear: (h, w) = (1, 1)
        case .conv(_, _, let k, let s, let p): (h, w) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1)
        }
        out.append((d, h * w))
      }
    }
    return out
  }

  /// Forward of `n` images starting at image `first` (for the recorded buffers' offsets).
  private func forward(
    pixels: UnsafePointer<UInt8>, n: Int, first: Int, options: InferenceOptions, logits: UnsafeMutablePointer<Float>,
    records: [SharedPointer<Int32>]
  ) {
    let (c0, h0, w0) = (inputShape[0], inputShape[1], inputShape[2])
    // NCHW pixels -> NHWC codes.
    var act = [UInt8](repeating: 0, count: n * c0 * h0 * w0)
    act.withUnsafeMutableBufferPointer { a in
      for i in 0..<n {
        for c in 0..<c0 {
          for p in 0..<(h0 * w0) { a[(i * h0 * w0 + p) * c0 + c] = pixels[(i * c0 + c) * h0 * w0 + p] }
        }
      }
    }
    var (h, w, c) = (h0, w0, c0)
    var recordIndex = 0
    for op in operations {
      switch op {
      case .flatten:
        (h, w, c) = (1, 1, h * w * c)
      case .maxPool(let k, let s):
        let (ho, wo) = ((h - k) / s + 1, (w - k) / s + 1)
        var out = [UInt8](repeating: 0, count: n * ho * wo * c)
        act.withUnsafeBufferPointer { x in
          out.withUnsafeMutableBufferPointer { y in
            for i in 0..<n {
              for oy in 0..<ho {
                for ox in 0..<wo {
                  let dst = ((i * ho + oy) * wo + ox) * c
                  for ch in 0..<c {
                    var best: UInt8 = 0
                    for u in 0..<k {
                      for v in 0..<k { best = max(best, x[((i * h + oy * s + u) * w + ox * s + v) * c + ch]) }
                    }
                    y[dst + ch] = best
                  }
                }
              }
            }
          }
        }
        act = out
        (h, w) = (ho, wo)
      case .dense(let layer):
        let m = layer.outChannels
        let kp = layer.weights.paddedK
        let rows: Int
        var x: [UInt8]
        switch layer.geometry {
        case .linear(let inF, _):
          rows = n
          x = [UInt8](repeating: 0, count: n * kp)
          act.withUnsafeBufferPointer { a in
            x.withUnsafeMutableBufferPointer { xb in
              for i in 0..<n { (xb.baseAddress! + i * kp).update(from: a.baseAddress! + i * inF, count: inF) }
            }
          }
          (h, w, c) = (1, 1, m)
        case .conv(let inC, _, let k, let s, let p):
          let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1)
          rows = n * ho * wo
          x = Self.im2col(act, n: n, h: h, w: w, c: inC, kernel: k, stride: s, padding: p, rowStride: kp)
          (h, w, c) = (ho, wo, m)
        }
        var z = [Int32](repeating: 0, count: rows * m)
        let bits = layer.wrapsAround ? layer.accumulatorBits : 32
        let lanes = self.lanes(for: layer, options: options)
        x.withUnsafeBufferPointer { xb in
          z.withUnsafeMutableBufferPointer { zb in
            wrapGEMM(
              weights: layer.weights, activations: xb, n: rows, activationRowStride: kp, bits: bits, lanes: lanes,
              path: options.path, output: zb)
          }
        }
        if layer.accumulatorMode == .clamp {
          let lo = Int32(-(1 << (layer.accumulatorBits - 1))), hi = Int32((1 << (layer.accumulatorBits - 1)) - 1)
          z.withUnsafeMutableBufferPointer { zb in
            for j in zb.indices { zb[j] = min(max(zb[j], lo), hi) }
          }
        }
        if case .logits(let scale, let bias) = layer.output {
          // logits = Float(z) * scale + bias: two separate roundings, as the trainer computes them.
          for i in 0..<n {
            for o in 0..<m {
              let product = Float(z[i * m + o]) * scale[o]
              logits[i * m + o] = product + bias[o]
            }
          }
          return
        }
        if !records.isEmpty {
          let perImage = z.count / n
          z.withUnsafeBufferPointer { zb in
            (records[recordIndex].base + first * perImage).update(from: zb.baseAddress!, count: z.count)
          }
          recordIndex += 1
        }
        act = Self.nextCodes(z, channels: m, output: layer.output, bits: layer.accumulatorBits)
      }
    }
  }

  /// Integer im2col of NHWC codes: row (i, oy, ox), columns (ky, kx, c), zero outside the image; rows are
  /// `rowStride` bytes apart (padding columns zero).
  static func im2col(
    _ act: [UInt8], n: Int, h: Int, w: Int, c: Int, kernel k: Int, stride s: Int, padding p: Int, rowStride: Int
  ) -> [UInt8] {
    let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1)
    var x = [UInt8](repeating: 0, count: n * ho * wo * rowStride)
    act.withUnsafeBufferPointer { a in
      x.withUnsafeMutableBufferPointer { xb in
        for i in 0..<n {
          for oy in 0..<ho {
            for ox in 0..<wo {
              let row = ((i * ho + oy) * wo + ox) * rowStride
              for ky in 0..<k {
                let iy = oy * s - p + ky
                if iy < 0 || iy >= h { continue }
                for kx in 0..<k {
                  let ix = ox * s - p + kx
                  if ix < 0 || ix >= w { continue }
                  // A pixel's channels are contiguous in NHWC and in the column order (ky, kx, c).
                  (xb.baseAddress! + row + (ky * k + kx) * c).update(
                    from: a.baseAddress! + ((i * h + iy) * w + ix) * c, count: c)
                }
              }
            }
          }
        }
      }
    }
    return x
  }

  /// Next activation codes from accumulator values v [rows, channels] through a table or thresholds.
  static func nextCodes(_ z: [Int32], channels m: Int, output: DenseOutput, bits: Int) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: z.count)
    z.withUnsafeBufferPointer { zb in
      out.withUnsafeMutableBufferPointer { ob in
        switch output {
        case .table(let codes):
          let size = 1 << bits
          let offset = Int(1 << (bits - 1))
          codes.withUnsafeBufferPointer { t in
            for j in zb.indices {
              let ch = j % m
              ob[j] = t[ch * size + Int(zb[j]) + offset]
            }
          }
        case .thresholds(let thresholds, let levels, let descending):
          thresholds.withUnsafeBufferPointer { t in
            for j in zb.indices {
              let ch = j % m
              let v = Int64(zb[j])
              var code = 0
              let base = ch * levels
              if descending[ch] {
                for l in 0..<levels where v <= t[base + l] { code += 1 }
              } else {
                for l in 0..<levels where v >= t[base + l] { code += 1 }
              }
              ob[j] = UInt8(code)
            }
          }
        case .logits:
          preconditionFailure("nextCodes: logits layers produce no codes")
        }
      }
    }
    return out
  }
}
