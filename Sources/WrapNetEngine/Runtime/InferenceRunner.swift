import CWrapNetKernels
import Dispatch
import Foundation

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
  /// Images per internal step of one thread (bounds the im2col and activation buffers); nil picks one so that a
  /// step's largest layer works in about 1 MiB (cache-resident), at most 64 images.
  public var chunkSize: Int?
  /// Whether to keep every hidden dense layer's accumulator values (see `RecordedAccumulators`).
  public var recordAccumulators: Bool
  /// Whether the avx2 path with 8-bit lanes runs binary and ternary layers with the lookup kernel (the default)
  /// or, false, with the nibble kernel (two codes per byte, weights as XOR masks; same integers).
  public var lookupKernel: Bool

  /// Options; defaults: fastest path, narrowest lanes, one thread, automatic step size, no recording, lookup
  /// kernel.
  public init(
    path: KernelPath = .fastest, lanes: Int? = nil, threads: Int = 1, chunkSize: Int? = nil,
    recordAccumulators: Bool = false, lookupKernel: Bool = true
  ) {
    self.path = path
    self.lanes = lanes
    self.threads = threads
    self.chunkSize = chunkSize
    self.recordAccumulators = recordAccumulators
    self.lookupKernel = lookupKernel
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
    if let chunk = options.chunkSize, chunk < 1 {
      throw InferenceOptionsError(description: "chunk size must be at least 1, got \(chunk)")
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
    let chunk = options.chunkSize ?? automaticChunkSize()
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
          let scratch = ScratchPool.shared.take()
          defer { ScratchPool.shared.give(scratch) }
          while i < end {
            let n = min(chunk, end - i)
            self.forward(
              pixels: UnsafePointer(pixelBase.base + i * imageSize), n: n, first: i, options: options,
              logits: logitsBase.base + i * self.classes, records: recordBases, scratch: scratch)
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

  /// Images per step so that the largest dense layer's im2col rows, accumulators and output codes of one step
  /// take about 1 MiB (kept in cache between the steps of the layer), 1...64.
  func automaticChunkSize() -> Int {
    let perImage = denseLayersWithPositions().map { layer, positions in
      positions * (layer.weights.paddedK + 5 * layer.outChannels)
    }.max() ?? 1
    return max(1, min(64, (1 << 20) / max(perImage, 1)))
  }

  /// Dense layers with their output positions per image (Ho·Wo; 1 for linear).
  public func denseLayersWithPositions() -> [(DenseLayer, Int)] {
    var (h, w) = (inputShape[1], inputShape[2])
    var out: [(DenseLayer, Int)] = []
    for op in operations {
      switch op {
      case .flatten, .sumPool: (h, w) = (1, 1)
      case .saveShortcut: break
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

  /// Forward of `n` images starting at image `first` (for the recorded buffers' offsets), in `scratch`'s buffers.
  ///
  /// Activations are NHWC `UInt8` codes [n, h, w, c] in `scratch`'s current activation buffer; each step writes
  /// the next one into the other buffer and swaps them.
  fileprivate func forward(
    pixels: UnsafePointer<UInt8>, n: Int, first: Int, options: InferenceOptions, logits: UnsafeMutablePointer<Float>,
    records: [SharedPointer<Int32>], scratch: ForwardScratch
  ) {
    let (c0, h0, w0) = (inputShape[0], inputShape[1], inputShape[2])
    // NCHW pixels -> NHWC codes.
    var act = scratch.bytes(.activations, count: n * c0 * h0 * w0)
    if c0 == 1 {
      act.update(from: pixels, count: n * h0 * w0)
    } else {
      for i in 0..<n {
        for ch in 0..<c0 {
          let src = pixels + (i * c0 + ch) * h0 * w0
          let dst = act + i * h0 * w0 * c0 + ch
          for p in 0..<(h0 * w0) { dst[p * c0] = src[p] }
        }
      }
    }
    var (h, w, c) = (h0, w0, c0)
    // The saved input of the current residual block: its buffer and shape [n, h, w, c].
    var saved: (codes: UnsafeMutablePointer<UInt8>, h: Int, w: Int, c: Int)? = nil
    var recordIndex = 0
    for op in operations {
      switch op {
      case .flatten:
        (h, w, c) = (1, 1, h * w * c)
      case .saveShortcut:
        // The current buffer itself becomes the saved input (no copy): it leaves the two-buffer rotation until
        // the next block, and the block's layers read it as their input as before.
        saved = (scratch.keepActivationsAsShortcut(), h, w, c)
      case .sumPool:
        // [n, h·w, c] -> [n, c]; the loader checked that the sums fit in a byte.
        let out = scratch.bytes(.next, count: n * c)
        let plane = h * w
        // Position by position over whole channel rows (contiguous, so the adds vectorize); byte adds are exact
        // because the sums fit.
        for i in 0..<n {
          let dst = out + i * c
          dst.update(repeating: 0, count: c)
          let src = act + i * plane * c
          for p in 0..<plane {
            let row = src + p * c
            for ch in 0..<c { dst[ch] &+= row[ch] }
          }
        }
        act = scratch.swapActivations()
        (h, w) = (1, 1)
      case .maxPool(let k, let s):
        let (ho, wo) = ((h - k) / s + 1, (w - k) / s + 1)
        let out = scratch.bytes(.next, count: n * ho * wo * c)
        for i in 0..<n {
          for oy in 0..<ho {
            for ox in 0..<wo {
              let dst = out + ((i * ho + oy) * wo + ox) * c
              dst.update(from: act + ((i * h + oy * s) * w + ox * s) * c, count: c)
              for u in 0..<k {
                for v in 0..<k where u != 0 || v != 0 {
                  let src = act + ((i * h + oy * s + u) * w + ox * s + v) * c
                  for ch in 0..<c { dst[ch] = max(dst[ch], src[ch]) }
                }
              }
            }
          }
        }
        act = scratch.swapActivations()
        (h, w) = (ho, wo)
      case .dense(let layer):
        let m = layer.outChannels
        let kp = layer.weights.paddedK
        let rows: Int
        var x: UnsafeMutablePointer<UInt8>
        let bits = layer.wrapsAround ? layer.accumulatorBits : 32
        let lanes = lanes(for: layer, options: options)
        let z: UnsafeMutablePointer<Int32>
        nibble: if options.path == .avx2, lanes == 8, let nibble = layer.nibbleWeights {
          // The lookup kernel on per-pixel tables or (option) the nibble kernel on codes two per byte (the loader
          // checked they fit); both read each row's groups through offsets: no im2col rows for a convolution (see
          // `lookupInput`, `nibbleInput`).
          let lookup = options.lookupKernel ? layer.lookupWeights : nil
          let input =
            if let lookup {
              Self.lookupInput(act, n: n, h: h, w: w, geometry: layer.geometry, weights: lookup, scratch: scratch)
            } else {
              Self.nibbleInput(act, n: n, h: h, w: w, geometry: layer.geometry, weights: nibble, scratch: scratch)
            }
          (rows, x) = (input.rows, input.base)
          (h, w, c) = (input.h, input.w, m)
          let (rowOffsets, groupOffsets) = (input.rowOffsets, input.groupOffsets)
          let groups = lookup?.pairs ?? nibble.groups
          z = scratch.int32s(.sums, count: rows * m)
          // Table outputs are fused into the kernel: it writes the next codes straight from the wrapped sums (and
          // the sums only when they are recorded).
          let table: [UInt8]?
          var shortcut: Shortcut? = nil
          switch layer.output {
          case .table(let codes): table = codes
          case .residualTable(let codes, let sc):
            (table, shortcut) = (codes, sc)
          default: table = nil
          }
          guard let table else {
            let (rowBuffer, groupBuffer) = (
              UnsafeBufferPointer(start: rowOffsets, count: rows), UnsafeBufferPointer(start: groupOffsets, count: groups)
            )
            let output = UnsafeMutableBufferPointer(start: z, count: rows * m)
            if let lookup {
              wrapGEMM(
                lookupWeights: lookup, base: x, rowOffsets: rowBuffer, pairOffsets: groupBuffer, bits: bits,
                output: output)
            } else {
              wrapGEMM(
                nibbleWeights: nibble, base: x, rowOffsets: rowBuffer, groupOffsets: groupBuffer, bits: bits,
                output: output)
            }
            break nibble
          }
          let out = scratch.bytes(.next, count: rows * m)
          var shortcutRows: UnsafeMutablePointer<Int>? = nil
          var savedCodes: UnsafePointer<UInt8>? = nil
          if let sc = shortcut {
            guard let block = saved else {
              preconditionFailure("InferenceModel: residual layer '\(layer.name)' without a saved shortcut")
            }
            let offsets = scratch.typed(.shortcutRows, count: rows, as: Int.self)
            Self.shortcutPixelOffsets(
              from: 0, count: rows, outputGrid: (h, w), saved: (block.h, block.w, block.c), stride: sc.stride,
              into: offsets)
            (shortcutRows, savedCodes) = (offsets, UnsafePointer(block.codes))
            saved = nil
          }
          let sums = records.isEmpty ? nil : z
          if let lookup {
            lookup.runFused(
              base: x, rowOffsets: rowOffsets, pairOffsets: groupOffsets, rows: rows, bits: bits, sums: sums,
              table: table, shortcut: shortcut, shortcutCodes: savedCodes, shortcutRows: shortcutRows,
              arcs: layer.nibbleArcs, codes: out)
          } else {
            nibble.runFused(
              base: x, rowOffsets: rowOffsets, groupOffsets: groupOffsets, rows: rows, bits: bits, sums: sums,
              table: table, shortcut: shortcut, shortcutCodes: savedCodes, shortcutRows: shortcutRows,
              arcs: layer.nibbleArcs, codes: out)
          }
          if !records.isEmpty {
            (records[recordIndex].base + first * (rows / n) * m).update(from: z, count: rows * m)
            recordIndex += 1
          }
          act = scratch.swapActivations()
          continue
        } else if options.path == .avx2, bits == 32, let direct = layer.directConvWeights,
          case .conv(_, _, let k, let s, let p) = layer.geometry
        {
          // A small exact convolution (the first layer): windows gathered in registers, no im2col rows.
          let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1)
          rows = n * ho * wo
          z = scratch.int32s(.sums, count: rows * m)
          directConvolution(
            direct, stride: s, padding: p, pixels: act, images: n, height: h, width: w, output: z)
          (h, w, c) = (ho, wo, m)
        } else {
          switch layer.geometry {
          case .linear(let inF, _):
            rows = n
            if kp == inF {
              x = act
            } else {
              // Rows of kp bytes; the columns inF ..< kp may hold anything (they meet zero weights).
              x = scratch.bytes(.columns, count: n * kp)
              for i in 0..<n { (x + i * kp).update(from: act + i * inF, count: inF) }
            }
            (h, w, c) = (1, 1, m)
          case .conv(let inC, _, let k, let s, let p):
            let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1)
            rows = n * ho * wo
            x = scratch.bytes(.columns, count: rows * kp)
            Self.im2col(act, n: n, h: h, w: w, c: inC, kernel: k, stride: s, padding: p, into: x, rowStride: kp)
            (h, w, c) = (ho, wo, m)
          }
          z = scratch.int32s(.sums, count: rows * m)
          wrapGEMM(
            weights: layer.weights, activations: UnsafeBufferPointer(start: x, count: rows * kp), n: rows,
            activationRowStride: kp, bits: bits, lanes: lanes, path: options.path,
            output: UnsafeMutableBufferPointer(start: z, count: rows * m))
        }
        if layer.accumulatorMode == .clamp {
          let lo = Int32(-(1 << (layer.accumulatorBits - 1))), hi = Int32((1 << (layer.accumulatorBits - 1)) - 1)
          for j in 0..<(rows * m) { z[j] = min(max(z[j], lo), hi) }
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
          (records[recordIndex].base + first * (rows / n) * m).update(from: z, count: rows * m)
          recordIndex += 1
        }
        let out = scratch.bytes(.next, count: rows * m)
        if layer.readsShortcut {
          guard let sc = saved else { preconditionFailure("InferenceModel: residual layer '\(layer.name)' without a saved shortcut") }
          Self.residualCodes(
            z, rows: rows, channels: m, output: layer.output, bits: layer.accumulatorBits, outputGrid: (h, w),
            shortcut: (UnsafePointer(sc.codes), sc.h, sc.w, sc.c), into: out)
          saved = nil
        } else {
          Self.nextCodes(z, rows: rows, channels: m, output: layer.output, bits: layer.accumulatorBits, into: out)
        }
        act = scratch.swapActivations()
      }
    }
  }

  /// The nibble kernel's input for one dense layer on codes `act` [n, h, w, c] (NHWC): the packed bytes and the
  /// offsets of each row (output pixel) and of each 16-code group in it (see `wrapGEMM(nibbleWeights:base:...)`).
  /// A linear layer gets plain packed rows with zero tails. A convolution gets a zero-bordered packed copy of its
  /// input [n, h + 2p, w + 2p, c / 2] and no im2col at all: row (i, oy, ox) starts at its window's top-left
  /// pixel, group g at kernel tap (16g) / c, channel (16g) % c (the loader only packs layers with c % 16 == 0,
  /// so a group never straddles two pixels). Returns the output grid (1 × 1 for linear).
  fileprivate static func nibbleInput(
    _ act: UnsafePointer<UInt8>, n: Int, h: Int, w: Int, geometry: DenseGeometry, weights: NibbleWeights,
    scratch: ForwardScratch
  ) -> (
    base: UnsafeMutablePointer<UInt8>, rows: Int, rowOffsets: UnsafeMutablePointer<Int>,
    groupOffsets: UnsafeMutablePointer<UInt32>, h: Int, w: Int
  ) {
    let groups = weights.groups
    let groupOffsets = scratch.typed(.groupOffsets, count: groups, as: UInt32.self)
    switch geometry {
    case .linear(let inF, _):
      let stride = weights.rowBytes
      let x = scratch.bytes(.columns, count: n * stride)
      // Zero first: the kernel sums the tail nibbles past inF too (x ^ 0 is not 0 for other bytes).
      x.update(repeating: 0, count: n * stride)
      let rowOffsets = scratch.typed(.rowOffsets, count: n, as: Int.self)
      for i in 0..<n {
        NibbleWeights.packCodes(act + i * inF, count: inF, into: x + i * stride)
        rowOffsets[i] = i * stride
      }
      for g in 0..<groups { groupOffsets[g] = UInt32(8 * g) }
      return (x, n, rowOffsets, groupOffsets, 1, 1)
    case .conv(let inC, _, let k, let s, let p):
      let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1)
      let (hp, wp, pixelBytes) = (h + 2 * p, w + 2 * p, inC / 2)
      let x = scratch.bytes(.packed, count: n * hp * wp * pixelBytes)
      if p > 0 { x.update(repeating: 0, count: n * hp * wp * pixelBytes) }
      for i in 0..<n {
        for y in 0..<h {
          NibbleWeights.packCodes(
            act + (i * h + y) * w * inC, count: w * inC, into: x + ((i * hp + y + p) * wp + p) * pixelBytes)
        }
      }
      let rowOffsets = Self.windowOffsets(
        n: n, output: (ho, wo), padded: (hp, wp), stride: s, pixelBytes: pixelBytes, scratch: scratch)
      for g in 0..<groups {
        let (tap, ch) = (16 * g).quotientAndRemainder(dividingBy: inC)
        groupOffsets[g] = UInt32(((tap / k) * wp + tap % k) * pixelBytes + ch / 2)
      }
      return (x, n * ho * wo, rowOffsets, groupOffsets, ho, wo)
    }
  }

  /// The byte offset of each output pixel's window (its top-left input pixel) in a zero-bordered NHWC tensor of
  /// `padded` pixels per image, `pixelBytes` each: [n · ho · wo] Int, in the `.rowOffsets` slot. Wrapping
  /// arithmetic in the n·ho·wo loop (checked multiplies were 2% of a resnet20 run); every offset lies inside the
  /// tensor.
  fileprivate static func windowOffsets(
    n: Int, output: (h: Int, w: Int), padded: (h: Int, w: Int), stride s: Int, pixelBytes: Int,
    scratch: ForwardScratch
  ) -> UnsafeMutablePointer<Int> {
    let (ho, wo, hp, wp) = (output.h, output.w, padded.h, padded.w)
    let rowOffsets = scratch.typed(.rowOffsets, count: n * ho * wo, as: Int.self)
    var r = 0
    let step = s &* pixelBytes
    for i in 0..<n {
      for oy in 0..<ho {
        let start = ((i &* hp &+ oy &* s) &* wp) &* pixelBytes
        var ox = 0
        while ox < wo {
          rowOffsets[r &+ ox] = start &+ ox &* step
          ox &+= 1
        }
        r &+= wo
      }
    }
    return rowOffsets
  }

  /// The lookup kernel's input for one dense layer on codes `act` [n, h, w, c] (NHWC): per-pixel tables (4 bytes
  /// per code, `LookupWeights.buildTables`) and the offsets of each row (output pixel) and of each pair of 4-code
  /// groups in it (see `wrapGEMM(lookupWeights:base:...)`). A linear layer gets one table row per image. A
  /// convolution gets a zero-bordered tensor of tables [n, h + 2p, w + 2p, 4c] (code 0's table is all zeros, so
  /// the border adds nothing) and no im2col: row (i, oy, ox) starts at its window's top-left pixel, pair j at
  /// kernel tap (8j) / c, channel (8j) % c (the loader only indexes layers with c % 16 == 0). Returns the output
  /// grid (1 × 1 for linear).
  fileprivate static func lookupInput(
    _ act: UnsafePointer<UInt8>, n: Int, h: Int, w: Int, geometry: DenseGeometry, weights: LookupWeights,
    scratch: ForwardScratch
  ) -> (
    base: UnsafeMutablePointer<UInt8>, rows: Int, rowOffsets: UnsafeMutablePointer<Int>,
    groupOffsets: UnsafeMutablePointer<UInt32>, h: Int, w: Int
  ) {
    let pairs = weights.pairs
    let subset = weights.subsetTables
    let pairOffsets = scratch.typed(.groupOffsets, count: pairs, as: UInt32.self)
    switch geometry {
    case .linear(let inF, _):
      let stride = weights.rowBytes
      let x = scratch.bytes(.packed, count: n * stride)
      let rowOffsets = scratch.typed(.rowOffsets, count: n, as: Int.self)
      for i in 0..<n {
        LookupWeights.buildTables(act + i * inF, count: inF, subset: subset, into: x + i * stride)
        rowOffsets[i] = i * stride
      }
      for j in 0..<pairs { pairOffsets[j] = UInt32(32 * j) }
      return (x, n, rowOffsets, pairOffsets, 1, 1)
    case .conv(let inC, _, let k, let s, let p):
      let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1)
      let (hp, wp, pixelBytes) = (h + 2 * p, w + 2 * p, 4 * inC)
      let x = scratch.bytes(.packed, count: n * hp * wp * pixelBytes)
      for i in 0..<n {
        let image = x + i * hp * wp * pixelBytes
        if p > 0 {
          // Only the border is zeroed (the tables are 8 times the codes): p rows above and below, p pixels left
          // and right of every image row.
          image.update(repeating: 0, count: p * wp * pixelBytes)
          (image + (p + h) * wp * pixelBytes).update(repeating: 0, count: p * wp * pixelBytes)
        }
        for y in 0..<h {
          let row = image + (y + p) * wp * pixelBytes
          if p > 0 {
            row.update(repeating: 0, count: p * pixelBytes)
            (row + (p + w) * pixelBytes).update(repeating: 0, count: p * pixelBytes)
          }
          LookupWeights.buildTables(
            act + (i * h + y) * w * inC, count: w * inC, subset: subset, into: row + p * pixelBytes)
        }
      }
      let rowOffsets = Self.windowOffsets(
        n: n, output: (ho, wo), padded: (hp, wp), stride: s, pixelBytes: pixelBytes, scratch: scratch)
      for j in 0..<pairs {
        let (tap, ch) = (8 * j).quotientAndRemainder(dividingBy: inC)
        pairOffsets[j] = UInt32(((tap / k) * wp + tap % k) * pixelBytes + 4 * ch)
      }
      return (x, n * ho * wo, rowOffsets, pairOffsets, ho, wo)
    }
  }

  /// Integer im2col of NHWC codes [n, h, w, c] into rows of `rowStride` bytes: row (i, oy, ox), columns
  /// (ky, kx, c), code 0 outside the image. Columns `k·k·c ..< rowStride` are left as they are (they meet zero
  /// weights).
  static func im2col(
    _ act: UnsafePointer<UInt8>, n: Int, h: Int, w: Int, c: Int, kernel k: Int, stride s: Int, padding p: Int,
    into x: UnsafeMutablePointer<UInt8>, rowStride: Int
  ) {
    let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1)
    let rowBytes = k * k * c
    // Plain while loops: these run once per output position and kernel row, where range iterators cost more
    // than the copies. Every output window overlaps the image (p < k), so the kernel-row and -column ranges
    // below are never empty.
    var i = 0
    while i < n {
      var oy = 0
      while oy < ho {
        let y0 = oy &* s &- p
        // Kernel rows inside the image: ky in kyLo ..< kyHi.
        let kyLo = max(0, -y0), kyHi = min(k, h &- y0)
        var ox = 0
        while ox < wo {
          let x0 = ox &* s &- p
          let kxLo = max(0, -x0), kxHi = min(k, w &- x0)
          let row = x + ((i &* ho &+ oy) &* wo &+ ox) &* rowStride
          // Rows that overlap the border need their padding zeros; interior rows are overwritten completely.
          if kyLo > 0 || kyHi < k || kxLo > 0 || kxHi < k { row.update(repeating: 0, count: rowBytes) }
          // A pixel's channels are contiguous in NHWC and in the column order (ky, kx, c), and so are the pixels
          // kx = kxLo ..< kxHi of one kernel row: one copy per kernel row.
          let span = (kxHi &- kxLo) &* c
          var ky = kyLo
          while ky < kyHi {
            copyBytes(
              to: row + (ky &* k &+ kxLo) &* c, from: act + ((i &* h &+ y0 &+ ky) &* w &+ x0 &+ kxLo) &* c, count: span)
            ky &+= 1
          }
          ox &+= 1
        }
        oy &+= 1
      }
      i &+= 1
    }
  }

  /// Copies `count` bytes with 16-byte vector moves and a byte tail: im2col copies are short (a few channels times
  /// the kernel width), where a `memmove` call costs more than the copy.
  @inline(__always)
  static func copyBytes(to dst: UnsafeMutablePointer<UInt8>, from src: UnsafePointer<UInt8>, count: Int) {
    var t = 0
    let d = UnsafeMutableRawPointer(dst), s = UnsafeRawPointer(src)
    while t &+ 16 <= count {
      d.storeBytes(of: s.loadUnaligned(fromByteOffset: t, as: SIMD16<UInt8>.self), toByteOffset: t, as: SIMD16<UInt8>.self)
      t &+= 16
    }
    if t &+ 8 <= count {
      d.storeBytes(of: s.loadUnaligned(fromByteOffset: t, as: UInt64.self), toByteOffset: t, as: UInt64.self)
      t &+= 8
    }
    while t < count {
      dst[t] = src[t]
      t &+= 1
    }
  }

  /// The number of thresholds a value passes: ascending rows count `v >= t[l]`, descending rows `v <= t[l]`;
  /// `t` (count `levels`) is monotone in that direction, so a binary search finds the count when there are many.
  @inline(__always)
  static func thresholdCode(_ v: Int64, _ t: UnsafePointer<Int64>, levels: Int, descending: Bool) -> UInt8 {
    if levels <= 8 {
      var code = 0
      if descending {
        for l in 0..<levels where v <= t[l] { code &+= 1 }
      } else {
        for l in 0..<levels where v >= t[l] { code &+= 1 }
      }
      return UInt8(truncatingIfNeeded: code)
    }
    // The passed thresholds form a prefix: find its length.
    var (lo, hi) = (0, levels)
    while lo < hi {
      let mid = (lo + hi) / 2
      if descending ? v <= t[mid] : v >= t[mid] { lo = mid + 1 } else { hi = mid }
    }
    return UInt8(truncatingIfNeeded: lo)
  }

  /// Next activation codes from accumulator values v [rows, channels] through a table or thresholds.
  static func nextCodes(
    _ z: UnsafePointer<Int32>, rows: Int, channels m: Int, output: DenseOutput, bits: Int,
    into out: UnsafeMutablePointer<UInt8>
  ) {
    switch output {
    case .table(let codes):
      let size = 1 << bits
      let offset = 1 << (bits - 1)
      codes.withUnsafeBufferPointer { t in
        for r in 0..<rows {
          let zr = z + r * m, or = out + r * m
          for ch in 0..<m { or[ch] = t[ch &* size &+ Int(zr[ch]) &+ offset] }
        }
      }
    case .thresholds(let thresholds, let levels, let descending) where levels <= 8:
      // Few levels (1-3 for 2-bit codes): counted in C without branches (a `where` filter mispredicts).
      thresholds.withUnsafeBufferPointer { t in
        descending.withUnsafeBufferPointer { down in
          // Bool is one byte, 0 or 1.
          let flags = UnsafeRawPointer(down.baseAddress!).assumingMemoryBound(to: UInt8.self)
          wrapnet_threshold_codes(z, rows, m, t.baseAddress!, levels, flags, out)
        }
      }
    case .thresholds(let thresholds, let levels, let descending):
      thresholds.withUnsafeBufferPointer { t in
        for r in 0..<rows {
          let zr = z + r * m, or = out + r * m
          for ch in 0..<m {
            or[ch] = thresholdCode(Int64(zr[ch]), t.baseAddress! + ch * levels, levels: levels, descending: descending[ch])
          }
        }
      }
    case .float(let f) where f.shortcut == nil:
      for r in 0..<rows {
        let zr = z + r * m, or = out + r * m
        for ch in 0..<m { or[ch] = f.code(zr[ch], channel: ch, shortcut: 0) }
      }
    case .residualTable, .residualThresholds, .float, .logits:
      preconditionFailure("nextCodes: \(output) needs a shortcut or produces logits")
    }
  }

  /// Offsets in a residual block's saved input [n, saved.h, saved.w, saved.c] of the shortcut pixels of output
  /// rows r0 ..< r0 + count (row = (i, y, x) over `outputGrid`; the shortcut samples every `stride`-th pixel).
  static func shortcutPixelOffsets(
    from r0: Int, count: Int, outputGrid: (h: Int, w: Int), saved: (h: Int, w: Int, c: Int), stride st: Int,
    into offsets: UnsafeMutablePointer<Int>
  ) {
    // Row r0 + b is (image i, y, x) of the output grid; walked incrementally (two divisions per row were 2-3% of
    // a resnet20 run).
    // (Wrapping arithmetic: the offsets lie inside the saved tensor, whose size the caller allocated.)
    let (first, pos) = r0.quotientAndRemainder(dividingBy: outputGrid.h * outputGrid.w)
    var i = first
    var (y, x) = pos.quotientAndRemainder(dividingBy: outputGrid.w)
    var rowStart = ((i &* saved.h &+ y &* st) &* saved.w) &* saved.c
    let step = st &* saved.c
    var b = 0
    while b < count {
      offsets[b] = rowStart &+ x &* step
      x &+= 1
      if x == outputGrid.w {
        x = 0
        y &+= 1
        if y == outputGrid.h { (y, i) = (0, i &+ 1) }
        rowStart = ((i &* saved.h &+ y &* st) &* saved.w) &* saved.c
      }
      b &+= 1
    }
  }

  /// Next activation codes of a residual block's last layer: accumulator values v [rows, channels] (rows =
  /// (i, y, x) over `outputGrid`) and the saved block input's code s at the shortcut position, through the
  /// [C, S, 2^b] table or the [C, S, levels] thresholds.
  static func residualCodes(
    _ z: UnsafePointer<Int32>, rows: Int, channels m: Int, output: DenseOutput, bits: Int, outputGrid: (h: Int, w: Int),
    shortcut saved: (codes: UnsafePointer<UInt8>, h: Int, w: Int, c: Int), into out: UnsafeMutablePointer<UInt8>
  ) {
    // Rows go in blocks, channels outermost inside a block: one channel's table rows (S · 2^b bytes) stay in L1
    // while the block's rows use them, where a row-by-row walk would cycle through all C · S · 2^b bytes.
    let blockRows = 32
    var shortcutRows = [Int](repeating: 0, count: blockRows)
    func shortcutOffsets(from r0: Int, count: Int, stride st: Int, into sr: UnsafeMutableBufferPointer<Int>) {
      Self.shortcutPixelOffsets(
        from: r0, count: count, outputGrid: outputGrid, saved: (saved.h, saved.w, saved.c), stride: st,
        into: sr.baseAddress!)
    }
    /// Calls `body(index, channel, shortcut code)` for every value z[index] (index = row · m + channel); used by
    /// the rarer outputs (32-bit residual thresholds, Float post-processing).
    func forEachValue(_ sc: Shortcut, _ body: (Int, Int, Int) -> Void) {
      shortcutRows.withUnsafeMutableBufferPointer { sr in
        var r0 = 0
        while r0 < rows {
          let count = min(blockRows, rows - r0)
          shortcutOffsets(from: r0, count: count, stride: sc.stride, into: sr)
          for ch in 0..<m {
            let j = ch - sc.padBefore
            let reaches = j >= 0 && j < sc.channels
            for b in 0..<count {
              body((r0 &+ b) &* m &+ ch, ch, reaches ? Int(saved.codes[sr[b] &+ j]) : 0)
            }
          }
          r0 += count
        }
      }
    }
    switch output {
    case .residualTable(let codes, let sc):
      let size = 1 << bits
      let offset = 1 << (bits - 1)
      // The hot path (every low-bit ResNet block): written out, with the channel's table base hoisted.
      codes.withUnsafeBufferPointer { t in
        shortcutRows.withUnsafeMutableBufferPointer { sr in
          var r0 = 0
          while r0 < rows {
            let count = min(blockRows, rows - r0)
            shortcutOffsets(from: r0, count: count, stride: sc.stride, into: sr)
            for ch in 0..<m {
              let tc = t.baseAddress! + ch * sc.codes * size + offset
              let j = ch - sc.padBefore
              let reaches = j >= 0 && j < sc.channels
              for b in 0..<count {
                let r = r0 &+ b
                let code = reaches ? Int(saved.codes[sr[b] &+ j]) : 0
                out[r &* m &+ ch] = tc[code &* size &+ Int(z[r &* m &+ ch])]
              }
            }
            r0 += count
          }
        }
      }
    case .residualThresholds(let thresholds, let levels, let descending, let sc):
      thresholds.withUnsafeBufferPointer { t in
        forEachValue(sc) { index, ch, code in
          out[index] = thresholdCode(
            Int64(z[index]), t.baseAddress! + (ch * sc.codes + code) * levels, levels: levels, descending: descending[ch])
        }
      }
    case .float(let f) where f.shortcut != nil:
      forEachValue(f.shortcut!) { index, ch, code in out[index] = f.code(z[index], channel: ch, shortcut: code) }
    default:
      preconditionFailure("residualCodes: \(output) is not a residual output")
    }
  }
}

/// Scratch buffers kept between runs, one set per thread that runs at the same time (at most 8 kept): a fresh set
/// per run page-faulted its megabytes in again on every run (a few percent of a resnet20 batch on one thread,
/// more with two threads faulting at once). Contents never carry over: every step writes what it reads.
fileprivate final class ScratchPool: @unchecked Sendable {
  static let shared = ScratchPool()
  private let lock = NSLock()
  private var free: [ForwardScratch] = []

  /// A kept set, or a new one.
  func take() -> ForwardScratch {
    lock.lock()
    defer { lock.unlock() }
    return free.popLast() ?? ForwardScratch()
  }

  /// Keeps `scratch` for the next run (drops it when 8 are kept already).
  func give(_ scratch: ForwardScratch) {
    lock.lock()
    defer { lock.unlock() }
    if free.count < 8 { free.append(scratch) }
  }
}

/// Buffers one thread reuses for every chunk and layer of `InferenceModel.run`, so the forward pass allocates
/// (and page-faults) only while they grow. Two activation buffers alternate: a step reads `.activations` and
/// writes `.next`, then `swapActivations()` makes the result current.
fileprivate final class ForwardScratch {
  enum Slot: Int, CaseIterable {
    /// Current activation codes, [n, h, w, c] UInt8.
    case activations
    /// The step's output codes.
    case next
    /// im2col rows or padded linear rows, UInt8.
    case columns
    /// The current activations as lookup tables (lookup kernel, 4 bytes per code) or packed two codes per byte
    /// (nibble kernel), UInt8; zero-bordered for a convolution.
    case packed
    /// Lookup and nibble kernels: byte offset of each row (Int) and of each group (pair of 4-code groups, or 16
    /// codes) in a row (UInt32); offset of each output pixel's shortcut pixel in a residual block's saved input
    /// (Int).
    case rowOffsets
    case groupOffsets
    case shortcutRows
    /// Accumulator values, Int32.
    case sums
    /// A residual block's saved input, UInt8.
    case shortcut
  }

  private var buffers: [UnsafeMutableRawPointer?] = Array(repeating: nil, count: Slot.allCases.count)
  private var capacities = [Int](repeating: 0, count: Slot.allCases.count)

  /// At least `bytes` bytes of `slot` (contents undefined after a growth), 64-byte aligned.
  private func raw(_ slot: Slot, bytes: Int) -> UnsafeMutableRawPointer {
    let i = slot.rawValue
    if capacities[i] < bytes || buffers[i] == nil {
      buffers[i]?.deallocate()
      let size = max(bytes, 64, capacities[i] * 3 / 2)
      buffers[i] = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
      capacities[i] = size
    }
    return buffers[i]!
  }

  /// `count` values of type `T` (a plain integer type) in `slot`.
  func typed<T>(_ slot: Slot, count: Int, as type: T.Type) -> UnsafeMutablePointer<T> {
    raw(slot, bytes: count * MemoryLayout<T>.stride).bindMemory(to: T.self, capacity: max(count, 1))
  }

  /// `count` bytes of `slot`.
  func bytes(_ slot: Slot, count: Int) -> UnsafeMutablePointer<UInt8> { typed(slot, count: count, as: UInt8.self) }

  /// `count` Int32 values of `slot`.
  func int32s(_ slot: Slot, count: Int) -> UnsafeMutablePointer<Int32> { typed(slot, count: count, as: Int32.self) }

  /// Makes `.next` the current activations (and the old activations the next output buffer); returns them.
  func swapActivations() -> UnsafeMutablePointer<UInt8> {
    let (a, n) = (Slot.activations.rawValue, Slot.next.rawValue)
    buffers.swapAt(a, n)
    capacities.swapAt(a, n)
    return buffers[a]!.assumingMemoryBound(to: UInt8.self)
  }

  /// Moves the current activations to `.shortcut` (the old shortcut buffer takes their slot and is written
  /// only after the next `swapActivations`), so a residual block keeps its input without a copy; returns them.
  func keepActivationsAsShortcut() -> UnsafeMutablePointer<UInt8> {
    let (a, s) = (Slot.activations.rawValue, Slot.shortcut.rawValue)
    buffers.swapAt(a, s)
    capacities.swapAt(a, s)
    return buffers[s]!.assumingMemoryBound(to: UInt8.self)
  }

  deinit {
    for b in buffers { b?.deallocate() }
  }
}
