/// How `InferenceRunner` (and `InferenceModel.run`) computes: kernel path, lane width, threads, and whether to
/// record accumulators.
public struct InferenceOptions: Sendable, Equatable {
  /// Kernel implementation for every GEMM (all paths give identical integers).
  public var path: KernelPath
  /// Lane width (8, 16 or 32) for the wrap-around layers; nil picks the narrowest valid for each layer's b
  /// (8 for b <= 8, 16 for b <= 16). Exact and clamp layers always use 32-bit lanes with b = 32, since they need
  /// the exact sum.
  public var lanes: Int?
  /// Threads; the batch is split into `threads` fixed contiguous chunks, so results never depend on it.
  public var threads: Int
  /// Images per internal step of one thread (bounds the im2col and activation buffers); nil picks one so that a
  /// step's largest layer works in about 1 MiB (cache-resident), at most 64 images.
  public var chunkSize: Int?
  /// Whether to keep every hidden dense layer's accumulator values (see `RecordedAccumulators`).
  public var recordAccumulators: Bool

  /// Options; defaults: fastest path, narrowest lanes, one thread, automatic step size, no recording.
  public init(
    path: KernelPath = .fastest, lanes: Int? = nil, threads: Int = 1, chunkSize: Int? = nil,
    recordAccumulators: Bool = false
  ) {
    self.path = path
    self.lanes = lanes
    self.threads = threads
    self.chunkSize = chunkSize
    self.recordAccumulators = recordAccumulators
  }

  /// The lane width `layer` runs with: 32 for exact and clamp layers, else `lanes` or the narrowest that holds
  /// its b (8 for b ≤ 8, 16 for b ≤ 16, else 32).
  public func lanes(for layer: DenseLayer) -> Int {
    guard layer.wrapsAround else { return 32 }
    if let lanes { return lanes }
    return layer.accumulatorWidth.narrowestLanes
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

/// What `InferenceRunner.run` (and `InferenceModel.run`) returns.
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

extension InferenceModel {
  /// Checks `options` against this model; throws `InferenceOptionsError` saying what to change.
  public func validate(_ options: InferenceOptions) throws {
    guard options.path.isAvailable else {
      throw InferenceOptionsError(description: "kernel path '\(options.path.rawValue)' is not available on this CPU; use portable or reference")
    }
    guard (1...256).contains(options.threads) else {
      throw InferenceOptionsError(description: "threads must be in 1...256, got \(options.threads)")
    }
    if let chunk = options.chunkSize, chunk < 1 {
      throw InferenceOptionsError(description: "chunk size must be at least 1, got \(chunk)")
    }
    if let lanes = options.lanes {
      guard AccumulatorWidth.laneWidths.contains(lanes) else {
        throw InferenceOptionsError(description: "lanes must be 8, 16 or 32, got \(lanes)")
      }
      for layer in denseLayers where layer.wrapsAround && layer.accumulatorBits > lanes {
        throw InferenceOptionsError(
          description: "layer '\(layer.name)' has a \(layer.accumulatorBits)-bit accumulator, wider than \(lanes)-bit lanes; use lanes >= \(layer.accumulatorBits) or omit lanes")
      }
    }
  }

  /// The lane width a wrap-around layer runs with under `options` (`InferenceOptions.lanes(for:)`).
  public func lanes(for layer: DenseLayer, options: InferenceOptions) -> Int { options.lanes(for: layer) }

  /// Runs the integer network on `count` images of `pixels` (UInt8, NCHW [count, C, H, W], as datasets store
  /// them): logits [count, classes], predictions, and optionally every hidden layer's accumulators. One run of a
  /// new `InferenceRunner`; to run many batches with the same options, keep a runner (it keeps its plan and its
  /// scratch memory between runs).
  ///
  /// Throws `InferenceOptionsError` for invalid options.
  /// Precondition: `pixels.count == count * C * H * W`.
  public func run(pixels: [UInt8], count: Int, options: InferenceOptions = InferenceOptions()) throws
    -> InferenceResult
  {
    try InferenceRunner(model: self, options: options).run(pixels: pixels, count: count)
  }

  /// Dense layers with their output positions per image (Ho·Wo; 1 for linear).
  public func denseLayersWithPositions() -> [(DenseLayer, Int)] {
    var (h, w) = (inputShape[1], inputShape[2])
    var out: [(DenseLayer, Int)] = []
    for op in operations {
      switch op {
      case .flatten, .sumPool: (h, w) = (1, 1)
      case .saveShortcut, .recode: break
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
}
