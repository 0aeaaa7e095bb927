import Testing
import WrapNetEngine

// `CodeArcs` converts a table only when every entry rebuilds exactly; the lookup kernel's epilogue tests
// (LookupKernelTests) run the converted arcs against look-ups on the reference sums.
@Suite("Code arcs")
struct CodeArcsTests {
  /// A table whose codes go up and down twice around the circle has no single arc per level: no arcs.
  @Test func rejectsTwoPeaks() {
    let table = (0..<32).map { UInt8(($0 / 4) % 2) }
    #expect(CodeArcs(table: table, channels: 1, shortcutCodes: 1, bits: 5, levels: 1) == nil)
    #expect(CodeArcs(table: [UInt8](repeating: 4, count: 32), channels: 1, shortcutCodes: 1, bits: 5, levels: 3) == nil)
  }

  /// Constant tables (every level full or empty) and a single step convert.
  @Test func acceptsConstantsAndSteps() {
    for value in 0...3 {
      #expect(
        CodeArcs(table: [UInt8](repeating: UInt8(value), count: 16), channels: 1, shortcutCodes: 1, bits: 4, levels: 3)
          != nil)
    }
    let step = (0..<256).map { UInt8($0 < 100 ? 0 : ($0 < 200 ? 2 : 3)) }
    #expect(CodeArcs(table: step, channels: 1, shortcutCodes: 1, bits: 8, levels: 3) != nil)
  }

  /// Tables of the trainer's form convert, for every width b and level count the kernel takes.
  @Test(arguments: [1, 2, 3, 7])
  func trainerTables(levels: Int) {
    var rng = SplitMix64(seed: 0xA2C5 + UInt64(levels))
    for bits in 1...8 {
      let table = arcTable(count: 5, size: 1 << bits, levels: levels, rng: &rng)
      #expect(
        CodeArcs(table: table, channels: 5, shortcutCodes: 1, bits: bits, levels: levels) != nil,
        "b \(bits) levels \(levels)")
    }
  }
}
