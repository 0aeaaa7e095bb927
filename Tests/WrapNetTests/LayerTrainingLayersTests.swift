import Foundation
import Testing
import WrapNet

/// Finite-difference checks of every non-convolution layer, plus their forward definitions.
@Suite struct LayerTrainingLayersTests {
  @Test func linearGradientsAndForward() {
    var rng = LayerTestRNG(seed: 21)
    let layer = Linear(inFeatures: 5, outFeatures: 3, using: &rng)
    let x = layerRandomTensor([2, 5], &rng)
    layerCheckGradients(layer, input: x, "Linear")
    layerCheckGradients(Linear(inFeatures: 5, outFeatures: 3, bias: false, using: &rng), input: x, "Linear no bias")
    // Forward against the definition y[n, o] = Σ x[n, i]·W[o, i] + b[o].
    var l = layer
    let y = l.forward(x, phase: .evaluation)
    #expect(y.shape == [2, 3])
    for n in 0..<2 {
      for o in 0..<3 {
        var s = Double(layer.bias!.data[o])
        for i in 0..<5 { s += Double(x.data[n * 5 + i]) * Double(layer.weight.data[o * 5 + i]) }
        #expect(abs(Double(y.data[n * 3 + o]) - s) < 1e-5)
      }
    }
    // The fresh-gradient form equals the accumulating form started from zero.
    let dy = layerRandomTensor([2, 3], &rng)
    var dw = Tensor(shape: [3, 5])
    let dx = linearBackward(gradOutput: dy, input: x, weight: layer.weight, gradWeight: &dw)
    let fresh = linearBackward(gradOutput: dy, input: x, weight: layer.weight)
    #expect(fresh.gradInput == dx && fresh.gradWeight == dw)
  }

  /// The Float64 path sums exactly where Float32 cannot: 2²⁴ + 1 + 1.
  @Test func linearDoublePathIsExact() {
    let x = Tensor(shape: [1, 3], data: [16_777_216, 1, 1])
    let w = Tensor(shape: [1, 3], data: [1, 1, 1])
    #expect(linearForwardDouble(input: x, weight: w) == [16_777_218])
    #expect(linearForward(input: x, weight: w, precision: .double).data == [16_777_218])
    let big = Tensor(shape: [1, 2], data: [33_554_432, 1])  // 2²⁵ + 1 is not a Float
    #expect(linearForwardDouble(input: big, weight: Tensor(shape: [1, 2], data: [1, 1])) == [33_554_433])
  }

  @Test(arguments: [[2, 3, 5, 5], [5, 3]])
  func batchNormTrainingGradients(shape: [Int]) {
    var rng = LayerTestRNG(seed: 22)
    var layer = BatchNorm(channels: 3)
    // Non-trivial γ, β so their gradients and the scaling of dx are exercised.
    layer.gamma = layerRandomTensor([3], &rng, in: 0.5...1.5)
    layer.beta = layerRandomTensor([3], &rng)
    let x = layerRandomTensor(shape, &rng, in: -2...2)
    layerCheckGradients(layer, input: x, "BatchNorm \(shape)")
  }

  @Test func batchNormStatisticsAndEvaluation() {
    var rng = LayerTestRNG(seed: 23)
    var layer = BatchNorm(channels: 2, momentum: 0.1, epsilon: 1e-5)
    let x = layerRandomTensor([3, 2, 2, 2], &rng, in: -3...3)
    let y = layer.forward(x, phase: .training)
    for c in 0..<2 {
      var values: [Double] = []
      var outs: [Double] = []
      for n in 0..<3 {
        for p in 0..<4 {
          values.append(Double(x.data[(n * 2 + c) * 4 + p]))
          outs.append(Double(y.data[(n * 2 + c) * 4 + p]))
        }
      }
      let m = Double(values.count)
      let mean = values.reduce(0, +) / m
      let biased = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / m
      // Training output: zero mean, unit (biased) variance per channel with γ = 1, β = 0.
      let outMean = outs.reduce(0, +) / m
      let outVar = outs.map { ($0 - outMean) * ($0 - outMean) }.reduce(0, +) / m
      #expect(abs(outMean) < 1e-5)
      #expect(abs(outVar - biased / (biased + 1e-5)) < 1e-4)
      // Running statistics: momentum 0.1 towards the mean and the *unbiased* variance.
      #expect(abs(Double(layer.runningMean.data[c]) - 0.1 * mean) < 1e-6)
      #expect(abs(Double(layer.runningVar.data[c]) - (0.9 + 0.1 * biased * m / (m - 1))) < 1e-5)
    }
    // Evaluation: every element equals normalize(value:channel:) bit for bit, and matches the formula.
    layer.gamma = Tensor(shape: [2], data: [1.5, -0.5])
    layer.beta = Tensor(shape: [2], data: [0.25, 2])
    let before = layer.runningMean
    let e = layer.forward(x, phase: .evaluation)
    #expect(layer.runningMean == before, "evaluation must not move the running statistics")
    for i in 0..<x.count {
      let c = (i / 4) % 2
      #expect(e.data[i].bitPattern == layer.normalize(value: x.data[i], channel: c).bitPattern)
      let want =
        (Double(x.data[i]) - Double(layer.runningMean.data[c])) / (Double(layer.runningVar.data[c]) + 1e-5).squareRoot()
        * Double(layer.gamma.data[c]) + Double(layer.beta.data[c])
      #expect(abs(Double(e.data[i]) - want) < 1e-5)
    }
    var buffers: [String] = []
    layer.visitBuffers { name, _ in buffers.append(name) }
    #expect(buffers == ["runningMean", "runningVar"])
    var params: [String] = []
    layer.visitParameters { name, _, _ in params.append(name) }
    #expect(params == ["gamma", "beta"])
  }

  @Test(arguments: [(2, 2), (3, 1), (3, 2)])
  func maxPoolGradientsAndForward(kernel: Int, stride: Int) {
    var rng = LayerTestRNG(seed: 24)
    // Distinct values 0.05 apart: a step of 0.01 never changes which element is the maximum.
    let x = layerDistinctTensor([2, 3, 5, 5], &rng)
    layerCheckGradients(MaxPool2D(kernel: kernel, stride: stride), input: x, "MaxPool2D k\(kernel) s\(stride)")
    var pool = MaxPool2D(kernel: kernel, stride: stride)
    let y = pool.forward(x, phase: .evaluation)
    let o = (5 - kernel) / stride + 1
    #expect(y.shape == [2, 3, o, o])
    for p in 0..<6 {
      for i in 0..<o {
        for j in 0..<o {
          var best = -Float.infinity
          for u in 0..<kernel {
            for v in 0..<kernel { best = max(best, x.data[p * 25 + (i * stride + u) * 5 + j * stride + v]) }
          }
          #expect(y.data[(p * o + i) * o + j] == best)
        }
      }
    }
  }

  @Test(arguments: [(2, 2), (3, 1), (3, 2)])
  func avgPoolGradientsAndForward(kernel: Int, stride: Int) {
    var rng = LayerTestRNG(seed: 25)
    let x = layerRandomTensor([2, 3, 5, 5], &rng)
    layerCheckGradients(AvgPool2D(kernel: kernel, stride: stride), input: x, "AvgPool2D k\(kernel) s\(stride)")
    var pool = AvgPool2D(kernel: kernel, stride: stride)
    let y = pool.forward(x, phase: .evaluation)
    let o = (5 - kernel) / stride + 1
    #expect(y.shape == [2, 3, o, o])
    var s = 0.0
    for u in 0..<kernel { for v in 0..<kernel { s += Double(x.data[u * 5 + v]) } }
    #expect(abs(Double(y.data[0]) - s / Double(kernel * kernel)) < 1e-6)
  }

  @Test func globalAvgPoolFlattenReLU() {
    var rng = LayerTestRNG(seed: 26)
    let x = layerRandomTensor([2, 3, 5, 5], &rng)
    layerCheckGradients(GlobalAvgPool(), input: x, "GlobalAvgPool")
    var gap = GlobalAvgPool()
    let g = gap.forward(x, phase: .evaluation)
    #expect(g.shape == [2, 3])
    #expect(abs(Double(g.data[4]) - x.data[100..<125].reduce(0.0) { $0 + Double($1) } / 25) < 1e-6)

    layerCheckGradients(Flatten(), input: x, "Flatten")
    var flat = Flatten()
    let f = flat.forward(x, phase: .training)
    #expect(f.shape == [2, 75] && f.data == x.data)
    #expect(flat.backward(f).shape == [2, 3, 5, 5])

    // Away from the kink: |x| >= 0.05 while the step is 0.01.
    let r = layerAwayFromZero([2, 3, 5, 5], &rng)
    layerCheckGradients(ReLU(), input: r, "ReLU")
    var relu = ReLU()
    #expect(relu.forward(r, phase: .evaluation).data == r.data.map { max($0, 0) })
  }

  @Test func residualAdd() {
    var rng = LayerTestRNG(seed: 27)
    let a = layerRandomTensor([2, 3, 4, 4], &rng)
    let b = layerRandomTensor([2, 3, 4, 4], &rng)
    let y = add(a, b)
    #expect(y.data == zip(a.data, b.data).map { $0 + $1 })
    let dy = layerRandomTensor(y.shape, &rng)
    let (da, db) = addBackward(dy)
    #expect(da == dy && db == dy)
  }

  @Test func softmaxCrossEntropy() {
    var rng = LayerTestRNG(seed: 28)
    let logits = layerRandomTensor([4, 5], &rng, in: -3...3)
    let labels = [0, 3, 4, 2]
    let ce = SoftmaxCrossEntropy(logits: logits, labels: labels)
    // Loss against the definition, computed independently.
    var want = 0.0
    var correct = 0
    for n in 0..<4 {
      let row = (0..<5).map { Double(logits.data[n * 5 + $0]) }
      want += log(row.map { exp($0) }.reduce(0, +)) - row[labels[n]]
      if row.firstIndex(of: row.max()!)! == labels[n] { correct += 1 }
    }
    #expect(abs(ce.loss - want / 4) < 1e-9)
    #expect(ce.correct == correct)
    // Gradient by central differences of the loss itself.
    let numeric = layerNumericGradient(logits, step: 1e-2) { SoftmaxCrossEntropy(logits: $0, labels: labels).loss }
    layerExpectClose(ce.gradLogits.data, numeric, "softmax cross-entropy dlogits")
    // Stable for huge logits: no overflow, loss log(2) for two equal maxima.
    let huge = SoftmaxCrossEntropy(logits: Tensor(shape: [1, 3], data: [1000, 1000, -1000]), labels: [1])
    #expect(abs(huge.loss - 0.6931471805599453) < 1e-12)
    #expect(huge.gradLogits.data.allSatisfy { $0.isFinite })
    #expect(huge.correct == 0, "ties go to the first maximum")
  }

  @Test func weightDecay() {
    let w = Tensor(shape: [3], data: [1, -2, 4])
    var g = Tensor(shape: [3], data: [0.5, 0.5, 0.5])
    addWeightDecay(0.25, weight: w, to: &g)
    #expect(g.data == [0.75, 0, 1.5])
  }
}
