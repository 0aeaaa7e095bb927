import Foundation
import Testing
import WrapNetEngine

@Suite struct AccumulatorWidthTests {
  @Test func registerRange() {
    let w = AccumulatorWidth(bits: 8)
    #expect(w.min == -128 && w.max == 127 && w.modulus == 256)
    #expect(w.range == -128...127)
    #expect(w.wrap(128) == -128 && w.saturate(1000) == 127)
    #expect(w.contains(127) && !w.contains(128) && w.contains(-128) && !w.contains(-129))
    #expect(w.description == "8-bit")
    #expect(AccumulatorWidth.wide.max == Int64(Int32.max) && AccumulatorWidth.wide.min == Int64(Int32.min))
    #expect(AccumulatorWidth(bits: 2).range == -2...1)
    #expect(AccumulatorWidth(bits: 7) < AccumulatorWidth(bits: 8))
  }

  /// Both edges of `supported` pass, the widths just outside fail, and the message names field, range and value.
  @Test func validationEdges() throws {
    #expect(AccumulatorWidth.supported == 2...32)
    #expect(try AccumulatorWidth(validating: 2, field: "--acc-bits").bits == 2)
    #expect(try AccumulatorWidth(validating: 32, field: "--acc-bits").bits == 32)
    for bad in [Int.min, -5, 0, 1, 33, 64, Int.max] {
      #expect(throws: AccumulatorWidthError(field: "--acc-bits", found: "\(bad)")) {
        try AccumulatorWidth(validating: bad, field: "--acc-bits")
      }
    }
    let error = AccumulatorWidthError(field: "--acc-bits", found: "33")
    #expect(error.description == "--acc-bits must be in 2...32, got 33")
    #expect(try AccumulatorWidth(parsing: "12", field: "--acc-bits").bits == 12)
    #expect(throws: AccumulatorWidthError(field: "--acc-bits", found: "'eight'")) {
      try AccumulatorWidth(parsing: "eight", field: "--acc-bits")
    }
  }

  /// Encoded as the plain integer (the files' `accumulator_bits` field); decoding checks the range and names the key.
  @Test func codableIsAPlainInteger() throws {
    struct Holder: Codable { var accumulator_bits: AccumulatorWidth }
    let data = try JSONEncoder().encode(Holder(accumulator_bits: AccumulatorWidth(bits: 12)))
    #expect(String(decoding: data, as: UTF8.self) == #"{"accumulator_bits":12}"#)
    #expect(try JSONDecoder().decode(Holder.self, from: Data(#"{"accumulator_bits":2}"#.utf8)).accumulator_bits.bits == 2)
    do {
      _ = try JSONDecoder().decode(Holder.self, from: Data(#"{"accumulator_bits":40}"#.utf8))
      Issue.record("a 40-bit width decoded")
    } catch {
      #expect("\(error)" == "accumulator_bits must be in 2...32, got 40")
    }
  }

  @Test func narrowestLanes() {
    let lanes = AccumulatorWidth.supported.map { AccumulatorWidth(bits: $0).narrowestLanes }
    #expect(lanes == Array(repeating: 8, count: 7) + Array(repeating: 16, count: 8) + Array(repeating: 32, count: 16))
    #expect(AccumulatorWidth.laneWidths == [8, 16, 32])
  }
}
