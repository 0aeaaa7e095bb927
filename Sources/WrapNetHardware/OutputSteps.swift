import WrapNetEngine

/// A layer's output stage as comparators on the accumulator value: for channel c and accumulator value v,
///
///     code(v) = base[c] + Σ_{i < steps} delta[c, i] · [v >= threshold[c, i]]
///
/// with every threshold inside the accumulator's range (b-bit comparators for a b-bit register, 32-bit ones for the
/// exact baseline). It is built from the engine's per-channel data (`DenseOutput`), so for every value v the
/// accumulator can hold, `code(v)` equals the engine's next activation code. Channels with fewer steps than the
/// layer's widest are padded with `delta = 0`.
///
/// A cyclic activation makes the codes rise and fall around the b-bit circle, so its channels need about twice as
/// many steps as a plain monotone quantizer; a 2^b-entry table is read off value by value.
public struct OutputSteps: Sendable, Equatable {
  /// Output channels C.
  public var channels: Int
  /// Steps per channel S (the widest channel's count; at least 1).
  public var steps: Int
  /// The code at the smallest accumulator value, [C].
  public var base: [Int]
  /// Comparator thresholds [C, S], ascending within a channel.
  public var thresholds: [Int64]
  /// Code changes [C, S].
  public var deltas: [Int]
  /// Largest code any channel outputs.
  public var maxCode: Int
  /// The accumulator values the comparators see: [-2^(b-1), 2^(b-1)-1] of the output register.
  public var valueBits: Int

  /// `code(v)` for channel `c` (the software twin of the generated comparators).
  public func code(_ v: Int64, channel c: Int) -> Int {
    var out = base[c]
    for i in 0..<steps where v >= thresholds[c * steps + i] { out += deltas[c * steps + i] }
    return out
  }

  /// Largest value enumerated value by value (2^16 per channel); wider layers must come as thresholds.
  public static let maxEnumeratedBits = 16

  /// The steps of `layer`'s output for accumulator values of `valueBits` bits (the PE's output width: b, or 32 for
  /// an exact register). Throws `HardwareError` for outputs the generator does not build (logits, residual blocks,
  /// Float post-processing wider than 2^16 values).
  public init(layer: DenseLayer, valueBits: Int) throws {
    let c = layer.outChannels
    let lo = -(Int64(1) << (valueBits - 1)), hi = (Int64(1) << (valueBits - 1)) - 1
    var rows: [[(Int64, Int)]] = []
    var base: [Int] = []
    switch layer.output {
    case .logits:
      throw HardwareError("layer '\(layer.name)' outputs logits (Float scale and bias), not codes; its unit outputs the 32-bit sums")
    case .residualTable, .residualThresholds:
      throw HardwareError("layer '\(layer.name)' ends a residual block (its codes also read the shortcut); the generator builds plain layers only")
    case .thresholds(let t, let levels, let descending):
      for ch in 0..<c {
        var b = 0
        var row: [(Int64, Int)] = []
        for l in 0..<levels {
          let th = t[ch * levels + l]
          if descending[ch] {
            // [v <= th] = 1 - [v >= th + 1]
            if th >= hi { b += 1 } else if th >= lo { b += 1; row.append((th + 1, -1)) }
          } else {
            if th <= lo { b += 1 } else if th <= hi { row.append((th, 1)) }
          }
        }
        base.append(b)
        rows.append(row)
      }
    case .table, .float:
      guard valueBits <= Self.maxEnumeratedBits else {
        throw HardwareError("layer '\(layer.name)': a \(valueBits)-bit output stage from Float post-processing is not built (at most \(Self.maxEnumeratedBits) bits)")
      }
      let bits = layer.accumulatorBits
      for ch in 0..<c {
        func f(_ v: Int64) -> Int {
          switch layer.output {
          case .table(let codes):
            return Int(codes[ch << bits + Int(v + (Int64(1) << (bits - 1)))])
          case .float(let fo):
            return Int(fo.code(Int32(v), channel: ch, shortcut: 0))
          default: preconditionFailure("unreachable")
          }
        }
        var previous = f(lo)
        var row: [(Int64, Int)] = []
        var v = lo + 1
        while v <= hi {
          let now = f(v)
          if now != previous { row.append((v, now - previous)) }
          previous = now
          v += 1
        }
        base.append(f(lo))
        rows.append(row)
      }
    }
    let steps = max(1, rows.map(\.count).max() ?? 0)
    var thresholds = [Int64](repeating: lo, count: c * steps)
    var deltas = [Int](repeating: 0, count: c * steps)
    for ch in 0..<c {
      for (i, (t, d)) in rows[ch].sorted(by: { $0.0 < $1.0 }).enumerated() {
        thresholds[ch * steps + i] = t
        deltas[ch * steps + i] = d
      }
    }
    self.channels = c
    self.steps = steps
    self.base = base
    self.thresholds = thresholds
    self.deltas = deltas
    self.maxCode = layer.maxOutputCode
    self.valueBits = valueBits
  }
}
