import CWrapNetTraining
import WrapNetEngine

/// The unsigned a-bit activation quantizer as a layer; it also acts as the ReLU.
///
///     code = round(clamp(x, 0, clip) · (2^a − 1) / clip)     (half away from zero), codes 0 … 2^a − 1
///
/// Its output is the integer *code* (as an exact Float): that is what the next layer's accumulator sees. One code
/// unit is worth `scale = clip / (2^a − 1)`.
/// Backward (straight-through, clipped): dcode/dx = (2^a − 1) / clip for 0 ≤ x ≤ clip, 0 outside.
public struct ActivationCodes: Layer {
  public let bits: Int
  public let clip: Float
  private var cacheInput: [Float] = []

  public init(bits: Int, clip: Float) {
    precondition((1...8).contains(bits), "activation bits must be in 1...8, got \(bits)")
    precondition(clip > 0, "activation clip must be > 0, got \(clip)")
    self.bits = bits
    self.clip = clip
  }

  /// Largest code, 2^a − 1.
  public var maxCode: Int { (1 << bits) - 1 }
  /// Float value of one code unit.
  public var scale: Float { clip / Float(maxCode) }

  // input: any shape; output: same shape, codes 0 … 2^a − 1
  public mutating func forward(_ input: Tensor, phase: Phase) -> Tensor {
    let q = UnsignedActivationQuantizer(bits: bits, clip: clip)
    var out = Tensor(shape: input.shape, data: unfilledArray(count: input.count))  // written in full below
    input.data.withUnsafeBufferPointer { xp in
      out.data.withUnsafeMutableBufferPointer { op in
        let (x, o) = (SharedBuffer(xp), SharedBuffer(op))
        runElementBlocks(xp.count) { r in
          for i in r { o[i] = Float(q.code(x[i])) }
        }
      }
    }
    if phase == .training { cacheInput = input.data }
    return out
  }

  public mutating func backward(_ gradOutput: Tensor) -> Tensor {
    precondition(cacheInput.count == gradOutput.count, "ActivationCodes: backward without a matching forward")
    // code ≈ clamp(x, 0, clip) · (2^a − 1)/clip  =>  dx = dcode · (2^a − 1)/clip inside [0, clip]
    return clippedGradient(gradOutput, input: cacheInput, upTo: clip, factor: Float(maxCode) / clip)
  }
}

/// dx = dy · factor where 0 ≤ x ≤ `upTo`, 0 elsewhere (the straight-through gradient of a clipped quantizer).
private func clippedGradient(_ gradOutput: Tensor, input: [Float], upTo hi: Float, factor: Float) -> Tensor {
  var g = Tensor(shape: gradOutput.shape, data: unfilledArray(count: gradOutput.count))  // written in full below
  gradOutput.data.withUnsafeBufferPointer { dyp in
    input.withUnsafeBufferPointer { xp in
      g.data.withUnsafeMutableBufferPointer { dxp in
        let (dy, x, dx) = (SharedBuffer(dyp), SharedBuffer(xp), SharedBuffer(dxp))
        runElementBlocks(dxp.count) { r in
          wrapnet_clipped_gradient(
            dy.base + r.lowerBound, x.base + r.lowerBound, 0, hi, factor, dx.base + r.lowerBound, r.count)
        }
      }
    }
  }
  return g
}

/// Re-codes activation codes worth `inputScale` each for a layer that reads them at another step:
///
///     code' = round(clamp(code · inputScale, 0, clip) · (2^a − 1) / clip)
///
/// Backward (straight-through, clipped): dcode'/dcode = inputScale · (2^a − 1) / clip where 0 ≤ code · inputScale ≤ clip.
public struct CodeRequantizer: Layer {
  public let inputScale: Float
  public let output: ActivationCodes
  private var cacheInput: [Float] = []

  public init(inputScale: Float, output: ActivationCodes) {
    self.inputScale = inputScale
    self.output = output
  }

  public mutating func forward(_ input: Tensor, phase: Phase) -> Tensor {
    let q = UnsignedActivationQuantizer(bits: output.bits, clip: output.clip)
    let s = inputScale
    var out = Tensor(shape: input.shape, data: unfilledArray(count: input.count))  // written in full below
    input.data.withUnsafeBufferPointer { xp in
      out.data.withUnsafeMutableBufferPointer { op in
        let (x, o) = (SharedBuffer(xp), SharedBuffer(op))
        runElementBlocks(xp.count) { r in
          for i in r { o[i] = Float(q.code(x[i] * s)) }
        }
      }
    }
    if phase == .training { cacheInput = input.data }
    return out
  }

  public mutating func backward(_ gradOutput: Tensor) -> Tensor {
    precondition(cacheInput.count == gradOutput.count, "CodeRequantizer: backward without a matching forward")
    return clippedGradient(
      gradOutput, input: cacheInput, upTo: output.clip / inputScale,
      factor: inputScale * Float(output.maxCode) / output.clip)
  }
}

/// Sum pooling over the whole feature map: [N, C, H, W] -> [N, C]. Sums of integer codes stay integers, so the
/// integer engine computes the same values; the following layer divides by H·W through its input scale.
public struct GlobalSumPool: Layer {
  private var cacheShape: [Int] = []
  public init() {}

  public mutating func forward(_ input: Tensor, phase: Phase) -> Tensor {
    precondition(input.rank == 4, "GlobalSumPool expects [N, C, H, W], got \(input.shape)")
    let n = input.shape[0], c = input.shape[1], plane = input.shape[2] * input.shape[3]
    var out = [Float](repeating: 0, count: n * c)
    input.data.withUnsafeBufferPointer { x in
      for i in 0..<(n * c) {
        var s: Float = 0
        for j in 0..<plane { s += x[i * plane + j] }
        out[i] = s
      }
    }
    cacheShape = input.shape
    return Tensor(shape: [n, c], data: out)
  }

  public mutating func backward(_ gradOutput: Tensor) -> Tensor {
    let plane = cacheShape[2] * cacheShape[3]
    var g = [Float](repeating: 0, count: cacheShape.reduce(1, *))
    for i in 0..<gradOutput.count {
      // out[i] = Σ_j x[i, j]  =>  dx[i, j] = dout[i]
      for j in 0..<plane { g[i * plane + j] = gradOutput.data[i] }
    }
    return Tensor(shape: cacheShape, data: g)
  }
}
