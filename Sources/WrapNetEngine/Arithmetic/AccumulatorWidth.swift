/// A validated accumulator width b: the one carrier of a width through the trainer's configuration and
/// checkpoints, the packed model loader, the converter, the command line and the hardware generator.
///
/// A b-bit two's-complement register holds `min = -2^(b-1)` ... `max = 2^(b-1) - 1` (`modulus = 2^b` values);
/// `wrap(z)` is `wrap_b(z)` and `saturate(z)` is `clamp(z, min, max)`.
///
/// The range every use accepts is `supported` (2 ... 32). Uses that need less say so where they check it: 8- and
/// 16-bit engine lanes hold wrap-around widths up to their lane width (`narrowestLanes`), lookup tables cover widths
/// up to `PackedModelFormat.maxTableBits`. A width from a user or a file enters through `init(validating:field:)`,
/// whose error names the field, the range and the value found; `init(bits:)` is for widths the code itself chooses.
/// Encoded as the plain integer b, so files keep an integer field.
public struct AccumulatorWidth: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
  /// Accumulator widths this package supports: 2 ... 32 bits (2 is the narrowest signed register with a nonzero
  /// positive value; 32 is the engine's widest lane and the exact accumulator of first and last layers).
  public static let supported: ClosedRange<Int> = 2...32

  /// The 32-bit accumulator of exact layers (first and last layers, and the `exact` mode).
  public static let wide = AccumulatorWidth(bits: 32)

  /// The width b in bits, within `supported`.
  public let bits: Int

  /// A width the code chooses. Precondition: `bits` in `supported` (user and file input goes through
  /// `init(validating:field:)`).
  public init(bits: Int) {
    precondition(Self.supported.contains(bits), "accumulator width must be in \(Self.supported), got \(bits)")
    self.bits = bits
  }

  /// A width from a user or a file; `field` names where it came from (a flag such as `--acc-bits`, or a file field
  /// such as `accumulator_bits`) and appears in the error for a width outside `supported`.
  public init(validating bits: Int, field: String) throws(AccumulatorWidthError) {
    guard Self.supported.contains(bits) else { throw AccumulatorWidthError(field: field, found: "\(bits)") }
    self.bits = bits
  }

  /// A width from command-line text: a decimal integer in `supported`, or an error naming `field`, the range and
  /// the text found.
  public init(parsing text: String, field: String) throws(AccumulatorWidthError) {
    guard let bits = Int(text) else { throw AccumulatorWidthError(field: field, found: "'\(text)'") }
    try self.init(validating: bits, field: field)
  }

  /// Decodes the plain integer b; a width outside `supported` fails with an error naming the coding key.
  public init(from decoder: any Decoder) throws {
    let bits = try decoder.singleValueContainer().decode(Int.self)
    try self.init(validating: bits, field: decoder.codingPath.last?.stringValue ?? "accumulator width")
  }

  /// Encodes the plain integer b.
  public func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode(bits)
  }

  /// Smallest value the register holds: `-2^(b-1)`.
  public var min: Int64 { -(Int64(1) << (bits - 1)) }
  /// Largest value the register holds: `2^(b-1) - 1`.
  public var max: Int64 { (Int64(1) << (bits - 1)) - 1 }
  /// Number of distinct register values: `2^b`.
  public var modulus: Int64 { Int64(1) << bits }
  /// `min ... max`.
  public var range: ClosedRange<Int64> { min...max }

  /// Whether `z` is representable without wrapping (`min <= z <= max`).
  @inlinable public func contains(_ z: Int64) -> Bool { z >= -(Int64(1) << (bits - 1)) && z < (Int64(1) << (bits - 1)) }

  /// `wrap_b(z)`; see `Int64.wrapped(toBits:)`.
  @inlinable public func wrap(_ z: Int64) -> Int64 { z.wrapped(toBits: bits) }

  /// `clamp(z, min, max)`; see `Int64.saturated(toBits:)`.
  @inlinable public func saturate(_ z: Int64) -> Int64 { z.saturated(toBits: bits) }

  /// The lane widths of the engine's wrap-around kernels: a b-bit accumulator runs in lanes of at least b bits.
  public static let laneWidths = [8, 16, 32]

  /// The narrowest lane width that holds b bits: 8 for b ≤ 8, 16 for b ≤ 16, else 32.
  public var narrowestLanes: Int { bits <= 8 ? 8 : (bits <= 16 ? 16 : 32) }

  /// Orders widths by b.
  public static func < (a: AccumulatorWidth, b: AccumulatorWidth) -> Bool { a.bits < b.bits }

  /// "b-bit", e.g. "8-bit".
  public var description: String { "\(bits)-bit" }
}

/// An accumulator width outside `AccumulatorWidth.supported`, from the flag or file field `field`.
public struct AccumulatorWidthError: Error, Sendable, Equatable, CustomStringConvertible {
  /// The flag or file field the width came from, e.g. `--acc-bits` or `accumulator_bits`.
  public let field: String
  /// The value found, as written in the message (an integer, or quoted text that is not one).
  public let found: String
  /// The error for the value `found` of `field`.
  public init(field: String, found: String) { (self.field, self.found) = (field, found) }
  /// Says what was expected and what was found, e.g. "--acc-bits must be in 2...32, got 40".
  public var description: String { "\(field) must be in \(AccumulatorWidth.supported), got \(found)" }
}
