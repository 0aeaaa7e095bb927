import Testing
import WrapNet
import WrapNetEngine

/// Finite differences in Double of a scalar loss L = Σ out · r for fixed random r.
private func weightedSum(_ t: Tensor, _ r: [Float]) -> Double {
  zip(t.data, r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
}

private func randomTensor(_ shape: [Int], _ rng: inout SeededGenerator, _ lo: Float, _ hi: Float) -> Tensor {
  Tensor(shape: shape, data: rng.uniformArray(count: shape.reduce(1, *), low: lo, high: hi))
}

/// Which smooth piece of the accumulator (and of the penalty) the sum z falls on.
private func region(_ acc: Accumulator, _ z: Float) -> [Int] {
  let half = -acc.minValue, period = 2 * half
  let wraps = Int(((z + half) / period).rounded(.down))
  let m = z.wrapped(toBits: acc.bits)
  let q = acc.slope * half / (acc.slope + 1)
  let piece = m > q ? 1 : (m < -q ? -1 : 0)
  let rail = z > acc.maxValue ? 1 : (z < acc.minValue ? -1 : 0)
  let over = abs(z) > half ? (z > 0 ? 1 : -1) : 0
  return [wraps, piece, rail, over]
}

@Suite struct WrapLayerTests {
  static let geometries: [WrapGeometry] = [
    .linear(inFeatures: 7, outFeatures: 5),
    .conv(inChannels: 3, outChannels: 4, kernel: 3, stride: 1, padding: 1),
    .conv(inChannels: 2, outChannels: 3, kernel: 3, stride: 2, padding: 0),
  ]

  static func inputShape(_ g: WrapGeometry) -> [Int] {
    switch g {
    case .linear(let i, _): return [2, i]
    case .conv(let c, _, _, _, _): return [2, c, 5, 5]
    }
  }

  /// dL/dx against central differences: in `exact` and `cyclic` modes the layer is piecewise linear in x, so with
  /// non-integer inputs away from the kinks the difference quotient is exact up to rounding.
  @Test(arguments: [AccumulatorMode.exact, .wrap, .cyclic, .clamp], [0, 1, 2])
  func inputGradientMatchesFiniteDifferences(mode: AccumulatorMode, geometryIndex: Int) {
    let g = Self.geometries[geometryIndex]
    var rng = SeededGenerator(seed: 7)
    // 4-bit accumulators so that the small test sums overflow and every branch of the modes is exercised.
    var layer = WrapLayer(
      name: "t", geometry: g, weightFormat: .ternary(threshold: 0.7), accumulator: Accumulator(width: AccumulatorWidth(bits: 4), mode: mode, slope: 2),
      maxInputCode: 3, inputScale: 0.5, penaltyWeight: 0.3, bias: true, generator: &rng)
    layer.keepSums = true
    let x = randomTensor(Self.inputShape(g), &rng, 0, 3)
    let out = layer.forward(x, phase: .training)
    let r = rng.uniformArray(count: out.count, low: -1, high: 1)
    layer.zeroGradients()
    let gx = layer.backward(Tensor(shape: out.shape, data: r))
    let h: Float = 1e-3
    var checked = 0
    for i in 0..<x.count {
      var xp = x, xm = x
      xp.data[i] += h
      xm.data[i] -= h
      var lp = layer, lm = layer
      let op = lp.forward(xp, phase: .training), om = lm.forward(xm, phase: .training)
      let up = weightedSum(op, r) + lp.penaltyValue, um = weightedSum(om, r) + lm.penaltyValue
      // Skip samples where the perturbation crosses a kink (a wrap point, ±Q or a clamp rail): the piecewise
      // derivative is then not defined by the difference quotient.
      let zp = lp.lastSums!, zm = lm.lastSums!
      let acc = layer.accumulator
      if zip(zp.data, zm.data).contains(where: { region(acc, $0) != region(acc, $1) }) { continue }
      let fd = (up - um) / Double(2 * h)
      #expect(abs(fd - Double(gx.data[i])) <= 1e-2 * max(1, abs(fd)), "x[\(i)]: fd \(fd) vs backward \(gx.data[i])")
      checked += 1
    }
    #expect(checked > x.count / 2, "too few samples away from kinks: \(checked) of \(x.count)")
  }

  /// The weight gradient is the straight-through estimator: dL/dW[c,k] = dL/dcodes[c,k] / s[c], with dL/dcodes the
  /// true gradient of the layer as a function of its integer codes (checked here by finite differences on codes).
  @Test(arguments: [0, 1, 2])
  func weightGradientIsStraightThrough(geometryIndex: Int) {
    let g = Self.geometries[geometryIndex]
    var rng = SeededGenerator(seed: 11)
    var layer = WrapLayer(
      name: "t", geometry: g, weightFormat: .symmetric(bits: 4), accumulator: Accumulator(width: AccumulatorWidth(bits: 32), mode: .exact),
      maxInputCode: 3, inputScale: 0.25, generator: &rng)
    let x = randomTensor(Self.inputShape(g), &rng, 0, 3)
    let (codes, scales) = layer.quantizedWeights()
    let out = layer.forward(x, phase: .training)
    let r = rng.uniformArray(count: out.count, low: -1, high: 1)
    layer.zeroGradients()
    _ = layer.backward(Tensor(shape: out.shape, data: r))
    let fan = g.fanIn
    // L(codes) = Σ r · (x ⊛ codes) · s[c] · inputScale is linear in the codes: a unit difference is exact.
    let base = layer.exactSums(x, codes: codes)
    let plane = base.count / (2 * g.outChannels)
    for idx in stride(from: 0, to: codes.count, by: max(1, codes.count / 23)) {
      var c2 = codes
      c2[idx] += 1
      let z2 = layer.exactSums(x, codes: c2)
      let c = idx / fan
      var dL = 0.0
      for n in 0..<2 {
        for j in 0..<plane {
          let o = (n * g.outChannels + c) * plane + j
          dL += Double(z2.data[o] - base.data[o]) * Double(scales[c] * layer.inputScale) * Double(r[o])
        }
      }
      let expected = dL / Double(scales[c])
      #expect(abs(expected - Double(layer.gradWeight.data[idx])) <= 1e-3 * max(1, abs(expected)),
              "W[\(idx)]: STE \(expected) vs backward \(layer.gradWeight.data[idx])")
    }
  }

  /// The forward in every mode equals the accumulator applied to the exact integer sum, and `saturate` equals a
  /// sequential clamp-after-every-add in the documented order.
  @Test(arguments: AccumulatorMode.allCases)
  func forwardMatchesDefinition(mode: AccumulatorMode) {
    var rng = SeededGenerator(seed: 3)
    let g = WrapGeometry.conv(inChannels: 5, outChannels: 3, kernel: 3, stride: 1, padding: 1)
    let acc = Accumulator(width: AccumulatorWidth(bits: 4), mode: mode, slope: 2)
    var layer = WrapLayer(
      name: "t", geometry: g, weightFormat: .binary, accumulator: acc, maxInputCode: 3, inputScale: 1,
      generator: &rng)
    let x = Tensor(shape: [2, 5, 4, 4], data: (0..<160).map { _ in Float(rng.int(below: 4)) })
    let (codes, scales) = layer.quantizedWeights()
    let out = layer.forward(x, phase: .evaluation)
    let z = layer.exactSums(x, codes: codes)
    let sat = layer.saturatingSums(x, codes: codes)
    for o in 0..<out.count {
      let c = (o / 16) % 3
      let y = mode == .saturate ? sat.data[o] : acc.apply(z.data[o])
      #expect(out.data[o] == y * scales[c], "output \(o)")
      #expect(z.data[o] == z.data[o].rounded(), "exact sums are integers")
    }
    // Sequential saturation differs from clamping the exact sum somewhere in this test (sums overflow 4 bits).
    if mode == .saturate {
      #expect(zip(sat.data, z.data).contains { $0 != $1.saturated(toBits: 4) })
    }
  }

  /// Float32 GEMM is exact only below 2^24: the first MLP layer's worst case (784 · 255 · 127) needs the Float64 path.
  @Test func exactPathForLargeSums() {
    var rng = SeededGenerator(seed: 5)
    var layer = WrapLayer(
      name: "input", geometry: .linear(inFeatures: 784, outFeatures: 2), weightFormat: .symmetric(bits: 8),
      accumulator: .wide, maxInputCode: 255, inputScale: 1, generator: &rng)
    #expect(!layer.float32IsExact)
    // All weights at +max so codes are all 127 (or close); all pixels 255: z = Σ 255 · code exceeds 2^24.
    for i in layer.weight.data.indices { layer.weight.data[i] = 1 + Float(i % 7) * 1e-3 }
    let x = Tensor(shape: [1, 784], data: [Float](repeating: 255, count: 784))
    let (codes, _) = layer.quantizedWeights()
    let z = layer.exactSums(x, codes: codes)
    let exact = (0..<784).reduce(Int64(0)) { $0 + 255 * Int64(codes[$1]) }
    #expect(exact > 1 << 24)
    #expect(Int64(z.data[0]) == exact)
  }
}
