import CWrapNetTraining
import WrapNetEngine

/// The shape of a WrapNet layer's dot products: fully connected or 2-D convolution.
public enum WrapGeometry: Sendable, Equatable, Codable {
  /// x [N, inFeatures] -> z [N, outFeatures]; weight [out, in].
  case linear(inFeatures: Int, outFeatures: Int)
  /// x [N, C, H, W] -> z [N, O, Ho, Wo]; weight [O, C, k, k].
  case conv(inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int)

  public var outChannels: Int {
    switch self {
    case .linear(_, let o): return o
    case .conv(_, let o, _, _, _): return o
    }
  }

  /// Number of terms in each dot product (the accumulator's fan-in).
  public var fanIn: Int {
    switch self {
    case .linear(let i, _): return i
    case .conv(let c, _, let k, _, _): return c * k * k
    }
  }

  public var weightShape: [Int] {
    switch self {
    case .linear(let i, let o): return [o, i]
    case .conv(let c, let o, let k, _, _): return [o, c, k, k]
    }
  }
}

/// One quantized layer as WrapNet trains it: integer input codes times integer weight codes, summed exactly into
/// z, then the accumulator (exact / wrap / cyclic / clamp / saturate), then per-channel scaling:
///
///     codes, s = quantize(W)                      // weight codes, one scale per output channel
///     z  = x ⊛ codes                              // exact integer sum (x: input codes)
///     y  = acc(z)                                 // b-bit accumulator semantics
///     out[n, c, ...] = y * s[c] * inputScale (+ bias[c] on the last layer)
///
/// `inputScale` is the Float value of one input code (1 for raw pixels, clip/(2^a-1) for a-bit activations);
/// it and `s` are applied after the accumulator, as the integer engine does.
///
/// Exactness: products of integer codes are exact in Float32 and so is every partial sum while it stays below
/// 2^24. `forward` bounds |z| by fanIn · maxInputCode · maxWeightCode and switches to Float64 GEMM when that
/// bound reaches 2^24 (e.g. a first layer over 784 pixels: 784 · 255 · 127 > 2^24).
///
/// The overflow penalty λ · Σ max(|z| − 2^(b−1), 0) on the unwrapped z (averaged over the batch) is part of this
/// layer's backward when the accumulator is low-bit: `penaltyValue` holds its value for the last forward.
///
/// With a `preload` p (one integer per output channel, `ModelConfig.accumulatorPreload`), the accumulator register
/// starts at p[c] instead of 0, so it holds m = z + p[c]; the accumulator acts on m and p[c] is taken off again:
///
///     y = acc(z + p[c]) − p[c]                     // = z wherever z + p[c] fits b bits
///
/// and the overflow statistics and the penalty count m, not z. A wrap-around register gives
/// wrap(z + p) = wrap(wrap(z) + p), so the engine folds the preload into its per-value table at no cost.
public struct WrapLayer: Layer {
  /// Name used in checkpoints and reports (e.g. "conv2").
  public var name: String
  public let geometry: WrapGeometry
  public var weightFormat: WeightFormat
  public var accumulator: Accumulator
  /// Largest input code (255 for raw pixels, 2^a - 1 for a-bit activations, more for sum-pooled codes).
  public var maxInputCode: Int
  /// Float value of one input code unit.
  public var inputScale: Float
  /// Overflow penalty weight λ (only used when the accumulator is low-bit).
  public var penaltyWeight: Float

  /// Latent Float weights, `geometry.weightShape`.
  public var weight: Tensor
  public var gradWeight: Tensor
  /// Per-channel bias added after scaling (last layer only; nil elsewhere, since batch norm follows).
  public var bias: Tensor?
  public var gradBias: Tensor?
  /// Per-channel accumulator preload p [outChannels], integers in [−2^(b−1), 2^(b−1)−1] (the register's start
  /// value); nil: the register starts at 0. A buffer: set by range calibration, not trained.
  public var preload: Tensor?

  /// Statistics of the forward passes since the last `resetStatistics()`: outputs seen and outputs whose exact sum
  /// left the b-bit range.
  public var outputsSeen = 0
  public var overflowsSeen = 0
  /// Overflow penalty of the last training forward: λ · Σ max(|z| − 2^(b−1), 0) / N.
  public private(set) var penaltyValue: Double = 0
  /// Exact sums z of the last forward, when `keepSums` is set (used to compare with the integer engine).
  public var keepSums = false
  public private(set) var lastSums: Tensor? = nil

  // Cache of the last training forward, for backward.
  private var cacheInput: Tensor? = nil
  private var cacheCodes: [Float] = []
  private var cacheScales: [Float] = []
  private var cacheSums: [Float] = []

  public init(
    name: String, geometry: WrapGeometry, weightFormat: WeightFormat, accumulator: Accumulator,
    maxInputCode: Int, inputScale: Float, penaltyWeight: Float = 0, bias: Bool = false,
    generator: inout SeededGenerator
  ) {
    self.name = name
    self.geometry = geometry
    self.weightFormat = weightFormat
    self.accumulator = accumulator
    self.maxInputCode = maxInputCode
    self.inputScale = inputScale
    self.penaltyWeight = penaltyWeight
    // Kaiming-uniform init, bound sqrt(6 / fanIn): the usual choice for ReLU-like nets.
    let bound = (6 / Float(geometry.fanIn)).squareRoot()
    let shape = geometry.weightShape
    var w = [Float](repeating: 0, count: shape.reduce(1, *))
    for i in w.indices { w[i] = Float.random(in: -bound...bound, using: &generator) }
    self.weight = Tensor(shape: shape, data: w)
    self.gradWeight = Tensor(shape: shape)
    if bias {
      self.bias = Tensor(shape: [geometry.outChannels])
      self.gradBias = Tensor(shape: [geometry.outChannels])
    }
  }

  /// Whether Float32 GEMM is exact for this layer: the worst-case |partial sum| stays below 2^24.
  public var float32IsExact: Bool {
    Double(geometry.fanIn) * Double(maxInputCode) * Double(weightFormat.maxCode) < 16_777_216
  }

  /// Number of multiply-accumulates per image for an input of spatial size `height`×`width` (1×1 for linear).
  public func macs(height: Int, width: Int) -> Int {
    switch geometry {
    case .linear(let i, let o): return i * o
    case .conv(_, let o, _, let s, let p):
      let k = Int(geometry.weightShape[2])
      let ho = (height + 2 * p - k) / s + 1
      let wo = (width + 2 * p - k) / s + 1
      return ho * wo * o * geometry.fanIn
    }
  }

  public mutating func resetStatistics() {
    outputsSeen = 0
    overflowsSeen = 0
  }

  /// The integer weight codes and per-channel scales the layer uses now (under `avoid`, after the projection
  /// that bounds every channel's ‖codes‖₁; see `avoidBudget`).
  public func quantizedWeights() -> (codes: [Float], scales: [Float]) {
    let q = weightFormat.quantize(weight.data, outChannels: geometry.outChannels)
    // Binary codes cannot be 0: a binary layer either meets the budget as it is or is infeasible (refused by
    // `WrapModel`), so it is never projected.
    guard let budget = avoidBudget, weightFormat != .binary else { return q }
    return (projectedCodes(q.codes, budget: budget).codes, q.scales)
  }

  /// Under `avoid` (overflow avoidance, as in accumulator-aware quantization): the largest ‖codes‖₁ one output
  /// channel may have, ⌊(2^(b−1) − 1) / maxInputCode⌋. Then |z| ≤ ‖codes‖₁ · maxInputCode ≤ 2^(b−1) − 1 for every
  /// input, so the b-bit accumulator cannot overflow. nil for any other mode.
  public var avoidBudget: Int? {
    guard accumulator.mode == .avoid, accumulator.bits < 32 else { return nil }
    return ((1 << (accumulator.bits - 1)) - 1) / max(maxInputCode, 1)
  }

  /// Why this layer cannot meet the `avoid` constraint, or nil. Binary weights have no zero code, so their
  /// ‖codes‖₁ is the fan-in whatever the weights are: the constraint holds only if fanIn ≤ budget.
  public var avoidInfeasibility: String? {
    guard let budget = avoidBudget, case .binary = weightFormat, geometry.fanIn > budget else { return nil }
    let limit = (1 << (accumulator.bits - 1)) - 1
    let worst = geometry.fanIn * maxInputCode
    let needed = (Int.bitWidth - worst.leadingZeroBitCount) + 1  // smallest b with 2^(b−1)−1 ≥ worst
    return "layer '\(name)': binary weights have no zero code, so ‖w‖₁ = fan-in \(geometry.fanIn) and "
      + "‖w‖₁·\(maxInputCode) = \(worst) > 2^\(accumulator.bits - 1)−1 = \(limit); overflow "
      + "avoidance is infeasible below \(needed) accumulator bits (use ternary or k-bit weights, --weight-bits 2)"
  }

  /// Codes the `avoid` projection forces to zero / all weight codes, for the current weights (0 for other modes).
  public func avoidForcedZeroShare() -> Double {
    guard let budget = avoidBudget, weightFormat != .binary else { return 0 }
    let q = weightFormat.quantize(weight.data, outChannels: geometry.outChannels)
    return Double(projectedCodes(q.codes, budget: budget).forcedToZero) / Double(max(q.codes.count, 1))
  }

  /// Projects every output channel's codes onto ‖codes‖₁ ≤ budget: a channel over budget keeps its codes in order
  /// of decreasing latent |w| (ties: lower index first), each cut to the budget left, and the rest become 0.
  /// The straight-through gradient still reaches the dropped weights, so they can grow back and be kept later.
  /// codes: [O, fanIn]; returns the projected codes and how many nonzero codes became 0.
  func projectedCodes(_ codes: [Float], budget: Int) -> (codes: [Float], forcedToZero: Int) {
    let fan = geometry.fanIn
    var out = codes
    var forced = 0
    for c in 0..<geometry.outChannels {
      let row = c * fan
      var l1 = 0
      for k in 0..<fan { l1 += Int(abs(codes[row + k])) }
      if l1 <= budget { continue }
      let order = (0..<fan).filter { codes[row + $0] != 0 }.sorted {
        let a = abs(weight.data[row + $0]), b = abs(weight.data[row + $1])
        return a > b || (a == b && $0 < $1)
      }
      var left = budget
      for k in order {
        let m = Int(abs(codes[row + k]))
        let keep = min(m, left)
        left -= keep
        out[row + k] = codes[row + k] < 0 ? -Float(keep) : Float(keep)
        if keep == 0 { forced += 1 }
      }
    }
    return (out, forced)
  }

  /// Exact integer sums z = x ⊛ codes for input codes `input`.
  public func exactSums(_ input: Tensor, codes: [Float]) -> Tensor {
    let w = Tensor(shape: geometry.weightShape, data: codes)
    let precision: GEMMPrecision = float32IsExact ? .single : .double
    switch geometry {
    case .linear:
      return linearForward(input: input, weight: w, precision: precision)
    case .conv(_, _, _, let s, let p):
      return conv2dForward(input: input, weight: w, stride: s, padding: p, precision: precision)
    }
  }

  // input: x codes, [N, in] or [N, C, H, W]; output: [N, out] or [N, O, Ho, Wo]
  public mutating func forward(_ input: Tensor, phase: Phase) -> Tensor {
    let (codes, scales) = quantizedWeights()
    let z = exactSums(input, codes: codes)
    let n = input.shape[0]
    let outC = geometry.outChannels
    let plane = z.count / (n * outC)  // spatial positions per channel (1 for linear)
    if keepSums { lastSums = z }
    // The register's contents m = z + p[c] (z itself without a preload); integers, so exact in Float.
    var m = z
    if let p = preload?.data {
      m.data.withUnsafeMutableBufferPointer { mp in
        for i in 0..<n {
          for c in 0..<outC where p[c] != 0 {
            let base = (i * outC + c) * plane
            for j in base..<(base + plane) { mp[j] += p[c] }
          }
        }
      }
    }

    // Statistics and penalty on the *unwrapped* register contents, image by image. The excess sums are integers (z is an exact
    // integer sum), so adding the images' Double partial sums is exact in any order.
    let acc = accumulator
    let perImage = outC * plane
    var overPerImage = [Int](repeating: 0, count: acc.isLowBit ? n : 0)
    var excessPerImage = [Double](repeating: 0, count: acc.isLowBit ? n : 0)
    if acc.isLowBit {
      let limit = -acc.minValue  // 2^(b-1)
      let (lo, hi) = (acc.minValue, acc.maxValue)
      m.data.withUnsafeBufferPointer { zp in
        overPerImage.withUnsafeMutableBufferPointer { op in
          excessPerImage.withUnsafeMutableBufferPointer { ep in
            let (zs, overs, excesses) = (SharedBuffer(zp), SharedBuffer(op), SharedBuffer(ep))
            runBlocks(n) { i in
              // over = #{v ∉ [lo, hi]}, excess = Σ max(|v| − limit, 0) over the image's sums
              var excess: Double = 0
              overs[i] = Int(
                wrapnet_overflow_statistics(zs.base + i * perImage, perImage, lo, hi, limit, &excess))
              excesses[i] = excess
            }
          }
        }
      }
      overflowsSeen += overPerImage.reduce(0, +)
      penaltyValue = Double(penaltyWeight) * excessPerImage.reduce(0, +) / Double(n)
    } else {
      penaltyValue = 0
    }
    outputsSeen += z.count

    // y = acc(m) − p[c]; out = y * s[c] * inputScale (+ bias[c]). A saturating accumulator's acc(m) comes from its
    // own sequential simulation (started at p[c]); every other mode maps the register contents.
    let saturating = acc.mode == .saturate
    let source = saturating && acc.bits < 32 ? saturatingSums(input, codes: codes) : m
    let channelScales = scales.map { $0 * inputScale }
    let shifts = bias?.data ?? [Float](repeating: 0, count: outC)
    let preloads = preload?.data
    // Every element is written below.
    var out = Tensor(shape: z.shape, data: unfilledArray(count: z.count))
    source.data.withUnsafeBufferPointer { sp in
      out.data.withUnsafeMutableBufferPointer { op in
        let (src, dst) = (SharedBuffer(sp), SharedBuffer(op))
        runBlocks(n) { i in
          for c in 0..<outC {
            let base = (i * outC + c) * plane
            acc.applyScaled(
              src.base + base, count: plane, scale: channelScales[c], shift: shifts[c], identity: saturating,
              preload: preloads?[c], into: dst.base + base)
          }
        }
      }
    }
    if phase == .training {
      cacheInput = input
      cacheCodes = codes
      cacheScales = scales
      cacheSums = m.data
    }
    return out
  }

  // gradOutput: like the output of forward; returns dL/dinput (input codes treated as continuous values).
  public mutating func backward(_ gradOutput: Tensor) -> Tensor {
    guard let input = cacheInput else { preconditionFailure("\(name): backward called without a training forward") }
    let n = input.shape[0]
    let outC = geometry.outChannels
    let plane = gradOutput.count / (n * outC)
    let acc = accumulator
    let limit = -acc.minValue
    let penaltyGrad = acc.isLowBit ? penaltyWeight / Float(n) : 0
    // out = acc(z) * scale + bias  =>  dL/dbias += dL/dout (in the order image, channel, position)
    if gradBias != nil {
      gradOutput.data.withUnsafeBufferPointer { g in
        gradBias!.data.withUnsafeMutableBufferPointer { gb in
          for i in 0..<n {
            for c in 0..<outC {
              let base = (i * outC + c) * plane
              for j in base..<(base + plane) { gb[c] += g[j] }
            }
          }
        }
      }
    }
    let channelScales = cacheScales.map { $0 * inputScale }
    // Every element is written below.
    var gradZ = Tensor(shape: gradOutput.shape, data: unfilledArray(count: gradOutput.count))
    gradOutput.data.withUnsafeBufferPointer { gp in
      gradZ.data.withUnsafeMutableBufferPointer { dp in
        cacheSums.withUnsafeBufferPointer { zp in
          let (g, d, z) = (SharedBuffer(gp), SharedBuffer(dp), SharedBuffer(zp))
          runBlocks(n) { i in
            for c in 0..<outC {
              let base = (i * outC + c) * plane
              // out = (acc(m) − p) * scale, m = z + p  =>  dL/dz = dL/dout * scale * acc'(m)
              acc.scaledDerivative(
                g.base + base, sums: z.base + base, count: plane, scale: channelScales[c], into: d.base + base)
              // penalty λ/N · max(|m| − 2^(b−1), 0)  =>  + λ/N · sign(m) where |m| > 2^(b−1)
              if penaltyGrad != 0 {
                for j in base..<(base + plane) where abs(z[j]) > limit {
                  d[j] += z[j] > 0 ? penaltyGrad : -penaltyGrad
                }
              }
            }
          }
        }
      }
    }
    // z = x ⊛ codes  =>  dL/dx, dL/dcodes
    let w = Tensor(shape: geometry.weightShape, data: cacheCodes)
    var gradCodes = Tensor(shape: geometry.weightShape)
    let gradInput: Tensor
    switch geometry {
    case .linear:
      gradInput = linearBackward(gradOutput: gradZ, input: input, weight: w, gradWeight: &gradCodes)
    case .conv(_, _, _, let s, let p):
      gradInput = conv2dBackward(gradOutput: gradZ, input: input, weight: w, stride: s, padding: p, gradWeight: &gradCodes)
    }
    // codes ≈ W / s[c] (straight-through estimator)  =>  dL/dW = dL/dcodes / s[c]
    let fan = geometry.fanIn
    let inverseScales = cacheScales.map { $0 > 0 ? 1 / $0 : 0 }
    gradCodes.data.withUnsafeBufferPointer { gcp in
      gradWeight.data.withUnsafeMutableBufferPointer { gwp in
        let (gc, gw) = (SharedBuffer(gcp), SharedBuffer(gwp))
        runBlocks(outC) { c in
          let inv = inverseScales[c]
          for k in (c * fan)..<((c + 1) * fan) { gw[k] += gc[k] * inv }
        }
      }
    }
    return gradInput
  }

  public mutating func visitWrapLayers(_ visit: (inout WrapLayer) -> Void) { visit(&self) }

  public mutating func visitParameters(_ visit: (String, inout Tensor, inout Tensor) -> Void) {
    visit("weight", &weight, &gradWeight)
    if bias != nil { visit("bias", &bias!, &gradBias!) }
  }

  public mutating func visitBuffers(_ visit: (String, inout Tensor) -> Void) {
    if preload != nil { visit("preload", &preload!) }
  }

  /// Why `preload` cannot be this layer's register start values (not one integer per output channel in
  /// [−2^(b−1), 2^(b−1)−1]), or nil when it can or there is none.
  public var preloadProblem: String? {
    guard let p = preload else { return nil }
    guard p.shape == [geometry.outChannels] else {
      return "layer '\(name)': preload has shape \(p.shape), expected [\(geometry.outChannels)]"
    }
    // A wide accumulator (a preloaded model evaluated at 32 bits) keeps the values exact in Float: |p| ≤ 2^24.
    let (lo, hi): (Float, Float) = accumulator.bits < 32 ? (accumulator.minValue, accumulator.maxValue) : (-16_777_216, 16_777_216)
    if let c = p.data.firstIndex(where: { !($0.rounded() == $0 && $0 >= lo && $0 <= hi) }) {
      return "layer '\(name)': preload of channel \(c) is \(p.data[c]), expected an integer in [\(Int(lo)), \(Int(hi))] (a \(accumulator.bits)-bit register's start value)"
    }
    return nil
  }

  /// The b-bit saturating accumulator, simulated sequentially: for every output, terms are added in the order
  /// input channel, then kernel row, then kernel column (for linear: input feature 0, 1, 2, ...), and the running
  /// sum is clamped to [-2^(b-1), 2^(b-1)-1] after every addition. Zero-padding terms add nothing. The register of
  /// channel c starts at `preload[c]` (0 without a preload).
  ///
  /// input: codes [N, in] or [N, C, H, W]; codes: weight codes in `geometry.weightShape`;
  /// returns the saturated sums [N, out] or [N, O, Ho, Wo].
  ///
  /// The C kernel (`wrapnet_saturating_sums`) adds the terms of blocks of `saturationBlock` outputs of one channel side
  /// by side (output positions of an image, or images of a linear layer), each output still in the documented order;
  /// zero terms are skipped, since clamp(s + 0) = s for an in-range s. Blocks are spread over `blasThreads()` threads.
  public func saturatingSums(_ input: Tensor, codes: [Float]) -> Tensor {
    let lo = Int32(accumulator.minValue)
    let hi = Int32(accumulator.maxValue)
    let n = input.shape[0]
    let fan = geometry.fanIn
    let weights = codes.map { Int32($0) }  // [O, fan]
    let block = Self.saturationBlock
    let starts = (preload?.data ?? [Float](repeating: 0, count: geometry.outChannels)).map { Int32($0) }
    switch geometry {
    case .linear(let inF, let outF):
      // x [N, in] -> out [N, out]; a block of images is transposed to rows of inputs [in, images].
      var out = unfilledArray(count: n * outF, of: Float.self)
      input.data.withUnsafeBufferPointer { xp in
        weights.withUnsafeBufferPointer { wp in
          out.withUnsafeMutableBufferPointer { op in
            let (x, w, o) = (SharedBuffer(xp), SharedBuffer(wp), SharedBuffer(op))
            runBlocks((n + block - 1) / block) { b in
              let first = b * block, count = min(block, n - first)
              var cols = [Float](repeating: 0, count: inF * count)
              var scratch = [Int32](repeating: 0, count: (outF + 1) * count)
              for i in 0..<count { for k in 0..<inF { cols[k * count + i] = x[(first + i) * inF + k] } }
              wrapnet_saturating_sums(
                cols, count, inF, count, w.base, outF, starts, lo, hi, &scratch, o.base + first * outF, 1, outF)
            }
          }
        }
      }
      return Tensor(shape: [n, outF], data: out)
    case .conv(let c, let o, let k, let s, let p):
      // x [N, C, H, W] -> out [N, O, Ho, Wo]: one image's im2col [fan, Ho·Wo], then blocks of positions.
      let (h, wd) = (input.shape[2], input.shape[3])
      let ho = Conv2D.outputSize(inputSize: h, kernelSize: k, stride: s, padding: p)
      let wo = Conv2D.outputSize(inputSize: wd, kernelSize: k, stride: s, padding: p)
      let plane = ho * wo
      var out = unfilledArray(count: n * o * plane, of: Float.self)
      input.data.withUnsafeBufferPointer { xp in
        weights.withUnsafeBufferPointer { wp in
          out.withUnsafeMutableBufferPointer { op in
            let (x, w, dst) = (SharedBuffer(xp), SharedBuffer(wp), SharedBuffer(op))
            runBlocks(n) { i in
              var cols = unfilledArray(count: fan * plane, of: Float.self)
              var scratch = [Int32](repeating: 0, count: (o + 1) * block)
              wrapnet_im2col(x.base + i * c * h * wd, c, h, wd, k, k, s, p, ho, wo, &cols, plane)
              for first in stride(from: 0, to: plane, by: block) {
                cols.withUnsafeBufferPointer { cp in
                  wrapnet_saturating_sums(
                    cp.baseAddress! + first, plane, fan, min(block, plane - first), w.base, o, starts, lo, hi,
                    &scratch, dst.base + i * o * plane + first, plane, 1)
                }
              }
            }
          }
        }
      }
      return Tensor(shape: [n, o, ho, wo], data: out)
    }
  }

  /// Outputs per block of `saturatingSums`: the block's accumulators (64 per output channel) stay in cache.
  static let saturationBlock = 64
}
