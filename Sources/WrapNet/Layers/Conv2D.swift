import CWrapNetTraining

// 2-D convolution by im2col + GEMM, plus the pure forward/backward functions that the quantized layers reuse
// with their own (integer-coded) weights.
//
// The forward pass runs one image per block: its im2col matrix [C·kh·kw, Ho·Wo] stays in the core's cache, and its
// product is written straight into its own output plane. The backward pass groups whole images into chunks whose
// columns sit side by side in one im2col matrix [C·kh·kw, images·Ho·Wo], so that its products (which sum over
// images for dW) are wide enough for BLAS. Chunks and blocks depend only on the shapes (never on the thread count),
// so results are reproducible bit for bit.

/// Target number of im2col columns per weight-gradient GEMM (whole images are grouped until they reach it).
/// With C·kh·kw = 576 this bounds the column buffer to about 19 MB.
private let conv2DColumnsPerChunk = 8192

/// Number of images per chunk for a given output plane size.
private func conv2DImagesPerChunk(batch: Int, planeSize: Int) -> Int {
  max(1, min(batch, conv2DColumnsPerChunk / max(planeSize, 1)))
}

/// Shapes of one convolution, checked once at the public entry points.
private struct Conv2DShape {
  var n, c, h, w, o, kh, kw, ho, wo: Int
  var plane: Int { ho * wo }
  var rows: Int { c * kh * kw }

  init(function: String, input: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int) {
    precondition(input.rank == 4, "\(function): input \(input.shape) must be [N, C, H, W]")
    precondition(weight.rank == 4, "\(function): weight \(weight.shape) must be [O, C, kh, kw]")
    precondition(
      input.shape[1] == weight.shape[1],
      "\(function): input \(input.shape) has \(input.shape[1]) channels, weight \(weight.shape) expects \(weight.shape[1])"
    )
    precondition(stride >= 1 && padding >= 0, "\(function): stride \(stride) must be >= 1, padding \(padding) >= 0")
    n = input.shape[0]
    c = input.shape[1]
    h = input.shape[2]
    w = input.shape[3]
    o = weight.shape[0]
    kh = weight.shape[2]
    kw = weight.shape[3]
    ho = Conv2D.outputSize(inputSize: h, kernelSize: kh, stride: stride, padding: padding)
    wo = Conv2D.outputSize(inputSize: w, kernelSize: kw, stride: stride, padding: padding)
    precondition(
      ho >= 1 && wo >= 1,
      "\(function): kernel \(kh)x\(kw) with padding \(padding) does not fit input \(input.shape)")
    if let bias { precondition(bias.shape == [o], "\(function): bias \(bias.shape) must be [\(o)]") }
  }
}

/// Forward of a 2-D convolution on a *given* weight (cross-correlation, as in PyTorch):
/// y[n, o, i, j] = Σ_{c, u, v} x[n, c, i·s − p + u, j·s − p + v] · W[o, c, u, v] + b[o] (x is 0 outside the image).
///
/// Shapes: `input` [N, C, H, W], `weight` [O, C, kh, kw], `bias` [O] or nil → output [N, O, Ho, Wo] with
/// Ho = (H + 2p − kh)/s + 1, Wo = (W + 2p − kw)/s + 1. `precision` selects Float32 or Float64 summation
/// (see `GEMMPrecision`); with `.double` the bias is added in Float64 before the single rounding.
public func conv2dForward(
  input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0,
  precision: GEMMPrecision = .single
) -> Tensor {
  // input [N, C, H, W], weight [O, C, kh, kw], bias [O] -> output [N, O, Ho, Wo]
  let sh = Conv2DShape(
    function: "conv2dForward", input: input, weight: weight, bias: bias, stride: stride, padding: padding)
  let shape = [sh.n, sh.o, sh.ho, sh.wo]
  switch precision {
  case .single:
    return Tensor(
      shape: shape,
      data: conv2dForwardKernel(
        sh, input: input, weight: weight, bias: bias, stride: stride, padding: padding, as: Float.self))
  case .double:
    let y = conv2dForwardKernel(
      sh, input: input, weight: weight, bias: bias, stride: stride, padding: padding, as: Double.self)
    return Tensor(shape: shape, data: y.map { Float($0) })
  }
}

/// Forward of a 2-D convolution summed in Float64 and returned unrounded (same formula and shapes as
/// `conv2dForward`; result row-major [N, O, Ho, Wo]). Exact for integer-valued operands while every partial sum
/// stays below 2⁵³.
public func conv2dForwardDouble(
  input: Tensor, weight: Tensor, bias: Tensor? = nil, stride: Int = 1, padding: Int = 0
) -> [Double] {
  // input [N, C, H, W], weight [O, C, kh, kw], bias [O] -> output [N, O, Ho, Wo]
  let sh = Conv2DShape(
    function: "conv2dForwardDouble", input: input, weight: weight, bias: bias, stride: stride, padding: padding)
  return conv2dForwardKernel(
    sh, input: input, weight: weight, bias: bias, stride: stride, padding: padding, as: Double.self)
}

/// Backward of `conv2dForward` on a given weight: accumulates dL/dW into `gradWeight` and returns dL/dx.
///
/// Formulas (cols = im2col(x), one column per output position):
/// dW[o, :] += Σ_positions dy[o, position] · cols[:, position] (dW += dy·colsᵀ),
/// dcols = Wᵀ·dy, dx = col2im(dcols) (each input pixel sums the gradients of every window that read it).
/// Shapes: `gradOutput` [N, O, Ho, Wo], `input` [N, C, H, W], `weight` [O, C, kh, kw], `gradWeight` like `weight`
/// → dx [N, C, H, W]. The bias gradient is `accumulateBiasGradient(gradOutput:into:)`. The im2col matrix is
/// recomputed from `input` (cheaper in memory than caching it for every layer).
///
/// Schedule: the two products of a chunk are cut into the blocks of `GEMMPartition` (as `sgemm` would cut them),
/// and where that partition is reduction blocks (dW) or column blocks (dcols) the blocks are computed here, where
/// their operands are still in cache: each reduction block of dW gets the im2col of just its columns, and each group
/// of images computes the column blocks of dcols it needs and folds every image back as soon as its columns are
/// done (a block shared by two groups is computed by both). Every block is the same single-threaded BLAS call on
/// the same values as in `sgemm`, so every sum equals the plain schedule's (im2col of the chunk, two `sgemm` calls,
/// col2im); products with other partitions take the plain schedule.
public func conv2dBackward(
  gradOutput: Tensor, input: Tensor, weight: Tensor, stride: Int = 1, padding: Int = 0, gradWeight: inout Tensor
) -> Tensor {
  // gradOutput [N, O, Ho, Wo], input [N, C, H, W], weight [O, C, kh, kw] -> gradInput [N, C, H, W]
  let sh = Conv2DShape(
    function: "conv2dBackward", input: input, weight: weight, bias: nil, stride: stride, padding: padding)
  precondition(
    gradOutput.shape == [sh.n, sh.o, sh.ho, sh.wo],
    "conv2dBackward: gradOutput \(gradOutput.shape) must be \([sh.n, sh.o, sh.ho, sh.wo]) for input \(input.shape), weight \(weight.shape)"
  )
  precondition(
    gradWeight.shape == weight.shape, "conv2dBackward: gradWeight \(gradWeight.shape) must match weight \(weight.shape)"
  )
  let plane = sh.plane
  let rows = sh.rows
  let perChunk = conv2DImagesPerChunk(batch: sh.n, planeSize: plane)
  let imageSize = sh.c * sh.h * sh.w
  var gradInput = [Float](repeating: 0, count: sh.n * imageSize)
  // Written in full for each chunk before it is read.
  var dyChunk: [Float] = unfilledArray(count: sh.o * perChunk * plane)
  input.data.withUnsafeBufferPointer { x in
    weight.data.withUnsafeBufferPointer { w in
      gradOutput.data.withUnsafeBufferPointer { dy in
        gradWeight.data.withUnsafeMutableBufferPointer { dw in
          gradInput.withUnsafeMutableBufferPointer { dx in
            dyChunk.withUnsafeMutableBufferPointer { pdy in
              let (xs, ws, dys, dyc, dws, dxs) = (
                SharedBuffer(x), SharedBuffer(w), SharedBuffer(dy), SharedBuffer(pdy), SharedBuffer(dw), SharedBuffer(dx)
              )
              // im2col columns first ..< first + count of the chunk starting at image n0 (column q is image n0 + q / plane,
              // position q % plane) into `columns` [rows, count] with row stride `rowStride`.
              @Sendable func chunkColumns(n0: Int, first: Int, count: Int, columns: UnsafeMutablePointer<Float>, rowStride: Int) {
                var q = first
                while q < first + count {
                  let (image, position) = q.quotientAndRemainder(dividingBy: plane)
                  let run = min(plane - position, first + count - q)
                  wrapnet_im2col_positions(
                    xs.base + (n0 + image) * imageSize, sh.c, sh.h, sh.w, sh.kh, sh.kw, stride, padding, sh.ho, sh.wo,
                    position, run, columns + (q - first), rowStride)
                  q += run
                }
              }
              for n0 in Swift.stride(from: 0, to: sh.n, by: perChunk) {
                let images = min(perChunk, sh.n - n0)
                let width = images * plane
                // Gather dy of each image from [O, plane] into the chunk layout [O, images·plane].
                runBlocks(images) { i in
                  for o in 0..<sh.o {
                    (dyc.base + o * width + i * plane).update(from: dys.base + ((n0 + i) * sh.o + o) * plane, count: plane)
                  }
                }
                let dyView = UnsafeBufferPointer(rebasing: pdy[0..<(sh.o * width)])

                // y = W·cols  (w.r.t. W): dW += dy·colsᵀ, [O, width]·[width, rows]
                if case .depthBlocks(let depth) = GEMMPartition(m: sh.o, n: rows, k: width) {
                  let blocks = (width + depth - 1) / depth
                  let partials = UnsafeMutablePointer<Float>.allocate(capacity: blocks * sh.o * rows)
                  defer { partials.deallocate() }
                  let ps = SharedBuffer(partials)
                  runBlocks(blocks) { b in
                    let (q0, kb) = (b * depth, min(depth, width - b * depth))
                    let cols = UnsafeMutablePointer<Float>.allocate(capacity: rows * kb)
                    defer { cols.deallocate() }
                    chunkColumns(n0: n0, first: q0, count: kb, columns: cols, rowStride: kb)
                    singleThreadedGEMM(
                      transA: .none, transB: .transpose, m: sh.o, n: rows, k: kb, a: UnsafePointer(dyc.base + q0),
                      lda: width, b: UnsafePointer(cols), ldb: kb, beta: 0, c: ps.base + b * sh.o * rows, ldc: rows)
                  }
                  addPartials(UnsafePointer(partials), blocks: blocks, count: sh.o * rows, beta: 1, into: dws.base)
                } else {
                  var cols: [Float] = unfilledArray(count: rows * width)
                  cols.withUnsafeMutableBufferPointer { pc in
                    let cs = SharedBuffer(pc)
                    runBlocks(images) { i in
                      chunkColumns(n0: n0, first: i * plane, count: plane, columns: cs.base + i * plane, rowStride: width)
                    }
                    sgemm(
                      transA: .none, transB: .transpose, m: sh.o, n: rows, k: width, a: dyView,
                      b: UnsafeBufferPointer(pc), beta: 1, c: dw)
                  }
                }

                // y = W·cols  (w.r.t. cols): dcols = Wᵀ·dy, [rows, O]·[O, width]; then dx += col2im(dcols)
                if case .columnBlocks(let blockWidth) = GEMMPartition(m: rows, n: width, k: sh.o) {
                  let groups = min(blasThreads(), images)
                  runBlocks(groups) { g in
                    let (i0, i1) = (g * images / groups, (g + 1) * images / groups)
                    let firstBlock = i0 * plane / blockWidth
                    let span = min(width, ((i1 * plane - 1) / blockWidth + 1) * blockWidth) - firstBlock * blockWidth
                    let gradCols = UnsafeMutablePointer<Float>.allocate(capacity: rows * span)
                    defer { gradCols.deallocate() }
                    var nextBlock = firstBlock
                    for i in i0..<i1 {
                      while nextBlock * blockWidth < (i + 1) * plane {
                        let j0 = nextBlock * blockWidth
                        singleThreadedGEMM(
                          transA: .transpose, transB: .none, m: rows, n: min(blockWidth, width - j0), k: sh.o,
                          a: UnsafePointer(ws.base), lda: rows, b: UnsafePointer(dyc.base + j0), ldb: width, beta: 0,
                          c: gradCols + (j0 - firstBlock * blockWidth), ldc: span)
                        nextBlock += 1
                      }
                      // cols = im2col(x)  (w.r.t. x): dx += col2im(dcols)
                      Conv2D.col2im(
                        columns: UnsafePointer(gradCols + (i * plane - firstBlock * blockWidth)), rowStride: span,
                        channels: sh.c, height: sh.h, width: sh.w, kernelHeight: sh.kh, kernelWidth: sh.kw,
                        stride: stride, padding: padding, image: dxs.base + (n0 + i) * imageSize)
                    }
                  }
                } else {
                  var gradCols: [Float] = unfilledArray(count: rows * width)
                  gradCols.withUnsafeMutableBufferPointer { pdc in
                    sgemm(transA: .transpose, transB: .none, m: rows, n: width, k: sh.o, a: w, b: dyView, beta: 0, c: pdc)
                    let dcs = SharedBuffer(pdc)
                    runBlocks(images) { i in
                      Conv2D.col2im(
                        columns: UnsafePointer(dcs.base + i * plane), rowStride: width, channels: sh.c,
                        height: sh.h, width: sh.w, kernelHeight: sh.kh, kernelWidth: sh.kw, stride: stride,
                        padding: padding, image: dxs.base + (n0 + i) * imageSize)
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
  }
  return Tensor(shape: input.shape, data: gradInput)
}

/// Backward of `conv2dForward` returning fresh gradients: (dL/dx [N, C, H, W], dL/dW [O, C, kh, kw]).
///
/// Same formulas as the accumulating form, starting from dW = 0; for the quantized layers, which map dL/dW' of
/// their coded weights W' back to the latent weights themselves.
public func conv2dBackward(
  gradOutput: Tensor, input: Tensor, weight: Tensor, stride: Int = 1, padding: Int = 0
) -> (gradInput: Tensor, gradWeight: Tensor) {
  // gradOutput [N, O, Ho, Wo], input [N, C, H, W], weight [O, C, kh, kw] -> ([N, C, H, W], [O, C, kh, kw])
  var gradWeight = Tensor(shape: weight.shape)
  let gradInput = conv2dBackward(
    gradOutput: gradOutput, input: input, weight: weight, stride: stride, padding: padding, gradWeight: &gradWeight)
  return (gradInput, gradWeight)
}

/// y = W·im2col(x) + b in the scalar type S, image by image; returns [N, O, Ho, Wo] row-major.
private func conv2dForwardKernel<S: BLASScalar>(
  _ sh: Conv2DShape, input: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int, as: S.Type
) -> [S] {
  // input [N, C, H, W], weight [O, C, kh, kw] (as [O, rows]), bias [O] -> output [N, O, Ho, Wo]
  let plane = sh.plane
  let rows = sh.rows
  let imageSize = sh.c * sh.h * sh.w
  let w = S.converting(weight.data)
  let b: [S]? = bias.map { S.converting($0.data) }
  // Written in full: every image's product (β = 0).
  var output: [S] = unfilledArray(count: sh.n * sh.o * plane)
  input.data.withUnsafeBufferPointer { x in
    w.withUnsafeBufferPointer { pw in
      output.withUnsafeMutableBufferPointer { y in
        let (xs, ws, ys) = (SharedBuffer(x), SharedBuffer(pw), SharedBuffer(y))
        runBlocks(sh.n) { i in
          let cols = UnsafeMutablePointer<S>.allocate(capacity: rows * plane)
          defer { cols.deallocate() }
          Conv2D.im2col(
            image: xs.base + i * imageSize, channels: sh.c, height: sh.h, width: sh.w, kernelHeight: sh.kh,
            kernelWidth: sh.kw, stride: stride, padding: padding, columns: cols, rowStride: plane)
          // [O, rows]·[rows, plane] -> image i's [O, plane], then + b[o]
          let dst = ys.base + i * sh.o * plane
          singleThreadedGEMM(
            transA: .none, transB: .none, m: sh.o, n: plane, k: rows, a: ws.base, lda: rows, b: cols, ldb: plane,
            beta: 0, c: dst, ldc: plane)
          if let b {
            for o in 0..<sh.o {
              let (row, bo) = (dst + o * plane, b[o])
              for p in 0..<plane { row[p] = row[p] + bo }
            }
          }
        }
      }
    }
  }
  return output
}

/// A 2-D convolution layer (cross-correlation, as in PyTorch) computed by im2col + GEMM.
///
/// y[n, o, i, j] = Σ_{c, u, v} x[n, c, i·s − p + u, j·s − p + v] · W[o, c, u, v] + b[o].
/// Shapes: input [N, C, H, W] → output [N, O, Ho, Wo], Ho = (H + 2p − k)/s + 1; `weight` [O, C, k, k],
/// `bias` [O] (absent when built with `bias: false`). Forward in `.training` keeps the input for backward.
public struct Conv2D: Layer {
  /// Weight W, [O, C, k, k].
  public var weight: Tensor
  /// Bias b, [O]; nil for a layer without bias.
  public var bias: Tensor?
  /// Accumulated dL/dW, like `weight`.
  public var gradWeight: Tensor
  /// Accumulated dL/db, [O]; nil when there is no bias.
  public var gradBias: Tensor?
  /// Stride s (both directions).
  public var stride: Int
  /// Zero padding p on every side.
  public var padding: Int
  /// Summation format of the forward product (see `GEMMPrecision`); backward always uses Float32.
  public var precision: GEMMPrecision = .single
  /// Input of the last `.training` forward (the backward cache).
  private var cachedInput: Tensor?

  /// Number of input channels C.
  public var inChannels: Int { weight.shape[1] }
  /// Number of output channels O.
  public var outChannels: Int { weight.shape[0] }

  /// A layer with the given weight [O, C, kh, kw] and optional bias [O]; gradients start at zero.
  public init(weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0) {
    precondition(weight.rank == 4, "Conv2D: weight \(weight.shape) must be [O, C, kh, kw]")
    if let bias {
      precondition(bias.shape == [weight.shape[0]], "Conv2D: bias \(bias.shape) must be [\(weight.shape[0])]")
    }
    precondition(stride >= 1 && padding >= 0, "Conv2D: stride \(stride) must be >= 1, padding \(padding) >= 0")
    self.weight = weight
    self.bias = bias
    self.gradWeight = Tensor(shape: weight.shape)
    self.gradBias = bias.map { Tensor(shape: $0.shape) }
    self.stride = stride
    self.padding = padding
  }

  /// A layer initialized like PyTorch's default: W and b uniform in [-1/√fanIn, 1/√fanIn], fanIn = C·k·k, drawn
  /// from `generator` (weights first, row-major, then bias), so a seeded generator gives reproducible weights.
  public init<G: RandomNumberGenerator>(
    inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true,
    using generator: inout G
  ) {
    precondition(
      inChannels > 0 && outChannels > 0 && kernelSize > 0,
      "Conv2D: channels and kernel size must be positive, got in=\(inChannels) out=\(outChannels) k=\(kernelSize)")
    let fanIn = inChannels * kernelSize * kernelSize
    let bound = 1 / Float(fanIn).squareRoot()
    let w = (0..<(outChannels * fanIn)).map { _ in Float.random(in: -bound...bound, using: &generator) }
    let b = bias ? (0..<outChannels).map { _ in Float.random(in: -bound...bound, using: &generator) } : nil
    self.init(
      weight: Tensor(shape: [outChannels, inChannels, kernelSize, kernelSize], data: w),
      bias: b.map { Tensor(shape: [outChannels], data: $0) }, stride: stride, padding: padding)
  }

  /// Output extent along one axis: (size + 2·padding − kernelSize) / stride + 1 (floor division; ≤ 0 means the
  /// kernel does not fit).
  public static func outputSize(inputSize: Int, kernelSize: Int, stride: Int, padding: Int) -> Int {
    let span = inputSize + 2 * padding - kernelSize
    return span < 0 ? 0 : span / stride + 1
  }

  /// Unfolds one image into its im2col matrix: columns[(c·kh + u)·kw + v, i·Wo + j] = x[c, i·s − p + u, j·s − p + v]
  /// (0 outside the image).
  ///
  /// Shapes: `image` [C, H, W] packed; `columns` a [C·kh·kw, Ho·Wo] block whose rows start `rowStride` elements
  /// apart (`rowStride >= Ho·Wo`; larger values place several images side by side). Every element of the block is
  /// written. The scalar type of `columns` may be Float or Double (values are converted exactly).
  public static func im2col<S: BinaryFloatingPoint>(
    image: UnsafePointer<Float>, channels: Int, height: Int, width: Int, kernelHeight: Int, kernelWidth: Int,
    stride: Int, padding: Int, columns: UnsafeMutablePointer<S>, rowStride: Int
  ) {
    // image [C, H, W] -> columns [C·kh·kw, Ho·Wo] with row stride rowStride
    let ho = outputSize(inputSize: height, kernelSize: kernelHeight, stride: stride, padding: padding)
    let wo = outputSize(inputSize: width, kernelSize: kernelWidth, stride: stride, padding: padding)
    precondition(rowStride >= ho * wo, "Conv2D.im2col: rowStride \(rowStride) < Ho·Wo = \(ho * wo)")
    let out = UnsafeMutableRawPointer(columns)
    if S.self == Float.self {
      wrapnet_im2col(
        image, channels, height, width, kernelHeight, kernelWidth, stride, padding, ho, wo,
        out.assumingMemoryBound(to: Float.self), rowStride)
    } else if S.self == Double.self {
      wrapnet_im2col_f64(
        image, channels, height, width, kernelHeight, kernelWidth, stride, padding, ho, wo,
        out.assumingMemoryBound(to: Double.self), rowStride)
    } else {
      preconditionFailure("Conv2D.im2col: columns must be Float or Double, got \(S.self)")
    }
  }

  /// Folds an im2col-shaped gradient back onto one image, accumulating: x[c, i·s − p + u, j·s − p + v] +=
  /// columns[(c·kh + u)·kw + v, i·Wo + j] for every in-image position (the adjoint of `im2col`).
  ///
  /// Shapes: `columns` a [C·kh·kw, Ho·Wo] block with row stride `rowStride`; `image` [C, H, W] packed, added to
  /// (not overwritten). Summation order is fixed (c, u, v, i, j).
  public static func col2im(
    columns: UnsafePointer<Float>, rowStride: Int, channels: Int, height: Int, width: Int, kernelHeight: Int,
    kernelWidth: Int, stride: Int, padding: Int, image: UnsafeMutablePointer<Float>
  ) {
    // columns [C·kh·kw, Ho·Wo] with row stride rowStride -> image [C, H, W] (accumulated)
    let ho = outputSize(inputSize: height, kernelSize: kernelHeight, stride: stride, padding: padding)
    let wo = outputSize(inputSize: width, kernelSize: kernelWidth, stride: stride, padding: padding)
    precondition(rowStride >= ho * wo, "Conv2D.col2im: rowStride \(rowStride) < Ho·Wo = \(ho * wo)")
    wrapnet_col2im(
      columns, rowStride, channels, height, width, kernelHeight, kernelWidth, stride, padding, ho, wo, image)
  }

  /// The im2col matrix of a whole batch: [C·kh·kw, N·Ho·Wo], column (n·Ho + i)·Wo + j for image n, output (i, j).
  ///
  /// Shapes: `input` [N, C, H, W] → [C·kh·kw, N·Ho·Wo]. Convenience over the pointer form (allocates the result).
  public static func im2col(
    _ input: Tensor, kernelHeight: Int, kernelWidth: Int, stride: Int = 1, padding: Int = 0
  ) -> Tensor {
    // input [N, C, H, W] -> columns [C·kh·kw, N·Ho·Wo]
    precondition(input.rank == 4, "Conv2D.im2col: input \(input.shape) must be [N, C, H, W]")
    let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
    let ho = outputSize(inputSize: h, kernelSize: kernelHeight, stride: stride, padding: padding)
    let wo = outputSize(inputSize: w, kernelSize: kernelWidth, stride: stride, padding: padding)
    precondition(ho >= 1 && wo >= 1, "Conv2D.im2col: kernel \(kernelHeight)x\(kernelWidth) does not fit \(input.shape)")
    let rows = c * kernelHeight * kernelWidth
    var cols = [Float](repeating: 0, count: rows * n * ho * wo)
    input.data.withUnsafeBufferPointer { x in
      cols.withUnsafeMutableBufferPointer { pc in
        for i in 0..<n {
          im2col(
            image: x.baseAddress! + i * c * h * w, channels: c, height: h, width: w, kernelHeight: kernelHeight,
            kernelWidth: kernelWidth, stride: stride, padding: padding, columns: pc.baseAddress! + i * ho * wo,
            rowStride: n * ho * wo)
        }
      }
    }
    return Tensor(shape: [rows, n * ho * wo], data: cols)
  }

  /// The adjoint of the batch `im2col`: folds columns [C·kh·kw, N·Ho·Wo] back to an image batch of `inputShape`
  /// [N, C, H, W], summing overlapping windows.
  public static func col2im(
    _ columns: Tensor, inputShape: [Int], kernelHeight: Int, kernelWidth: Int, stride: Int = 1, padding: Int = 0
  ) -> Tensor {
    // columns [C·kh·kw, N·Ho·Wo] -> image batch [N, C, H, W]
    precondition(inputShape.count == 4, "Conv2D.col2im: inputShape \(inputShape) must be [N, C, H, W]")
    let (n, c, h, w) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
    let ho = outputSize(inputSize: h, kernelSize: kernelHeight, stride: stride, padding: padding)
    let wo = outputSize(inputSize: w, kernelSize: kernelWidth, stride: stride, padding: padding)
    precondition(
      columns.shape == [c * kernelHeight * kernelWidth, n * ho * wo],
      "Conv2D.col2im: columns \(columns.shape) must be \([c * kernelHeight * kernelWidth, n * ho * wo]) for \(inputShape)"
    )
    var out = [Float](repeating: 0, count: n * c * h * w)
    columns.data.withUnsafeBufferPointer { pc in
      out.withUnsafeMutableBufferPointer { x in
        for i in 0..<n {
          col2im(
            columns: pc.baseAddress! + i * ho * wo, rowStride: n * ho * wo, channels: c, height: h, width: w,
            kernelHeight: kernelHeight, kernelWidth: kernelWidth, stride: stride, padding: padding,
            image: x.baseAddress! + i * c * h * w)
        }
      }
    }
    return Tensor(shape: inputShape, data: out)
  }

  /// y = conv(x, W) + b. Shapes: input [N, C, H, W] → [N, O, Ho, Wo].
  public mutating func forward(_ input: Tensor, phase: Phase) -> Tensor {
    // input [N, C, H, W] -> output [N, O, Ho, Wo]
    cachedInput = phase == .training ? input : nil
    return conv2dForward(
      input: input, weight: weight, bias: bias, stride: stride, padding: padding, precision: precision)
  }

  /// Accumulates dW, db; returns dx. Shapes: gradOutput [N, O, Ho, Wo] → [N, C, H, W].
  public mutating func backward(_ gradOutput: Tensor) -> Tensor {
    // gradOutput [N, O, Ho, Wo] -> gradInput [N, C, H, W]
    guard let input = cachedInput else { preconditionFailure("Conv2D.backward called without a .training forward") }
    let gradInput = conv2dBackward(
      gradOutput: gradOutput, input: input, weight: weight, stride: stride, padding: padding, gradWeight: &gradWeight)
    if gradBias != nil { accumulateBiasGradient(gradOutput: gradOutput, into: &gradBias!) }
    return gradInput
  }

  /// Visits ("weight", W, dW) then ("bias", b, db) when present.
  public mutating func visitParameters(_ visit: (String, inout Tensor, inout Tensor) -> Void) {
    visit("weight", &weight, &gradWeight)
    if bias != nil { visit("bias", &bias!, &gradBias!) }
  }
}
