/// Text for Verilog's `$readmemh`: one word per line, hex digits, most significant first.
struct HexFile {
  private(set) var text = ""
  /// Bits of every word.
  let bits: Int
  private var digits: [UInt8]

  init(bits: Int) {
    precondition(bits >= 1, "HexFile: word width must be at least 1 bit")
    self.bits = bits
    self.digits = [UInt8](repeating: 0, count: (bits + 3) / 4)
    text.reserveCapacity(1 << 16)
  }

  /// Appends one word made of `fields` packed from bit 0 upwards: field i occupies `width` bits (two's complement,
  /// truncated) above the fields before it. The widths must add up to at most `bits`.
  mutating func append(fields: [Int64], width: Int) {
    precondition(fields.count * width <= bits, "HexFile: \(fields.count) fields of \(width) bits exceed \(bits) bits")
    for i in digits.indices { digits[i] = 0 }
    for (f, value) in fields.enumerated() {
      let raw = UInt64(bitPattern: value)
      for bit in 0..<width where (raw >> UInt64(min(bit, 63))) & 1 == 1 {
        let at = f * width + bit
        digits[at / 4] |= 1 << UInt8(at % 4)
      }
    }
    appendDigits()
  }

  /// Appends one word holding `value` (two's complement, truncated to `bits`).
  mutating func append(_ value: Int64) { append(fields: [value], width: bits) }

  private mutating func appendDigits() {
    let hex: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
    var s = ""
    s.reserveCapacity(digits.count + 1)
    for d in digits.reversed() { s.append(hex[Int(d)]) }
    s.append("\n")
    text += s
  }
}
