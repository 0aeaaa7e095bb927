import Testing
import WrapNet

/// Direct convolution in Float64: y[n, o, i, j] = Σ x[n, c, i·s − p + u, j·s − p + v]·W[o, c, u, v] + b[o].
func layerNaiveConv(input x: Tensor, weight w: Tensor, bias: Tensor?, stride s: Int, padding p: Int) -> (
  shape: [Int], data: [Double]
) {
  let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
  let (o, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
  let ho = (h + 2 * p - kh) / s + 1
  let wo = (wd + 2 * p - kw) / s + 1
  var y = [Double](repeating: 0, count: n * o * ho * wo)
  for b in 0..<n {
    for oc in 0..<o {
      for i in 0..<ho {
        for j in 0..<wo {
          var sum = bias.map { Double($0.data[oc]) } ?? 0
          for ic in 0..<c {
            for u in 0..<kh {
              for v in 0..<kw {
                let iy = i * s - p + u
                let ix = j * s - p + v
                if iy < 0 || iy >= h || ix < 0 || ix >= wd { continue }
                sum +=
                  Double(x.data[((b * c + ic) * h + iy) * wd + ix]) * Double(w.data[((oc * c + ic) * kh + u) * kw + v])
              }
            }
          }
          y[((b * o + oc) * ho + i) * wo + j] = sum
        }
      }
    }
  }
  return ([n, o, ho, wo], y)
}

/// Direct backward in Float64: dx[n, c, iy, ix] = Σ dy·W, dW[o, c, u, v] = Σ dy·x over the same index set.
func layerNaiveConvBackward(gradOutput dy: Tensor, input x: Tensor, weight w: Tensor, stride s: Int, padding p: Int)
  -> (dx: [Double], dw: [Double])
{
  let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
  let (o, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
  let (ho, wo) = (dy.shape[2], dy.shape[3])
  var dx = [Double](repeating: 0, count: x.count)
  var dw = [Double](repeating: 0, count: w.count)
  for b in 0..<n {
    for oc in 0..<o {
      for i in 0..<ho {
        for j in 0..<wo {
          let g = Double(dy.data[((b * o + oc) * ho + i) * wo + j])
          for ic in 0..<c {
            for u in 0..<kh {
              for v in 0..<kw {
                let iy = i * s - p + u
                let ix = j * s - p + v
                if iy < 0 || iy >= h || ix < 0 || ix >= wd { continue }
                let xi = ((b * c + ic) * h + iy) * wd + ix
                let wi = ((oc * c + ic) * kh + u) * kw + v
                dx[xi] += g * Double(w.data[wi])
                dw[wi] += g * Double(x.data[xi])
              }
            }
          }
        }
      }
    }
  }
  return (dx, dw)
}

func layerExpectNear(
  _ got: [Float], _ want: [Double], tol: Double, _ what: String, sourceLocation: SourceLocation = #_sourceLocation
) {
  #expect(got.count == want.count, "\(what): \(got.count) vs \(want.count) values", sourceLocation: sourceLocation)
  for i in 0..<min(got.count, want.count) where abs(Double(got[i]) - want[i]) > tol * max(1, abs(want[i])) {
    Issue.record("\(what)[\(i)]: \(got[i]) vs \(want[i])", sourceLocation: sourceLocation)
    return
  }
}

@Suite struct LayerConvTests {
  /// (N, C, H, W, O, kh, kw, stride, padding), including a rectangular kernel, a 1x1 kernel and a batch that spans
  /// several GEMM chunks (N = 3 with 64x64 output planes: chunks of 2 images and 1).
  static let configs: [(Int, Int, Int, Int, Int, Int, Int, Int, Int)] = [
    (2, 3, 5, 5, 4, 3, 3, 1, 0), (2, 3, 5, 5, 4, 3, 3, 1, 1), (2, 3, 5, 5, 4, 3, 3, 2, 0), (2, 3, 5, 5, 4, 3, 3, 2, 1),
    (1, 2, 7, 6, 3, 2, 3, 2, 1), (3, 1, 4, 4, 2, 1, 1, 1, 0), (2, 2, 3, 3, 1, 3, 3, 3, 2),
    (3, 2, 66, 66, 2, 3, 3, 1, 0),
  ]

  @Test func forwardAndBackwardMatchDirectConvolution() {
    var rng = LayerTestRNG(seed: 11)
    for (n, c, h, w, o, kh, kw, s, p) in Self.configs {
      let tag = "N\(n) C\(c) \(h)x\(w) O\(o) k\(kh)x\(kw) s\(s) p\(p)"
      let x = layerRandomTensor([n, c, h, w], &rng)
      let wt = layerRandomTensor([o, c, kh, kw], &rng)
      let b = layerRandomTensor([o], &rng)
      let want = layerNaiveConv(input: x, weight: wt, bias: b, stride: s, padding: p)
      let y = conv2dForward(input: x, weight: wt, bias: b, stride: s, padding: p)
      #expect(y.shape == want.shape, "\(tag) shape")
      layerExpectNear(y.data, want.data, tol: 1e-5, "\(tag) forward")
      let yd = conv2dForward(input: x, weight: wt, bias: b, stride: s, padding: p, precision: .double)
      // Float64 summation rounded once: the correctly rounded direct result.
      #expect(yd.data == want.data.map { Float($0) }, "\(tag) double-precision forward")

      let dy = layerRandomTensor(y.shape, &rng)
      var dw = layerRandomTensor(wt.shape, &rng)  // nonzero start: backward must add to it
      let dw0 = dw
      let dx = conv2dBackward(gradOutput: dy, input: x, weight: wt, stride: s, padding: p, gradWeight: &dw)
      let ref = layerNaiveConvBackward(gradOutput: dy, input: x, weight: wt, stride: s, padding: p)
      layerExpectNear(dx.data, ref.dx, tol: 1e-4, "\(tag) dx")
      layerExpectNear(dw.data, zip(ref.dw, dw0.data).map { $0 + Double($1) }, tol: 1e-4, "\(tag) dW")
      let fresh = conv2dBackward(gradOutput: dy, input: x, weight: wt, stride: s, padding: p)
      #expect(fresh.gradInput == dx, "\(tag) fresh dx")
      layerExpectNear(fresh.gradWeight.data, ref.dw, tol: 1e-4, "\(tag) fresh dW")
    }
  }

  /// col2im is the adjoint of im2col: ⟨col2im(G), X⟩ = ⟨G, im2col(X)⟩.
  @Test func col2imIsAdjointOfIm2col() {
    var rng = LayerTestRNG(seed: 12)
    for (n, c, h, w, _, kh, kw, s, p) in Self.configs.prefix(7) {
      let x = layerRandomTensor([n, c, h, w], &rng)
      let cols = Conv2D.im2col(x, kernelHeight: kh, kernelWidth: kw, stride: s, padding: p)
      let g = layerRandomTensor(cols.shape, &rng)
      let back = Conv2D.col2im(g, inputShape: x.shape, kernelHeight: kh, kernelWidth: kw, stride: s, padding: p)
      let lhs = layerProbeLoss(back, x)
      let rhs = layerProbeLoss(cols, g)
      #expect(abs(lhs - rhs) <= 1e-4 * max(1, abs(rhs)), "adjoint \(n),\(c),\(h),\(w) k\(kh)x\(kw) s\(s) p\(p)")
    }
  }

  /// Finite differences for dx, dW and db of the Conv2D layer, stride 1 and 2, padding 0 and 1.
  @Test(arguments: [(1, 0), (1, 1), (2, 0), (2, 1)])
  func conv2DLayerGradients(stride: Int, padding: Int) {
    var rng = LayerTestRNG(seed: UInt64(10 * stride + padding))
    let layer = Conv2D(inChannels: 3, outChannels: 2, kernelSize: 3, stride: stride, padding: padding, using: &rng)
    let x = layerRandomTensor([2, 3, 5, 5], &rng)
    layerCheckGradients(layer, input: x, "Conv2D s\(stride) p\(padding)")
    let noBias = Conv2D(
      inChannels: 3, outChannels: 2, kernelSize: 3, stride: stride, padding: padding, bias: false, using: &rng)
    layerCheckGradients(noBias, input: x, "Conv2D no bias s\(stride) p\(padding)")
  }

  /// Integer operands whose sums exceed 2²⁴: the Float64 path is exact, the rounded path is correctly rounded.
  @Test func doublePathIsExactForLargeIntegerSums() {
    var rng = LayerTestRNG(seed: 13)
    let (n, c, h, w, o) = (2, 4, 6, 6, 3)
    let x = Tensor(shape: [n, c, h, w], data: (0..<(n * c * h * w)).map { _ in Float(rng.int(-4095, 4095)) })
    let wt = Tensor(shape: [o, c, 3, 3], data: (0..<(o * c * 9)).map { _ in Float(rng.int(-4095, 4095)) })
    let exact = conv2dForwardDouble(input: x, weight: wt, stride: 1, padding: 1)
    // Integer reference.
    var want = [Int64](repeating: 0, count: n * o * h * w)
    for b in 0..<n {
      for oc in 0..<o {
        for i in 0..<h {
          for j in 0..<w {
            var s: Int64 = 0
            for ic in 0..<c {
              for u in 0..<3 {
                for v in 0..<3 {
                  let (iy, ix) = (i - 1 + u, j - 1 + v)
                  if iy < 0 || iy >= h || ix < 0 || ix >= w { continue }
                  s += Int64(x.data[((b * c + ic) * h + iy) * w + ix]) * Int64(wt.data[((oc * c + ic) * 3 + u) * 3 + v])
                }
              }
            }
            want[((b * o + oc) * h + i) * w + j] = s
          }
        }
      }
    }
    #expect(exact == want.map { Double($0) })
    #expect(want.contains { abs($0) > 1 << 24 }, "the data must exercise sums above 2^24")
    let rounded = conv2dForward(input: x, weight: wt, stride: 1, padding: 1, precision: .double)
    #expect(rounded.data == want.map { Float($0) })
  }

  /// The backward pass computes the blocks of its two products where their operands are in cache (im2col per
  /// reduction block of dW, dcols per column block folded back image by image); it must equal, bit for bit, the
  /// plain schedule built here from the public pieces: im2col of the batch, dW += dy·colsᵀ and dcols = Wᵀ·dy as two
  /// `sgemm` calls, col2im. Shapes: one chunk each (at most 8192 columns) with at least 4096 columns, so that both
  /// products are split into blocks; odd sizes, stride 1 and 2; 1, 2 and 3 threads.
  @Test(arguments: [[12, 5, 20, 21, 7, 1], [70, 3, 17, 15, 9, 2], [5, 2, 33, 31, 12, 1]])
  func blockwiseBackwardEqualsPlainSchedule(shape: [Int]) {
    let (n, c, h, w, o, s) = (shape[0], shape[1], shape[2], shape[3], shape[4], shape[5])
    var rng = LayerTestRNG(seed: UInt64(n * c + o))
    let x = layerRandomTensor([n, c, h, w], &rng)
    let wt = layerRandomTensor([o, c, 3, 3], &rng)
    let ho = Conv2D.outputSize(inputSize: h, kernelSize: 3, stride: s, padding: 1)
    let wo = Conv2D.outputSize(inputSize: w, kernelSize: 3, stride: s, padding: 1)
    let (plane, rows) = (ho * wo, c * 9)
    #expect(n * plane >= 4096 && n * plane <= 8192, "test shape must be one chunk of at least 4096 columns")
    let dy = layerRandomTensor([n, o, ho, wo], &rng)
    let dw0 = layerRandomTensor(wt.shape, &rng)

    let cols = Conv2D.im2col(x, kernelHeight: 3, kernelWidth: 3, stride: s, padding: 1)
    var dyColumns = [Float](repeating: 0, count: o * n * plane)  // [O, N·plane]
    for i in 0..<n {
      for k in 0..<o {
        for q in 0..<plane { dyColumns[k * n * plane + i * plane + q] = dy.data[(i * o + k) * plane + q] }
      }
    }
    var wantDW = dw0.data
    sgemm(transA: .none, transB: .transpose, m: o, n: rows, k: n * plane, a: dyColumns, b: cols.data, beta: 1, c: &wantDW)
    var gradCols = [Float](repeating: 0, count: rows * n * plane)
    sgemm(transA: .transpose, transB: .none, m: rows, n: n * plane, k: o, a: wt.data, b: dyColumns, beta: 0, c: &gradCols)
    let wantDX = Conv2D.col2im(
      Tensor(shape: [rows, n * plane], data: gradCols), inputShape: x.shape, kernelHeight: 3, kernelWidth: 3,
      stride: s, padding: 1)

    let saved = blasThreads()
    defer { setBLASThreads(saved) }
    for threads in [1, 2, 3] {
      setBLASThreads(threads)
      var dw = dw0
      let dx = conv2dBackward(gradOutput: dy, input: x, weight: wt, stride: s, padding: 1, gradWeight: &dw)
      #expect(dx.data.map(\.bitPattern) == wantDX.data.map(\.bitPattern), "dx \(shape), \(threads) threads")
      #expect(dw.data.map(\.bitPattern) == wantDW.map(\.bitPattern), "dW \(shape), \(threads) threads")
    }
  }

  /// Several chunks through the blockwise backward (23 images of 30×30: chunks of 9, 9 and 5 images; the first two
  /// split into reduction and column blocks, the last too small to split) against the direct formulas in Float64.
  @Test func blockwiseBackwardOverSeveralChunks() {
    var rng = LayerTestRNG(seed: 23)
    let x = layerRandomTensor([23, 4, 30, 30], &rng)
    let wt = layerRandomTensor([6, 4, 3, 3], &rng)
    let dy = layerRandomTensor([23, 6, 30, 30], &rng)
    let got = conv2dBackward(gradOutput: dy, input: x, weight: wt, stride: 1, padding: 1)
    let ref = layerNaiveConvBackward(gradOutput: dy, input: x, weight: wt, stride: 1, padding: 1)
    layerExpectNear(got.gradInput.data, ref.dx, tol: 1e-4, "dx")
    layerExpectNear(got.gradWeight.data, ref.dw, tol: 1e-4, "dW")
  }

  /// BLAS threading must not change a single bit of conv forward or backward.
  @Test func resultsIndependentOfBLASThreads() {
    var rng = LayerTestRNG(seed: 14)
    // Large enough that OpenBLAS really splits the GEMMs over 2 threads.
    let x = layerRandomTensor([8, 16, 16, 16], &rng)
    let wt = layerRandomTensor([32, 16, 3, 3], &rng)
    let b = layerRandomTensor([32], &rng)
    func run() -> (Tensor, Tensor, Tensor) {
      let y = conv2dForward(input: x, weight: wt, bias: b, stride: 1, padding: 1)
      var dw = Tensor(shape: wt.shape)
      let dx = conv2dBackward(gradOutput: y, input: x, weight: wt, stride: 1, padding: 1, gradWeight: &dw)
      return (y, dx, dw)
    }
    let saved = blasThreads()
    setBLASThreads(1)
    let one = run()
    setBLASThreads(2)
    let two = run()
    setBLASThreads(3)
    let three = run()
    setBLASThreads(saved)
    for (name, a, b, c) in [
      ("forward", one.0, two.0, three.0), ("dx", one.1, two.1, three.1), ("dW", one.2, two.2, three.2),
    ] {
      let same =
        a.data.map(\.bitPattern) == b.data.map(\.bitPattern) && a.data.map(\.bitPattern) == c.data.map(\.bitPattern)
      #expect(same, "\(name) differs between 1, 2 and 3 BLAS threads")
    }
  }
}
