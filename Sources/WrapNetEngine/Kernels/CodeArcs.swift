import CWrapNetKernels

/// A layer's code table rewritten as arcs, so the lookup kernel's code epilogue computes 32 next codes per vector
/// with byte compares instead of 32 table look-ups (`wrapnet_code_epilogue.arcs`).
///
/// Why it is exact: a layer's table maps the wrapped sum v (2^b values on a circle) to a code through the
/// trainer's cyclic activation, batch norm and quantizer (and, in residual layers, the shortcut code s). For
/// each level j the set {v : code(v, s) ≥ j} is then one arc of the circle (the cyclic activation is a triangle
/// wave on it; the rest is monotone), so
///
///     code(v, s) = base[c, s] + #{ j : v ∈ arc[c, s, j] },   base = number of levels every v reaches.
///
/// `init` finds the arcs from the table itself and rebuilds every entry of the table from them exactly as the
/// kernel computes it; any table that is not of this form (or any entry that differs) gives nil, and the engine
/// keeps the look-ups. So the arcs can never change an answer.
///
/// In the kernel's terms (r8 = (v << (8 − b)) mod 2^8, which the kernel gets from its byte sums): v is in arc j
/// when `Int8(truncatingIfNeeded: r8 − offset_j) < limit_j`; empty arcs have limit −128 (never true), full ones
/// are counted in `base`. Layout: see `wrapnet_code_epilogue` (per 8-channel panel, (1 + 2 · levels) kinds × 2
/// halves × 16 bytes).
public struct CodeArcs: Sendable, Equatable {
  /// Output levels (the largest code): 1 ... 7.
  public let levels: Int
  /// The kernel's parameter bytes, layout above.
  public let bytes: [Int8]

  /// Arcs for `table` ([m, S, 2^bits] codes, S = `shortcutCodes`, 1 for a plain table), or nil when the table is
  /// not a union of nested arcs per level, when S > 4, codes exceed `levels` or `levels` is outside 1...7.
  public init?(table: [UInt8], channels m: Int, shortcutCodes: Int, bits: Int, levels: Int) {
    let size = 1 << bits
    guard (1...8).contains(bits), (1...7).contains(levels), (1...4).contains(shortcutCodes), m > 0,
      table.count == m * shortcutCodes * size, table.allSatisfy({ Int($0) <= levels })
    else { return nil }
    let kinds = 1 + 2 * levels
    let panels = (m + 7) / 8
    var bytes = [Int8](repeating: 0, count: panels * kinds * 32)
    let scale = 1 << (8 - bits)
    for c in 0..<m {
      for s in 0..<shortcutCodes {
        let entries = table[((c * shortcutCodes + s) * size)..<((c * shortcutCodes + s + 1) * size)]
        let t = Array(entries)
        // Parameters for shortcut code s: base, then (offset, limit) per level.
        var params = [Int8](repeating: 0, count: kinds)
        for j in 1...levels {
          let inside = t.map { Int($0) >= j }
          let count = inside.filter { $0 }.count
          var (offset, limit) = (0, -128)
          if count == size {
            params[0] += 1
          } else if count > 0 {
            // One arc: exactly one index u where it starts (inside, its predecessor on the circle outside).
            let starts = (0..<size).filter { inside[$0] && !inside[($0 + size - 1) % size] }
            guard starts.count == 1 else { return nil }
            // Table index u = (v + 2^(b−1)) mod 2^b; in arc ⇔ (u − start) mod 2^b < count.
            // Scaled to bytes and biased by 128 for a signed compare.
            let o = (starts[0] - size / 2) & (size - 1)
            offset = (o * scale + 128) & 255
            limit = count * scale - 128
          }
          params[2 * j - 1] = Int8(truncatingIfNeeded: offset)
          params[2 * j] = Int8(limit)
        }
        // Check: rebuild every entry as the kernel computes it from a sum with that table index.
        for u in 0..<size {
          let r = (u - size / 2) & (size - 1)
          let r8 = (r * scale) & 255
          var code = Int(params[0])
          for j in 1...levels where Int(Int8(truncatingIfNeeded: r8 - Int(params[2 * j - 1]))) < Int(params[2 * j]) {
            code += 1
          }
          guard code == Int(t[u]) else { return nil }
        }
        // Store at e = (s & 1) * 8 + c % 8, half s >> 1; code 0's entries also fill the unused shortcut codes.
        let targets = s == 0 ? (0..<4).filter { $0 >= shortcutCodes || $0 == 0 } : [s]
        for target in targets {
          for kind in 0..<kinds {
            bytes[(((c / 8) * kinds + kind) * 2 + target >> 1) * 16 + (target & 1) * 8 + c % 8] = params[kind]
          }
        }
      }
    }
    self.levels = levels
    self.bytes = bytes
  }
}

#if arch(x86_64)
  /// Runs `body` with the lookup kernel's code epilogue (`wrapnet_code_epilogue`) for a layer of `m` channels: the next codes to `codes` [rows, m] through `table` (a `.table` [m, 2^bits] or, with
  /// `shortcut`, a `.residualTable` [m, S, 2^bits] indexed by the saved input's code at `shortcutCodes +
  /// shortcutRows[row]`), or through its `arcs` when given.
  func withCodeEpilogue(
    m: Int, bits: Int, table: [UInt8], shortcut: Shortcut?, shortcutCodes: UnsafePointer<UInt8>?,
    shortcutRows: UnsafePointer<Int>?, arcs: CodeArcs?, codes: UnsafeMutablePointer<UInt8>,
    _ body: (UnsafePointer<wrapnet_code_epilogue>) -> Void
  ) {
    precondition(table.count == m * (shortcut?.codes ?? 1) << bits, "code epilogue: table size")
    precondition(shortcut == nil || (shortcutCodes != nil && shortcutRows != nil))
    precondition(
      arcs == nil || arcs!.bytes.count == (m + 7) / 8 * (1 + 2 * arcs!.levels) * 32, "code epilogue: arcs size")
    table.withUnsafeBufferPointer { t in
      (arcs?.bytes ?? []).withUnsafeBufferPointer { a in
        var epilogue = wrapnet_code_epilogue(
          table: t.baseAddress, shortcut_codes: shortcut?.codes ?? 1, shortcut: shortcutCodes,
          shortcut_rows: shortcutRows, shortcut_channels: shortcut?.channels ?? 0,
          pad_before: shortcut?.padBefore ?? 0, codes: codes, ldo: m, arcs: arcs == nil ? nil : a.baseAddress,
          levels: Int32(arcs?.levels ?? 0))
        body(&epilogue)
      }
    }
  }
#endif
