// Weight and activation quantizers: forward (integer codes + Float scale) and straight-through backward.
//
// Weights and activations reach the accumulator as integer codes; scales are applied after the accumulator:
//
//     y[c] = weightScale[c] * activationStep * wrap_b( sum_i  weightCode[c, i] * activationCode[i] )
//
// Weights are row-major `[outChannels, fanIn]` Float arrays with one scale per output channel.

/// Integer weight codes with one Float scale per output channel.
///
/// `codes` is row-major `[outChannels, fanIn]`, `scales` is `[outChannels]`; the dequantized weight is
/// `w_hat[c, i] = scales[c] * Float(codes[c * fanIn + i])`.
public struct QuantizedWeights: Sendable, Equatable {
  /// Integer codes, row-major `[outChannels, fanIn]`.
  public var codes: [Int8]
  /// Per-output-channel scales, `[outChannels]`.
  public var scales: [Float]
  /// Number of rows (output channels).
  public let outChannels: Int
  /// Number of columns (inputs per output channel).
  public let fanIn: Int

  /// Codes and scales of the given shape.
  /// Preconditions: `codes.count == outChannels * fanIn`, `scales.count == outChannels`.
  public init(codes: [Int8], scales: [Float], outChannels: Int, fanIn: Int) {
    precondition(outChannels >= 0 && fanIn >= 0, "QuantizedWeights shape [\(outChannels), \(fanIn)] is negative")
    precondition(
      codes.count == outChannels * fanIn,
      "QuantizedWeights has \(codes.count) codes but shape [\(outChannels), \(fanIn)] needs \(outChannels * fanIn)")
    precondition(
      scales.count == outChannels, "QuantizedWeights has \(scales.count) scales but \(outChannels) output channels")
    self.codes = codes
    self.scales = scales
    self.outChannels = outChannels
    self.fanIn = fanIn
  }

  /// `w_hat[c, i] = scales[c] * codes[c, i]`, row-major `[outChannels, fanIn]`.
  public func dequantized() -> [Float] {
    var result = [Float](repeating: 0, count: codes.count)
    let fanIn = self.fanIn
    codes.withUnsafeBufferPointer { codes in
      scales.withUnsafeBufferPointer { scales in
        result.withUnsafeMutableBufferPointer { out in
          for c in 0..<outChannels {
            let s = scales[c]
            for i in 0..<fanIn { out[c * fanIn + i] = s * Float(codes[c * fanIn + i]) }
          }
        }
      }
    }
    return result
  }
}

/// A per-output-channel weight quantizer (binary, ternary, symmetric k-bit) with a straight-through backward.
public protocol WeightQuantizer: Sendable {
  /// The codes this quantizer produces, e.g. `-1...1` for ternary.
  var codeRange: ClosedRange<Int8> { get }

  /// Quantizes row-major `[outChannels, fanIn]` latent weights to codes and per-row scales.
  /// Precondition: `weights.count == outChannels * fanIn`.
  func quantize(_ weights: [Float], outChannels: Int, fanIn: Int) -> QuantizedWeights
}

extension WeightQuantizer {
  /// Straight-through estimator: `dL/dw = dL/dw_hat` (identity), where `w_hat = scale * code` is the dequantized
  /// weight and `w` the latent Float weight. The scale is treated as a constant (no gradient flows through it).
  /// Shapes: `gradient` `[outChannels, fanIn]` in, same shape out.
  @inlinable
  public func backward(gradient: [Float]) -> [Float] { gradient }

  /// Quantize then dequantize ("fake quantization"): `scale[c] * code[c, i]`, `[outChannels, fanIn]`.
  public func fakeQuantized(_ weights: [Float], outChannels: Int, fanIn: Int) -> [Float] {
    quantize(weights, outChannels: outChannels, fanIn: fanIn).dequantized()
  }
}

@usableFromInline
func checkWeightShape(_ count: Int, outChannels: Int, fanIn: Int, _ name: String) {
  precondition(outChannels >= 0 && fanIn > 0, "\(name): shape [\(outChannels), \(fanIn)] needs fanIn > 0")
  precondition(
    count == outChannels * fanIn,
    "\(name): weights have \(count) elements but shape [\(outChannels), \(fanIn)] needs \(outChannels * fanIn)")
}

/// Mean of |w| over one row, accumulated in Double in index order (exact for rows of identical magnitudes).
@usableFromInline
func meanAbsolute(_ row: UnsafeBufferPointer<Float>) -> Double {
  var sum = 0.0
  for w in row { sum += Double(w.magnitude) }
  return sum / Double(row.count)
}

/// Binary (sign) weights: `code = w >= 0 ? +1 : -1` (0 and -0 map to +1, NaN to -1),
/// `scale[c] = mean_i |w[c, i]|` (0 for an all-zero row, whose dequantized row is then exactly 0).
public struct BinaryQuantizer: WeightQuantizer, Hashable {
  /// A binary quantizer.
  public init() {}

  /// `-1...1` (0 never occurs).
  public var codeRange: ClosedRange<Int8> { -1...1 }

  /// `w >= 0 ? +1 : -1`.
  @inlinable @inline(__always)
  public static func code(_ w: Float) -> Int8 { w >= 0 ? 1 : -1 }

  /// Codes `[outChannels, fanIn]` and scales `[outChannels]` (see the type's formula).
  public func quantize(_ weights: [Float], outChannels: Int, fanIn: Int) -> QuantizedWeights {
    checkWeightShape(weights.count, outChannels: outChannels, fanIn: fanIn, "BinaryQuantizer")
    var codes = [Int8](repeating: 0, count: weights.count)
    var scales = [Float](repeating: 0, count: outChannels)
    weights.withUnsafeBufferPointer { w in
      codes.withUnsafeMutableBufferPointer { q in
        for c in 0..<outChannels {
          let row = UnsafeBufferPointer(rebasing: w[(c * fanIn)..<((c + 1) * fanIn)])
          scales[c] = Float(meanAbsolute(row))
          for i in 0..<fanIn { q[c * fanIn + i] = Self.code(row[i]) }
        }
      }
    }
    return QuantizedWeights(codes: codes, scales: scales, outChannels: outChannels, fanIn: fanIn)
  }
}

/// Ternary weights with a per-row threshold.
///
/// `Δ[c] = t * mean_i |w[c, i]|` (default `t = 0.7`); `code = +1 if w > Δ, -1 if w < -Δ, else 0`;
/// `scale[c] = mean of |w[c, i]|` over the surviving weights (nonzero codes). If no weight of a row survives, its
/// codes are all 0 and `scale[c] = Δ[c]` when `Δ[c] > 0`, else 1 (any positive value would do; it keeps the
/// scale positive and meaningful). Quantizing the dequantized weights reproduces the codes when `t < 1`.
public struct TernaryQuantizer: WeightQuantizer, Hashable {
  /// The factor t in `Δ = t * mean |w|`.
  public var thresholdFactor: Float

  /// A ternary quantizer with threshold factor t (default 0.7). Precondition: t finite and `>= 0`.
  public init(thresholdFactor: Float = 0.7) {
    precondition(
      thresholdFactor.isFinite && thresholdFactor >= 0,
      "TernaryQuantizer thresholdFactor must be finite and >= 0, got \(thresholdFactor)")
    self.thresholdFactor = thresholdFactor
  }

  /// `-1...1`.
  public var codeRange: ClosedRange<Int8> { -1...1 }

  /// `+1 if w > threshold, -1 if w < -threshold, else 0`.
  @inlinable @inline(__always)
  public static func code(_ w: Float, threshold: Float) -> Int8 {
    w > threshold ? 1 : (w < -threshold ? -1 : 0)
  }

  /// The per-row thresholds `Δ[c] = t * mean_i |w[c, i]|`, `[outChannels]`.
  public func thresholds(_ weights: [Float], outChannels: Int, fanIn: Int) -> [Float] {
    checkWeightShape(weights.count, outChannels: outChannels, fanIn: fanIn, "TernaryQuantizer")
    return weights.withUnsafeBufferPointer { w in
      (0..<outChannels).map { c in
        Float(Double(thresholdFactor) * meanAbsolute(UnsafeBufferPointer(rebasing: w[(c * fanIn)..<((c + 1) * fanIn)])))
      }
    }
  }

  /// Codes `[outChannels, fanIn]` and scales `[outChannels]` (see the type's formula).
  public func quantize(_ weights: [Float], outChannels: Int, fanIn: Int) -> QuantizedWeights {
    let deltas = thresholds(weights, outChannels: outChannels, fanIn: fanIn)
    var codes = [Int8](repeating: 0, count: weights.count)
    var scales = [Float](repeating: 0, count: outChannels)
    weights.withUnsafeBufferPointer { w in
      codes.withUnsafeMutableBufferPointer { q in
        for c in 0..<outChannels {
          let delta = deltas[c]
          var survivorSum = 0.0
          var survivors = 0
          for i in 0..<fanIn {
            let code = Self.code(w[c * fanIn + i], threshold: delta)
            q[c * fanIn + i] = code
            if code != 0 {
              survivorSum += Double(w[c * fanIn + i].magnitude)
              survivors += 1
            }
          }
          scales[c] = survivors > 0 ? Float(survivorSum / Double(survivors)) : (delta > 0 ? delta : 1)
        }
      }
    }
    return QuantizedWeights(codes: codes, scales: scales, outChannels: outChannels, fanIn: fanIn)
  }
}

/// Symmetric k-bit weights (k in 2...8): `qmax = 2^(k-1) - 1`, `scale[c] = max_i |w[c, i]| / qmax` (1 for an
/// all-zero row), `code = clamp(round(w / scale), -qmax, qmax)` with rounding half away from zero.
/// Codes lie in `-qmax...qmax` (the code -2^(k-1) is never used, so the range is symmetric).
public struct SymmetricQuantizer: WeightQuantizer, Hashable {
  /// Bits per code, k in 2...8.
  public let bits: Int

  /// A symmetric k-bit quantizer. Precondition: `2 <= bits <= 8`.
  public init(bits: Int) {
    precondition(bits >= 2 && bits <= 8, "SymmetricQuantizer bits must be in 2...8, got \(bits)")
    self.bits = bits
  }

  /// `2^(k-1) - 1`.
  public var qmax: Int8 { Int8((1 << (bits - 1)) - 1) }

  /// `-qmax...qmax`.
  public var codeRange: ClosedRange<Int8> { -qmax...qmax }

  /// `clamp(round(w / scale), -qmax, qmax)`, rounding half away from zero. Precondition: `scale > 0`.
  @inlinable @inline(__always)
  public func code(_ w: Float, scale: Float) -> Int8 {
    let limit = Float((1 << (bits - 1)) - 1)
    let r = (w / scale).rounded(.toNearestOrAwayFromZero)
    // Comparisons send NaN to 0 rather than trapping in the conversion.
    let clamped = r > -limit ? (r < limit ? r : limit) : (r <= -limit ? -limit : 0)
    return Int8(clamped)
  }

  /// The per-row scales `max_i |w[c, i]| / qmax` (1 for an all-zero row), `[outChannels]`.
  public func scales(_ weights: [Float], outChannels: Int, fanIn: Int) -> [Float] {
    checkWeightShape(weights.count, outChannels: outChannels, fanIn: fanIn, "SymmetricQuantizer")
    let q = Float(qmax)
    return weights.withUnsafeBufferPointer { w in
      (0..<outChannels).map { c in
        var largest: Float = 0
        for i in 0..<fanIn { largest = Swift.max(largest, w[c * fanIn + i].magnitude) }
        return largest > 0 ? largest / q : 1
      }
    }
  }

  /// Codes `[outChannels, fanIn]` and scales `[outChannels]` (see the type's formula).
  public func quantize(_ weights: [Float], outChannels: Int, fanIn: Int) -> QuantizedWeights {
    let scales = self.scales(weights, outChannels: outChannels, fanIn: fanIn)
    var codes = [Int8](repeating: 0, count: weights.count)
    weights.withUnsafeBufferPointer { w in
      codes.withUnsafeMutableBufferPointer { q in
        for c in 0..<outChannels {
          let s = scales[c]
          for i in 0..<fanIn { q[c * fanIn + i] = code(w[c * fanIn + i], scale: s) }
        }
      }
    }
    return QuantizedWeights(codes: codes, scales: scales, outChannels: outChannels, fanIn: fanIn)
  }
}

/// Unsigned k-bit activations (k in 1...8) with clip range `c > 0`.
///
/// Forward: `code = round(clamp(x, 0, c) * (2^k - 1) / c)` rounding half away from zero, codes `0 ... 2^k - 1`
/// (UInt8, since 2^8 - 1 = 255 does not fit Int8); value `= code * c / (2^k - 1)`, so the step is `c / (2^k - 1)`.
/// NaN inputs give code 0.
/// Backward (clipped straight-through estimator): `dL/dx = dL/dx_hat` where `0 <= x <= c`, 0 elsewhere (and for NaN).
public struct UnsignedActivationQuantizer: Sendable, Hashable {
  /// Bits per code, k in 1...8.
  public let bits: Int
  /// Clip range c > 0: inputs are clamped to `[0, c]`.
  public let clip: Float
  /// `2^k - 1`, the largest code, as a Float.
  public let levels: Float

  /// A k-bit unsigned activation quantizer with clip range `clip`.
  /// Preconditions: `1 <= bits <= 8`, `clip` finite and `> 0`.
  public init(bits: Int, clip: Float) {
    precondition(bits >= 1 && bits <= 8, "UnsignedActivationQuantizer bits must be in 1...8, got \(bits)")
    precondition(clip.isFinite && clip > 0, "UnsignedActivationQuantizer clip must be finite and > 0, got \(clip)")
    self.bits = bits
    self.clip = clip
    self.levels = Float((1 << bits) - 1)
  }

  /// The largest code, `2^k - 1`.
  public var maxCode: UInt8 { UInt8((1 << bits) - 1) }

  /// The value of one code step, `c / (2^k - 1)` (the activation scale applied after the accumulator).
  public var stepSize: Float { clip / levels }

  /// `round(clamp(x, 0, c) * (2^k - 1) / c)`, half away from zero; NaN gives 0.
  @inlinable @inline(__always)
  public func code(_ x: Float) -> UInt8 {
    // `x > 0` is false for NaN, which therefore maps to 0 instead of trapping in the conversion.
    let clamped = x > 0 ? (x < clip ? x : clip) : 0
    let q = Swift.min(clamped * levels / clip, levels)  // in [0, 2^k - 1]; min guards a huge clip overflowing
    // Round half away from zero without a libm `round` call or a checked Float -> Int conversion, so the loop
    // vectorizes on baseline x86-64: q + 2^23 lies in [2^23, 2^24), where the Float spacing is 1, so the addition
    // rounds q to the nearest integer (ties to even) and leaves that integer in the low mantissa bits. A tie that
    // went down to even (q - nearest == 1/2 exactly; the difference is exact) is bumped up, i.e. away from zero.
    let shifted = q + 8_388_608
    let nearest = shifted - 8_388_608
    let tieCarry: UInt32 = q - nearest == 0.5 ? 1 : 0
    return UInt8(truncatingIfNeeded: (shifted.bitPattern &- 0x4B00_0000) &+ tieCarry)
  }

  /// `code * c / (2^k - 1)`.
  @inlinable @inline(__always)
  public func dequantize(_ code: UInt8) -> Float { Float(code) * clip / levels }

  /// Quantize then dequantize: `dequantize(code(x))`.
  @inlinable @inline(__always)
  public func fakeQuantize(_ x: Float) -> Float { dequantize(code(x)) }

  /// Clipped STE: `gradient` where `0 <= x <= c`, else 0.
  @inlinable @inline(__always)
  public func backward(gradient: Float, input x: Float) -> Float {
    (x >= 0 && x <= clip) ? gradient : 0
  }

  /// Codes of every element, same shape as `x`.
  public func codes(_ x: [Float]) -> [UInt8] { elementwise(x, zero: 0, code) }

  /// Values `code * c / (2^k - 1)` of every code, same shape as `codes`.
  public func dequantized(_ codes: [UInt8]) -> [Float] { elementwise(codes, zero: 0, dequantize) }

  /// `fakeQuantize` of every element, same shape as `x`.
  public func fakeQuantized(_ x: [Float]) -> [Float] { elementwise(x, zero: 0, fakeQuantize) }

  /// Clipped STE for a whole tensor: `dL/dx[i] = 0 <= x[i] <= c ? gradient[i] : 0`.
  /// Shapes: `gradient` and `input` have the same count; the result too.
  public func backward(gradient: [Float], input: [Float]) -> [Float] {
    precondition(
      gradient.count == input.count,
      "UnsignedActivationQuantizer.backward: gradient has \(gradient.count) elements, input \(input.count)")
    var result = [Float](repeating: 0, count: input.count)
    gradient.withUnsafeBufferPointer { g in
      input.withUnsafeBufferPointer { x in
        result.withUnsafeMutableBufferPointer { out in
          for i in x.indices { out[i] = backward(gradient: g[i], input: x[i]) }
        }
      }
    }
    return result
  }
}

/// `[f(x[0]), f(x[1]), ...]` through buffer pointers (no bounds checks or copy-on-write checks per element), for
/// the quantizers' whole-array forms.
@inline(__always)
private func elementwise<Input, Output>(_ x: [Input], zero: Output, _ f: (Input) -> Output) -> [Output] {
  var result = [Output](repeating: zero, count: x.count)
  x.withUnsafeBufferPointer { x in
    result.withUnsafeMutableBufferPointer { out in
      for i in x.indices { out[i] = f(x[i]) }
    }
  }
  return result
}
