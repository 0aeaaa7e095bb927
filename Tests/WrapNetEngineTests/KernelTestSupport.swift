import Testing
import WrapNetEngine

/// Records the first element where `got` differs from `expected` (C [n, m]), prefixed by `what`.
func recordFirstMismatch(_ got: [Int32], _ expected: [Int32], m: Int, _ what: String) {
  if let bad = expected.indices.first(where: { got[$0] != expected[$0] }) {
    Issue.record(
      Comment(
        rawValue:
          "\(what): first mismatch at C[n: \(bad / m), m: \(bad % m)]: got \(got[bad]), expected \(expected[bad])"))
  }
}

/// `count` tables of `size` codes 0...levels of the trainer's form: around a random centre on the circle the
/// code falls with the circular distance (a triangle wave, as the cyclic activation), from a random top, so
/// each level's codes form one arc; some levels reach every value, some none.
func arcTable(count: Int, size: Int, levels: Int, rng: inout SplitMix64) -> [UInt8] {
  var table = [UInt8]()
  for _ in 0..<count {
    let centre = Int(rng.next() % UInt64(size))
    let top = Int(rng.next() % UInt64(2 * levels + 2)) - levels / 2
    let step = 1 + Int(rng.next() % UInt64(max(1, size / 8)))
    let descending = rng.next() & 1 == 0
    for u in 0..<size {
      let d = min(abs(u - centre), size - abs(u - centre))
      let code = descending ? top - d / step : top - (size / 2 - d) / step
      table.append(UInt8(min(max(code, 0), levels)))
    }
  }
  return table
}
