import Dispatch

/// Runs one `InferenceModel` with fixed `InferenceOptions`: the kernel of every dense layer is chosen once, when
/// the runner is made (`LayerKernel.chosen`), and the scratch memory of its threads is kept from one run to the
/// next. Safe to share between threads; runs at the same time take separate scratch sets.
///
/// A run splits the batch into `options.threads` fixed contiguous ranges, and each thread walks its range in
/// steps of `chunkSize` images through `forward` (`ForwardPass.swift`), so results never depend on the thread
/// count or the step size.
public final class InferenceRunner: Sendable {
  /// The network and the options it runs with.
  public let model: InferenceModel
  public let options: InferenceOptions
  /// Images per forward step of one thread: `options.chunkSize`, or so that the largest dense layer's im2col
  /// rows, accumulators and output codes of one step take about 1 MiB (kept in cache between the steps of the
  /// layer), 1...64.
  public let chunkSize: Int
  /// The model's operations with each dense layer's kernel fixed for `options`.
  let steps: [Step]
  /// Scratch sets kept between runs.
  let scratch = ScratchPool()

  /// One operation of the model as the forward pass runs it.
  enum Step: Sendable {
    case dense(DenseLayer, LayerKernel)
    case maxPool(kernel: Int, stride: Int)
    case flatten
    case saveShortcut
    case sumPool
    case recode([UInt8])
  }

  /// A runner of `model` with `options`. Throws `InferenceOptionsError` when the options do not fit the model or
  /// this CPU (`InferenceModel.validate`).
  public init(model: InferenceModel, options: InferenceOptions = InferenceOptions()) throws {
    try model.validate(options)
    self.model = model
    self.options = options
    steps = model.operations.map { op in
      switch op {
      case .dense(let layer):
        return .dense(layer, LayerKernel.chosen(for: layer, lanes: options.lanes(for: layer), path: options.path))
      case .maxPool(let k, let s): return .maxPool(kernel: k, stride: s)
      case .flatten: return .flatten
      case .saveShortcut: return .saveShortcut
      case .sumPool: return .sumPool
      case .recode(let codes): return .recode(codes)
      }
    }
    let perImage = model.denseLayersWithPositions().map { layer, positions in
      positions * (layer.weights.paddedK + 5 * layer.outChannels)
    }.max() ?? 1
    chunkSize = options.chunkSize ?? max(1, min(64, (1 << 20) / max(perImage, 1)))
  }

  /// The kernel each dense layer runs with, in forward order.
  public var layerKernels: [LayerKernel] {
    steps.compactMap { if case .dense(_, let kernel) = $0 { return kernel } else { return nil } }
  }

  /// Runs the integer network on `count` images of `pixels` (UInt8, NCHW [count, C, H, W], as datasets store
  /// them): logits [count, classes], predictions, and, with `options.recordAccumulators`, every hidden layer's
  /// accumulators.
  ///
  /// Integer-only up to the logits: codes × weight codes summed by the layer's kernel, tables / thresholds to
  /// the next codes, max pooling on codes; the last layer turns its exact 32-bit sums into
  /// `Float(z) * scale + bias`.
  /// Precondition: `pixels.count == count * C * H * W`.
  public func run(pixels: [UInt8], count: Int) -> InferenceResult {
    let (imageSize, classes) = (model.inputShape.reduce(1, *), model.classes)
    precondition(count >= 0 && pixels.count == count * imageSize,
                 "InferenceRunner.run: pixels has \(pixels.count) values, [\(count), \(model.inputShape.map(String.init).joined(separator: ", "))] needs \(count * imageSize)")
    var logits = [Float](repeating: 0, count: count * classes)
    // Recorded layers and their per-image sizes, found from the shapes.
    var recorded: [RecordedAccumulators] = []
    if options.recordAccumulators {
      for (layer, positions) in model.denseLayersWithPositions() {
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
          let scratch = self.scratch.take()
          defer { self.scratch.give(scratch) }
          while i < end {
            let n = min(self.chunkSize, end - i)
            self.forward(
              pixels: UnsafePointer(pixelBase.base + i * imageSize), n: n, first: i,
              logits: logitsBase.base + i * classes, records: recordBases, scratch: scratch)
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
}

/// A pointer that threads may share because each writes a disjoint range.
struct SharedPointer<T>: @unchecked Sendable {
  let base: UnsafeMutablePointer<T>
}
