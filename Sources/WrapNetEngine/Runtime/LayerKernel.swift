/// How one dense layer computes its accumulators: the one decision per layer, made once. The loader stores the
/// fastest kernel the layer has on this CPU (`DenseLayer.kernel`); `InferenceRunner` keeps it where its options
/// allow it and runs the byte GEMM otherwise, so the forward pass never branches on options. Every kernel gives
/// the same integers (the tests check each against the reference path).
public enum LayerKernel: Sendable, Equatable {
  /// `wrapGEMM(weights:...)` with `lanes`-bit lanes on `path`: im2col rows for a convolution, rows padded to the
  /// weights' `paddedK` for a linear layer. Any layer, any path.
  case gemm(lanes: Int, path: KernelPath)
  /// The lookup kernel (avx2, 8-bit lanes, wrap-around accumulators of b ≤ 8): binary or ternary weights as
  /// table indices, convolutions read in place from per-pixel tables. A table output is written by the kernel
  /// itself, through `arcs` where the table has that form.
  case lookup(LookupWeights, arcs: CodeArcs?)
  /// The direct convolution (avx2, exact 32-bit sums): a small window (the first layer) gathered in registers,
  /// no im2col rows.
  case directConvolution(DirectConvWeights)

  /// The fastest kernel for `layer` on this CPU with default options (`.fastest` path, narrowest lanes), given
  /// the largest code of its input: the direct convolution for exact convolutions within its limits; the lookup
  /// kernel for binary and ternary wrap-around layers of b ≤ 8 on codes up to `LookupWeights.largestInputCode`
  /// (and, for a convolution, input channels a multiple of 16: a pair of 4-code groups then never straddles two
  /// pixels); otherwise the byte GEMM.
  static func fastest(for layer: DenseLayer, inputMaxCode: Int) -> LayerKernel {
    let lanes = InferenceOptions().lanes(for: layer)
    guard KernelPath.isAVX2Available else { return .gemm(lanes: lanes, path: .fastest) }
    if !layer.wrapsAround, case .conv(let inC, _, let k, _, _) = layer.geometry,
      let direct = DirectConvWeights(layer.weights, channels: inC, kernel: k)
    {
      return .directConvolution(direct)
    }
    let binary = layer.weights.kind == .binary || layer.weights.kind == .ternary
    var groupsFit = true
    if case .conv(let inC, _, _, _, _) = layer.geometry { groupsFit = inC % 16 == 0 }
    guard binary, groupsFit, layer.wrapsAround, layer.accumulatorBits <= 8,
      inputMaxCode <= LookupWeights.largestInputCode
    else { return .gemm(lanes: lanes, path: .fastest) }
    // Table outputs become arcs where the table has that form (checked entry by entry); else look-ups.
    let table: (codes: [UInt8], shortcutCodes: Int)?
    switch layer.output {
    case .table(let codes): table = (codes, 1)
    case .residualTable(let codes, let shortcut): table = (codes, shortcut.codes)
    default: table = nil
    }
    let arcs = table.flatMap {
      CodeArcs(
        table: $0.codes, channels: layer.outChannels, shortcutCodes: $0.shortcutCodes, bits: layer.accumulatorBits,
        levels: layer.maxOutputCode)
    }
    return .lookup(LookupWeights(layer.weights), arcs: arcs)
  }

  /// The kernel `layer` runs with on `path` with `lanes`-bit lanes: its own (`DenseLayer.kernel`) where that
  /// kernel applies (the lookup kernel: avx2 with 8-bit lanes; the direct convolution: avx2), else the byte GEMM.
  static func chosen(for layer: DenseLayer, lanes: Int, path: KernelPath) -> LayerKernel {
    switch layer.kernel {
    case .lookup where path == .avx2 && lanes == 8, .directConvolution where path == .avx2:
      return layer.kernel
    case .gemm, .lookup, .directConvolution:
      return .gemm(lanes: lanes, path: path)
    }
  }
}
