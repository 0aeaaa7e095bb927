// Fully connected layer: y = x·Wᵀ + b, plus the pure forward/backward functions that the quantized layers reuse
// with their own (integer-coded) weights.

/// Forward of a fully connected map on a *given* weight: y[n, o] = Σᵢ x[n, i]·W[o, i] + b[o].
///
/// Shapes: `input` [N, in], `weight` [out, in], `bias` [out] or nil → output [N, out].
/// `precision` selects Float32 or Float64 summation (see `GEMMPrecision`); with `.double` the bias is added in
/// Float64 before the single rounding.
public func linearForward(input: Tensor, weight: Tensor, bias: Tensor? = nil, precision: GEMMPrecision = .single)
  -> Tensor
{
  // input [N, in], weight [out, in], bias [out] -> output [N, out]
  let (n, out) = linearCheck(input: input, weight: weight, bias: bias)
  switch precision {
  case .single:
    return Tensor(shape: [n, out], data: linearForwardKernel(input: input, weight: weight, bias: bias, as: Float.self))
  case .double:
    let y = linearForwardKernel(input: input, weight: weight, bias: bias, as: Double.self)
    return Tensor(shape: [n, out], data: y.map { Float($0) })
  }
}

/// Forward of a fully connected map summed in Float64 and returned unrounded: y[n, o] = Σᵢ x[n, i]·W[o, i] + b[o].
///
/// Shapes: `input` [N, in], `weight` [out, in], `bias` [out] or nil → row-major [N, out] Doubles.
/// Exact for integer-valued operands while every partial sum stays below 2⁵³.
public func linearForwardDouble(input: Tensor, weight: Tensor, bias: Tensor? = nil) -> [Double] {
  // input [N, in], weight [out, in], bias [out] -> output [N, out]
  _ = linearCheck(input: input, weight: weight, bias: bias)
  return linearForwardKernel(input: input, weight: weight, bias: bias, as: Double.self)
}

/// Backward of `linearForward` on a given weight: accumulates dL/dW into `gradWeight` and returns dL/dx.
///
/// Formulas: dW[o, i] += Σₙ dy[n, o]·x[n, i] (dW += dyᵀ·x), dx[n, i] = Σₒ dy[n, o]·W[o, i] (dx = dy·W).
/// Shapes: `gradOutput` [N, out], `input` [N, in], `weight` [out, in], `gradWeight` [out, in] → dx [N, in].
/// The bias gradient is `accumulateBiasGradient(gradOutput:into:)`.
public func linearBackward(gradOutput: Tensor, input: Tensor, weight: Tensor, gradWeight: inout Tensor) -> Tensor {
  // gradOutput [N, out], input [N, in], weight [out, in], gradWeight [out, in] -> gradInput [N, in]
  let (n, out) = linearCheck(input: input, weight: weight, bias: nil)
  let inF = weight.shape[1]
  precondition(
    gradOutput.shape == [n, out], "linearBackward: gradOutput \(gradOutput.shape) must be [\(n), \(out)]")
  precondition(
    gradWeight.shape == weight.shape,
    "linearBackward: gradWeight \(gradWeight.shape) must match weight \(weight.shape)")
  var gradInput = [Float](repeating: 0, count: n * inF)
  gradOutput.data.withUnsafeBufferPointer { dy in
    input.data.withUnsafeBufferPointer { x in
      weight.data.withUnsafeBufferPointer { w in
        gradWeight.data.withUnsafeMutableBufferPointer { dw in
          // y = x·Wᵀ  (w.r.t. W): dW += dyᵀ·x, [out, N]·[N, in]
          sgemm(transA: .transpose, transB: .none, m: out, n: inF, k: n, a: dy, b: x, beta: 1, c: dw)
        }
        gradInput.withUnsafeMutableBufferPointer { dx in
          // y = x·Wᵀ  (w.r.t. x): dx = dy·W, [N, out]·[out, in]
          sgemm(transA: .none, transB: .none, m: n, n: inF, k: out, a: dy, b: w, beta: 0, c: dx)
        }
      }
    }
  }
  return Tensor(shape: [n, inF], data: gradInput)
}

/// Backward of `linearForward` returning fresh gradients: (dL/dx [N, in], dL/dW [out, in]), starting from dW = 0.
public func linearBackward(gradOutput: Tensor, input: Tensor, weight: Tensor) -> (gradInput: Tensor, gradWeight: Tensor)
{
  // gradOutput [N, out], input [N, in], weight [out, in] -> ([N, in], [out, in])
  var gradWeight = Tensor(shape: weight.shape)
  let gradInput = linearBackward(gradOutput: gradOutput, input: input, weight: weight, gradWeight: &gradWeight)
  return (gradInput, gradWeight)
}

/// Accumulates the gradient of a per-channel bias: db[c] += Σ over every index but dimension 1 of dy.
///
/// Shapes: `gradOutput` [N, C] or [N, C, H, W] (any rank ≥ 2, channel at dimension 1), `gradBias` [C].
/// Sums are taken in a fixed order (n, then spatial), independent of any thread count.
public func accumulateBiasGradient(gradOutput: Tensor, into gradBias: inout Tensor) {
  // gradOutput [N, C, ...], gradBias [C]
  precondition(gradOutput.rank >= 2, "accumulateBiasGradient: gradOutput \(gradOutput.shape) needs rank >= 2")
  let n = gradOutput.shape[0]
  let c = gradOutput.shape[1]
  precondition(
    gradBias.shape == [c], "accumulateBiasGradient: gradBias \(gradBias.shape) must be [\(c)] for \(gradOutput.shape)")
  let spatial = gradOutput.shape.dropFirst(2).reduce(1, *)
  gradOutput.data.withUnsafeBufferPointer { dy in
    gradBias.data.withUnsafeMutableBufferPointer { db in
      for ch in 0..<c {
        var sum: Float = 0
        for i in 0..<n {
          let base = (i * c + ch) * spatial
          for s in 0..<spatial { sum += dy[base + s] }
        }
        // y = ... + b[c]: db[c] += Σ dy[:, c, ...]
        db[ch] += sum
      }
    }
  }
}

/// Validates linear shapes and returns (N, out).
private func linearCheck(input: Tensor, weight: Tensor, bias: Tensor?) -> (Int, Int) {
  precondition(input.rank == 2, "linear: input \(input.shape) must be [N, in]")
  precondition(weight.rank == 2, "linear: weight \(weight.shape) must be [out, in]")
  precondition(
    input.shape[1] == weight.shape[1],
    "linear: input \(input.shape) has \(input.shape[1]) features, weight \(weight.shape) expects \(weight.shape[1])")
  if let bias {
    precondition(bias.shape == [weight.shape[0]], "linear: bias \(bias.shape) must be [\(weight.shape[0])]")
  }
  return (input.shape[0], weight.shape[0])
}

/// y = x·Wᵀ + b in the scalar type S (Float: no conversion; Double: operands widened first).
private func linearForwardKernel<S: BLASScalar>(input: Tensor, weight: Tensor, bias: Tensor?, as: S.Type) -> [S] {
  // input [N, in], weight [out, in], bias [out] -> [N, out]
  let n = input.shape[0]
  let inF = input.shape[1]
  let out = weight.shape[0]
  let x: [S] = S.converting(input.data)
  let w: [S] = S.converting(weight.data)
  var y = [S](repeating: 0, count: n * out)
  x.withUnsafeBufferPointer { px in
    w.withUnsafeBufferPointer { pw in
      y.withUnsafeMutableBufferPointer { py in
        // [N, in]·[in, out] (W stored [out, in], used transposed)
        S.gemm(transA: .none, transB: .transpose, m: n, n: out, k: inF, a: px, b: pw, beta: 0, c: py)
        if let bias {
          bias.data.withUnsafeBufferPointer { pb in
            for i in 0..<n {
              for o in 0..<out { py[i * out + o] += S(pb[o]) }
            }
          }
        }
      }
    }
  }
  return y
}

/// A fully connected layer: y = x·Wᵀ + b.
///
/// Shapes: input [N, in] → output [N, out]; `weight` [out, in], `bias` [out] (absent when built with `bias: false`).
/// Forward in `.training` keeps the input for backward; backward accumulates dW (and db) and returns dx.
public struct Linear: Layer {
  /// Weight W, [out, in].
  public var weight: Tensor
  /// Bias b, [out]; nil for a layer without bias.
  public var bias: Tensor?
  /// Accumulated dL/dW, [out, in].
  public var gradWeight: Tensor
  /// Accumulated dL/db, [out]; nil when there is no bias.
  public var gradBias: Tensor?
  /// Summation format of the forward product (see `GEMMPrecision`); backward always uses Float32.
  public var precision: GEMMPrecision = .single
  /// Input of the last `.training` forward (the backward cache).
  private var cachedInput: Tensor?

  /// Number of input features.
  public var inFeatures: Int { weight.shape[1] }
  /// Number of output features.
  public var outFeatures: Int { weight.shape[0] }

  /// A layer with the given weight [out, in] and optional bias [out]; gradients start at zero.
  public init(weight: Tensor, bias: Tensor?) {
    precondition(weight.rank == 2, "Linear: weight \(weight.shape) must be [out, in]")
    if let bias {
      precondition(bias.shape == [weight.shape[0]], "Linear: bias \(bias.shape) must be [\(weight.shape[0])]")
    }
    self.weight = weight
    self.bias = bias
    self.gradWeight = Tensor(shape: weight.shape)
    self.gradBias = bias.map { Tensor(shape: $0.shape) }
  }

  /// A layer initialized like PyTorch's default: W and b uniform in [-1/√in, 1/√in], drawn from `generator`
  /// (weights first, row-major, then bias), so a seeded generator gives reproducible weights.
  public init<G: RandomNumberGenerator>(
    inFeatures: Int, outFeatures: Int, bias: Bool = true, using generator: inout G
  ) {
    precondition(
      inFeatures > 0 && outFeatures > 0, "Linear: features must be positive, got in=\(inFeatures) out=\(outFeatures)")
    let bound = 1 / Float(inFeatures).squareRoot()
    let w = (0..<(inFeatures * outFeatures)).map { _ in Float.random(in: -bound...bound, using: &generator) }
    let b = bias ? (0..<outFeatures).map { _ in Float.random(in: -bound...bound, using: &generator) } : nil
    self.init(
      weight: Tensor(shape: [outFeatures, inFeatures], data: w),
      bias: b.map { Tensor(shape: [outFeatures], data: $0) })
  }

  /// y = x·Wᵀ + b. Shapes: input [N, in] → [N, out].
  public mutating func forward(_ input: Tensor, phase: Phase) -> Tensor {
    // input [N, in] -> output [N, out]
    cachedInput = phase == .training ? input : nil
    return linearForward(input: input, weight: weight, bias: bias, precision: precision)
  }

  /// Accumulates dW, db; returns dx. Shapes: gradOutput [N, out] → [N, in].
  public mutating func backward(_ gradOutput: Tensor) -> Tensor {
    // gradOutput [N, out] -> gradInput [N, in]
    guard let input = cachedInput else { preconditionFailure("Linear.backward called without a .training forward") }
    let gradInput = linearBackward(gradOutput: gradOutput, input: input, weight: weight, gradWeight: &gradWeight)
    if gradBias != nil { accumulateBiasGradient(gradOutput: gradOutput, into: &gradBias!) }
    return gradInput
  }

  /// Visits ("weight", W, dW) then ("bias", b, db) when present.
  public mutating func visitParameters(_ visit: (String, inout Tensor, inout Tensor) -> Void) {
    visit("weight", &weight, &gradWeight)
    if bias != nil { visit("bias", &bias!, &gradBias!) }
  }
}
