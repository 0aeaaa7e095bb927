extension InferenceRunner {
  /// Forward of `n` images starting at image `first` (for the recorded buffers' offsets), in `scratch`'s buffers:
  /// pixels NCHW [n, C, H, W] in, logits [n, classes] out.
  ///
  /// Activations are NHWC `UInt8` codes [n, h, w, c] in `scratch`'s current activation buffer; each step writes
  /// the next one into the other buffer and swaps them. Every dense layer runs the kernel fixed in `steps`.
  func forward(
    pixels: UnsafePointer<UInt8>, n: Int, first: Int, logits: UnsafeMutablePointer<Float>,
    records: [SharedPointer<Int32>], scratch: ForwardScratch
  ) {
    let shape = model.inputShape
    var (h, w, c) = (shape[1], shape[2], shape[0])
    var act = Self.nhwcCodes(pixels, n: n, channels: c, height: h, width: w, scratch: scratch)
    // The saved input of the current residual block: its buffer and shape [n, h, w, c].
    var saved: (codes: UnsafeMutablePointer<UInt8>, h: Int, w: Int, c: Int)? = nil
    var recordIndex = 0
    for step in steps {
      switch step {
      case .flatten:
        (h, w, c) = (1, 1, h * w * c)
      case .saveShortcut:
        // The current buffer itself becomes the saved input (no copy): it leaves the two-buffer rotation until
        // the next block, and the block's layers read it as their input as before.
        saved = (scratch.keepActivationsAsShortcut(), h, w, c)
      case .recode(let map):
        // Into the other buffer: the codes may be the saved shortcut, which keeps its own.
        let count = n * h * w * c
        let out = scratch.bytes(.next, count: count)
        map.withUnsafeBufferPointer { m in
          for j in 0..<count { out[j] = m[Int(act[j])] }
        }
        act = scratch.swapActivations()
      case .sumPool:
        Self.sumPool(act, n: n, positions: h * w, channels: c, into: scratch.bytes(.next, count: n * c))
        act = scratch.swapActivations()
        (h, w) = (1, 1)
      case .maxPool(let k, let s):
        let (ho, wo) = ((h - k) / s + 1, (w - k) / s + 1)
        Self.maxPool(
          act, n: n, h: h, w: w, c: c, kernel: k, stride: s, into: scratch.bytes(.next, count: n * ho * wo * c))
        act = scratch.swapActivations()
        (h, w) = (ho, wo)
      case .dense(let layer, let kernel):
        let input = (codes: UnsafePointer(act), h: h, w: w)
        let m = layer.outChannels
        (h, w, c) = layer.geometry.outputGrid(height: h, width: w, channels: m)
        let rows = n * h * w
        let out = scratch.bytes(.next, count: rows * m)
        // The shortcut codes this layer's output reads, if it ends a residual block; they are used up here.
        let shortcut = layer.readsShortcut ? saved : nil
        if layer.readsShortcut {
          precondition(shortcut != nil, "InferenceRunner: residual layer '\(layer.name)' without a saved shortcut")
          saved = nil
        }
        // Where this layer's accumulator values go when they are recorded.
        let record = records.isEmpty || layer.producesLogits ? nil : records[recordIndex].base + first * h * w * m
        if record != nil { recordIndex += 1 }
        if case .lookup(let weights, let arcs) = kernel, let table = layer.output.codeTable {
          // Table outputs are fused into the lookup kernel: it writes the next codes straight from the wrapped
          // sums (and the sums only when they are recorded).
          let tables = Self.lookupInput(
            input.codes, n: n, h: input.h, w: input.w, geometry: layer.geometry, weights: weights, scratch: scratch)
          var shortcutRows: UnsafeMutablePointer<Int>? = nil
          if let sc = table.shortcut, let block = shortcut {
            shortcutRows = scratch.typed(.shortcutRows, count: rows, as: Int.self)
            Self.shortcutPixelOffsets(
              from: 0, count: rows, outputGrid: (h, w), saved: (block.h, block.w, block.c), stride: sc.stride,
              into: shortcutRows!)
          }
          weights.runFused(
            base: tables.base, rowOffsets: tables.rowOffsets, pairOffsets: tables.pairOffsets, rows: rows,
            bits: layer.accumulatorBits, sums: record, table: table.codes, shortcut: table.shortcut,
            shortcutCodes: shortcut.map { UnsafePointer($0.codes) }, shortcutRows: shortcutRows, arcs: arcs,
            codes: out)
          act = scratch.swapActivations()
        } else {
          let z = accumulators(layer, kernel, input: input, n: n, rows: rows, scratch: scratch)
          if layer.accumulatorMode == .clamp {
            let (lo, hi) = (Int32(layer.accumulatorWidth.min), Int32(layer.accumulatorWidth.max))
            for j in 0..<(rows * m) { z[j] = min(max(z[j], lo), hi) }
          }
          record?.update(from: z, count: rows * m)
          if case .logits(let scale, let bias) = layer.output {
            // logits = Float(z) * scale + bias: two separate roundings, as the trainer computes them.
            for i in 0..<n {
              for o in 0..<m {
                let product = Float(z[i * m + o]) * scale[o]
                logits[i * m + o] = product + bias[o]
              }
            }
          } else if let sc = shortcut {
            Self.residualCodes(
              z, rows: rows, channels: m, output: layer.output, bits: layer.accumulatorBits, outputGrid: (h, w),
              shortcut: (UnsafePointer(sc.codes), sc.h, sc.w, sc.c), into: out)
            act = scratch.swapActivations()
          } else {
            Self.nextCodes(z, rows: rows, channels: m, output: layer.output, bits: layer.accumulatorBits, into: out)
            act = scratch.swapActivations()
          }
        }
      }
    }
  }

  /// The accumulator values v of `layer` [rows, m] (rows = n · output positions) on codes `input` [n, h, w, c],
  /// computed by `kernel`, in the `.sums` slot: wrap_b(z) for wrap-around layers, z for the others (clamped by
  /// the caller).
  private func accumulators(
    _ layer: DenseLayer, _ kernel: LayerKernel, input: (codes: UnsafePointer<UInt8>, h: Int, w: Int), n: Int,
    rows: Int, scratch: ForwardScratch
  ) -> UnsafeMutablePointer<Int32> {
    let m = layer.outChannels
    let bits = layer.wrapsAround ? layer.accumulatorBits : 32
    let z = scratch.int32s(.sums, count: rows * m)
    let output = UnsafeMutableBufferPointer(start: z, count: rows * m)
    switch kernel {
    case .lookup(let weights, _):
      let tables = Self.lookupInput(
        input.codes, n: n, h: input.h, w: input.w, geometry: layer.geometry, weights: weights, scratch: scratch)
      wrapGEMM(
        lookupWeights: weights, base: tables.base,
        rowOffsets: UnsafeBufferPointer(start: tables.rowOffsets, count: rows),
        pairOffsets: UnsafeBufferPointer(start: tables.pairOffsets, count: weights.pairs), bits: bits, output: output)
    case .directConvolution(let direct):
      // A small exact convolution (the first layer): windows gathered in registers, no im2col rows.
      guard case .conv(_, _, _, let s, let p) = layer.geometry else {
        preconditionFailure("InferenceRunner: direct convolution on linear layer '\(layer.name)'")
      }
      directConvolution(
        direct, stride: s, padding: p, pixels: input.codes, images: n, height: input.h, width: input.w, output: z)
    case .gemm(let lanes, let path):
      let kp = layer.weights.paddedK
      let x: UnsafePointer<UInt8>
      switch layer.geometry {
      case .linear(let inF, _):
        if kp == inF {
          x = input.codes
        } else {
          // Rows of kp bytes; the columns inF ..< kp may hold anything (they meet zero weights).
          let padded = scratch.bytes(.columns, count: n * kp)
          for i in 0..<n { (padded + i * kp).update(from: input.codes + i * inF, count: inF) }
          x = UnsafePointer(padded)
        }
      case .conv(let inC, _, let k, let s, let p):
        let columns = scratch.bytes(.columns, count: rows * kp)
        Self.im2col(
          input.codes, n: n, h: input.h, w: input.w, c: inC, kernel: k, stride: s, padding: p, into: columns,
          rowStride: kp)
        x = UnsafePointer(columns)
      }
      wrapGEMM(
        weights: layer.weights, activations: UnsafeBufferPointer(start: x, count: rows * kp), n: rows,
        activationRowStride: kp, bits: bits, lanes: lanes, path: path, output: output)
    }
    return z
  }
}

extension DenseGeometry {
  /// The output shape [h', w', channels] of this layer on an [height, width, ·] input: 1 × 1 for linear layers,
  /// h' = (height + 2p − k) / s + 1 (w' alike) for convolutions.
  func outputGrid(height: Int, width: Int, channels: Int) -> (h: Int, w: Int, c: Int) {
    switch self {
    case .linear: return (1, 1, channels)
    case .conv(_, _, let k, let s, let p): return ((height + 2 * p - k) / s + 1, (width + 2 * p - k) / s + 1, channels)
    }
  }
}

extension DenseLayer {
  /// Whether this is the logits layer (the network's last).
  var producesLogits: Bool {
    if case .logits = output { return true } else { return false }
  }
}

extension DenseOutput {
  /// The code table of a `.table` or `.residualTable` output (and the shortcut it reads), which the lookup kernel
  /// applies itself; nil for the other outputs.
  var codeTable: (codes: [UInt8], shortcut: Shortcut?)? {
    switch self {
    case .table(let codes): return (codes, nil)
    case .residualTable(let codes, let shortcut): return (codes, shortcut)
    case .thresholds, .residualThresholds, .float, .logits: return nil
    }
  }
}
