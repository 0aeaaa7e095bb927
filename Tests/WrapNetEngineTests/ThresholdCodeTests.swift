import CWrapNetKernels
import Testing
import WrapNetEngine

// wrapnet_threshold_codes (exact and clamp layers: a 32-bit sum -> the number of thresholds it passes) against
// its definition, with channel counts around the AVX2 loops' 4- and 8-channel steps and values and thresholds at
// the extremes of their ranges.
@Suite("Threshold codes agree with their definition")
struct ThresholdCodeTests {
  /// `wide`: thresholds anywhere in Int64 (the int64 loop); otherwise within [Int32.min - 1, Int32.max + 1] as
  /// the exporter writes them, ends included (the 8-channel int32 loop).
  @Test("random shapes, extreme values and thresholds", arguments: [1, 2, 3, 4, 5, 7, 8], [true, false])
  func matchesDefinition(levels: Int, wide: Bool) {
    var rng = SplitMix64(seed: UInt64(levels))
    for m in [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 24, 33] {
      let rows = 1 + Int(rng.next() % 9)
      let z: [Int32] = (0..<(rows * m)).map { _ in
        switch rng.next() % 8 {
        case 0: return Int32.min
        case 1: return Int32.max
        default: return Int32(Int64(rng.next() % 401) - 200)
        }
      }
      let t: [Int64] = (0..<(m * levels)).map { _ in
        switch rng.next() % 12 {
        case 0: return wide ? Int64.min : Int64(Int32.min) - 1
        case 1: return wide ? Int64.max : Int64(Int32.max) + 1
        case 2: return Int64(Int32.min)
        case 3: return Int64(Int32.max) + 1
        case 4: return Int64(Int32.max)
        case 5: return Int64(Int32.min) - 1
        case 6: return Int64(Int32.min) + 1
        default: return Int64(rng.next() % 401) - 200
        }
      }
      let down: [UInt8] = (0..<m).map { _ in UInt8(rng.next() & 1) }
      var out = [UInt8](repeating: 0xFF, count: rows * m)
      wrapnet_threshold_codes(z, rows, m, t, levels, down, &out)
      for r in 0..<rows {
        for ch in 0..<m {
          let v = Int64(z[r * m + ch])
          let row = t[(ch * levels)..<((ch + 1) * levels)]
          let expected = row.filter { down[ch] == 1 ? v <= $0 : v >= $0 }.count
          #expect(
            Int(out[r * m + ch]) == expected, "m \(m) levels \(levels) row \(r) channel \(ch): v \(v), t \(Array(row))")
        }
      }
    }
  }
}
