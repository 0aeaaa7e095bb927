import WrapNetEngine

/// What a processing element's accumulator register does with each cycle's sum.
///
/// | mode       | register              | value the PE outputs                                               |
/// |------------|-----------------------|--------------------------------------------------------------------|
/// | `wrap`     | b bits                | wrap_b(exact sum): two's-complement adds, overflow ignored         |
/// | `saturate` | b bits                | acc = sat_b(acc + tree) once per cycle (per product when P = 1)    |
/// | `exact`    | 32 bits               | the exact sum (the 32-bit baseline)                                |
/// | `clamp`    | the width fan-in needs| sat_b(exact sum): a wide register and one clamp at the output      |
public enum HardwareAccumulatorMode: String, Sendable, CaseIterable, CustomStringConvertible {
  case wrap, saturate, exact, clamp

  /// The mode name as the command line spells it.
  public var description: String { rawValue }
}

/// How a PE receives its weight codes: the bit pattern of one weight on the `w` port.
public enum HardwareWeightKind: Sendable, Hashable, CustomStringConvertible {
  /// One bit per weight: 1 means +1, 0 means -1.
  case binary
  /// Two bits, two's complement: 01 = +1, 11 = -1, 00 = 0 (10 never occurs).
  case ternary
  /// k bits, two's complement, values in [-(2^(k-1) - 1), 2^(k-1) - 1], k in 2...8.
  case symmetric(bits: Int)

  /// The engine's code kind with the same values.
  public init(_ kind: PackedWeights.CodeKind) {
    switch kind {
    case .binary: self = .binary
    case .ternary: self = .ternary
    case .symmetric(let bits): self = .symmetric(bits: bits)
    }
  }

  /// Parses "binary", "ternary" or "int<k>" (k in 2...8).
  public init?(name: String) {
    switch name {
    case "binary": self = .binary
    case "ternary": self = .ternary
    default:
      guard name.hasPrefix("int"), let k = Int(name.dropFirst(3)), (2...8).contains(k) else { return nil }
      self = .symmetric(bits: k)
    }
  }

  /// Bits of one weight on the `w` port.
  public var portBits: Int {
    switch self {
    case .binary: return 1
    case .ternary: return 2
    case .symmetric(let bits): return bits
    }
  }

  /// Largest |weight|.
  public var maxMagnitude: Int {
    switch self {
    case .binary, .ternary: return 1
    case .symmetric(let bits): return (1 << (bits - 1)) - 1
    }
  }

  /// The port pattern of weight `code` (low `portBits` bits). Precondition: `code` is a valid weight of this kind.
  public func pattern(_ code: Int8) -> UInt64 {
    switch self {
    case .binary:
      precondition(code == 1 || code == -1, "binary weight must be ±1, got \(code)")
      return code == 1 ? 1 : 0
    default:
      precondition(Int(code).magnitude <= maxMagnitude, "\(self) weight out of range: \(code)")
      return UInt64(bitPattern: Int64(code)) & ((1 << UInt64(portBits)) - 1)
    }
  }

  /// "binary", "ternary" or "int<k>".
  public var description: String {
    switch self {
    case .binary: return "binary"
    case .ternary: return "ternary"
    case .symmetric(let bits): return "int\(bits)"
    }
  }
}

/// Why a hardware request was refused: what was asked, what is supported, what to do.
public struct HardwareError: Error, CustomStringConvertible, Sendable, Equatable {
  /// The message.
  public var description: String
  /// An error with `message`.
  public init(_ message: String) { description = message }
}

/// Bits of a two's-complement number that holds every integer in [-m, m] (m >= 0): 1 + bitLength(m).
@inlinable
public func signedBits(magnitude m: Int) -> Int {
  precondition(m >= 0, "magnitude must be >= 0")
  return 1 + (Int.bitWidth - m.leadingZeroBitCount)
}

/// Bits of an unsigned number that holds every integer in [0, n] (n >= 0): bitLength(n), at least 1 (a Verilog
/// register or index needs one bit even when its only value is 0).
@inlinable
public func unsignedBits(_ n: Int) -> Int {
  precondition(n >= 0, "value must be >= 0")
  return max(1, Int.bitWidth - n.leadingZeroBitCount)
}

/// One processing element: P products per cycle of weight codes and unsigned a-bit activation codes, an adder tree
/// and an accumulator register.
///
///     tree(t) = Σ_{i<P} w[i] · x[i]          (the P products of cycle t)
///     wrap:     acc ← wrap_b(acc + tree)     saturate: acc ← sat_b(acc + tree)
///     exact:    acc ← acc + tree  (32 bits)  clamp:    acc ← acc + tree (wide),  output sat_b(acc)
///
/// Widths (bits of a two's-complement value): a product needs `productBits`; tree level l (l = 1...⌈log2 P⌉) needs
/// `productBits + l`; under `wrap` every level is cut to min(that, b), which is exact mod 2^b because wrap_b is a
/// ring homomorphism. Under the other modes the tree is exact at every level.
public struct PEConfig: Sendable, Hashable {
  /// Weight codes.
  public var weights: HardwareWeightKind
  /// Activation code bits a (codes 0 ... 2^a - 1), 1...8.
  public var activationBits: Int
  /// Accumulator width b (exact: 32).
  public var accumulatorWidth: AccumulatorWidth
  /// Register semantics.
  public var mode: HardwareAccumulatorMode
  /// Products per cycle P, 1...1024.
  public var parallel: Int
  /// Largest dot-product length the clamp register must hold without overflow (used by `clamp` only).
  public var fanIn: Int

  /// A validated configuration; throws `HardwareError` naming the bad field. `exact` forces b = 32.
  public init(
    weights: HardwareWeightKind, activationBits: Int, accumulatorWidth: AccumulatorWidth, mode: HardwareAccumulatorMode,
    parallel: Int, fanIn: Int = 1024
  ) throws {
    if case .symmetric(let k) = weights, !(2...8).contains(k) {
      throw HardwareError("weight codes int\(k) are not supported; use binary, ternary or int2 ... int8")
    }
    guard (1...8).contains(activationBits) else {
      throw HardwareError("activation bits must be in 1...8, got \(activationBits)")
    }
    guard (1...1024).contains(parallel) else {
      throw HardwareError("products per cycle (--parallel) must be in 1...1024, got \(parallel)")
    }
    guard (1...(1 << 24)).contains(fanIn) else {
      throw HardwareError("fan-in must be in 1...\(1 << 24), got \(fanIn)")
    }
    self.weights = weights
    self.activationBits = activationBits
    self.accumulatorWidth = mode == .exact ? .wide : accumulatorWidth
    self.mode = mode
    self.parallel = parallel
    self.fanIn = fanIn
    if mode == .clamp && registerBits > 32 {
      throw HardwareError("a clamp register for fan-in \(fanIn) needs \(registerBits) bits, more than 32; lower --fan-in")
    }
  }

  /// Accumulator width b in bits (`accumulatorWidth.bits`).
  public var accumulatorBits: Int { accumulatorWidth.bits }

  /// Largest |product|: max|w| · (2^a − 1).
  public var maxProduct: Int { weights.maxMagnitude * ((1 << activationBits) - 1) }
  /// Bits of one exact product.
  public var productBits: Int { signedBits(magnitude: maxProduct) }
  /// Levels of the adder tree, ⌈log2 P⌉.
  public var treeLevels: Int { parallel <= 1 ? 0 : Int.bitWidth - (parallel - 1).leadingZeroBitCount }
  /// Bits of an exact sum of `count` products.
  public func exactBits(products count: Int) -> Int { signedBits(magnitude: maxProduct * count) }
  /// Whether the tree is cut to b bits (only `wrap` may).
  public var truncatesTree: Bool { mode == .wrap }
  /// Bits of the accumulator register: b (wrap, saturate), 32 (exact), what `fanIn` products need (clamp).
  public var registerBits: Int {
    switch mode {
    case .wrap, .saturate: return accumulatorBits
    case .exact: return 32
    case .clamp: return max(accumulatorBits, exactBits(products: fanIn))
    }
  }
  /// Bits of the `acc` output port: b, or 32 for exact.
  public var outputBits: Int { mode == .exact ? 32 : accumulatorBits }

  /// The module name, e.g. `pe_ternary_a2_b8_wrap_p16` (clamp adds the fan-in: `..._clamp_p16_k1024`).
  public var moduleName: String {
    let base = "pe_\(weights)_a\(activationBits)_b\(accumulatorBits)_\(mode)_p\(parallel)"
    return mode == .clamp ? base + "_k\(fanIn)" : base
  }

  /// The value the PE outputs after accumulating `terms` (products in stream order) `parallel` per cycle.
  ///
  /// This is the software oracle of the generated Verilog: wrap → wrap_b(Σ), exact → Σ, clamp → sat_b(Σ),
  /// saturate → acc = sat_b(acc + Σ of the cycle's products) per cycle from 0 (with P = 1: after every product, the
  /// engine's `saturatingSum`).
  public func accumulate<C: Collection>(_ terms: C) -> Int64 where C.Element == Int64 {
    switch mode {
    case .wrap: return terms.reduce(0, &+).wrapped(toBits: accumulatorBits)
    case .exact: return terms.reduce(0, +)
    case .clamp: return terms.reduce(0, +).saturated(toBits: accumulatorBits)
    case .saturate:
      var acc: Int64 = 0
      var cycle: Int64 = 0
      var inCycle = 0
      for t in terms {
        cycle += t
        inCycle += 1
        if inCycle == parallel {
          acc = (acc + cycle).saturated(toBits: accumulatorBits)
          (cycle, inCycle) = (0, 0)
        }
      }
      if inCycle > 0 { acc = (acc + cycle).saturated(toBits: accumulatorBits) }
      return acc
    }
  }
}
