import CWrapNetKernels

/// Binary or ternary weights packed for the nibble kernel: activation codes `0...maxCode` two per byte, summed
/// with XOR masks in 8-bit lanes (`wrapGEMM(nibbleWeights:...)`). Built once per layer from `PackedWeights`.
///
/// Why: with codes of at most 3 bits, a byte holds two codes and one 256-bit add sums 64 products instead of
/// 32. For w = ±1, `x ^ 0 = x` and `x ^ maxCode = maxCode - x`, so Σ w·x = Σ (x ^ mask) − maxCode · #(w = −1): the
/// correction is one constant per output channel.
///
/// Layout (`masks`), with `groups = ceil(k / 16)` (a group is 16 consecutive codes, 8 packed bytes):
///
///     panel p = row / 8, v = (row % 8) / 4, q = row % 4, group g = column / 16, s = (column % 16) / 2
///     masks[(p * groups + g) * 64 + v * 32 + q * 8 + s]  low nibble: column 2s of the group, high: 2s + 1
///                                                          = maxCode where W[row, column] = −1, else 0
///
/// Rows `m ..< 8 * ceil(m / 8)` and columns `k ..< 16 * groups` are 0. `correction[row]` = maxCode · #(W[row, :] =
/// −1), 0 for padding rows (count `8 * ceil(m / 8)`). Ternary weights (w = 0 must contribute 0 whatever x is) use
/// 128-byte blocks: a keep mask (0xF nibble where w ≠ 0) at `(p * groups + g) * 128 + v * 32 + q * 8 + s`, the
/// XOR mask 64 bytes later, and each code adds `(x & keep) ^ mask`, which is x, 0 or maxCode − x.
public struct NibbleWeights: Sendable, Equatable {
  /// Largest activation codes the packing supports: 1, 3 or 7 (1-, 2- and 3-bit codes). A nibble field adds at
  /// most `maxCode` per step, so it must be split every `15 / maxCode` steps (15, 5 or 2).
  public static let supportedMaxCodes = [1, 3, 7]

  /// `.binary` or `.ternary`.
  public let kind: PackedWeights.CodeKind
  /// Rows of W (output channels) and fan-in.
  public let m: Int
  public let k: Int
  /// Groups of 16 codes per row: ceil(k / 16); a packed activation row has `8 * groups` bytes.
  public let groups: Int
  /// Largest activation code the kernel accepts (1, 3 or 7).
  public let maxCode: Int
  /// XOR masks (and, for ternary weights, keep masks), layout above.
  public let masks: [UInt8]
  /// Per-channel correction, `8 * ceil(m / 8)` values.
  public let correction: [Int32]

  /// Bytes of one packed activation row: `8 * groups`.
  public var rowBytes: Int { 8 * groups }

  /// The smallest supported `maxCode` covering codes up to `largestCode`, or nil when codes are too large (> 7).
  public static func maxCode(covering largestCode: Int) -> Int? {
    supportedMaxCodes.first { $0 >= largestCode }
  }

  /// Packs binary or ternary `weights` for activation codes `0...maxCode`.
  ///
  /// - Precondition: `weights.kind` is `.binary` or `.ternary`, `maxCode` in `supportedMaxCodes`.
  public init(_ weights: PackedWeights, maxCode: Int) {
    precondition(
      weights.kind == .binary || weights.kind == .ternary,
      "NibbleWeights: only binary and ternary weights pack to nibble masks, got \(weights.kind)")
    precondition(
      Self.supportedMaxCodes.contains(maxCode), "NibbleWeights: maxCode must be 1, 3 or 7, got \(maxCode)")
    let (m, k) = (weights.m, weights.k)
    let ternary = weights.kind == .ternary
    let blockBytes = ternary ? 128 : 64
    let groups = (k + 15) / 16
    let panels = (m + 7) / 8
    var masks = [UInt8](repeating: 0, count: panels * groups * blockBytes)
    var correction = [Int32](repeating: 0, count: panels * 8)
    let codes = weights.unpacked()
    for row in 0..<m {
      for column in 0..<k where codes[row * k + column] != 0 {
        let (p, v, q) = (row / 8, (row % 8) / 4, row % 4)
        let index = (p * groups + column / 16) * blockBytes + v * 32 + q * 8 + (column % 16) / 2
        let shift = 4 * (column & 1)
        // Binary: one XOR mask. Ternary: a keep mask (every nonzero weight), then the XOR masks 64 bytes later.
        if ternary { masks[index] |= UInt8(0x0F << shift) }
        if codes[row * k + column] < 0 {
          masks[index + (ternary ? 64 : 0)] |= UInt8(maxCode << shift)
          correction[row] += Int32(maxCode)
        }
      }
    }
    self.kind = weights.kind
    self.m = m
    self.k = k
    self.groups = groups
    self.maxCode = maxCode
    self.masks = masks
    self.correction = correction
  }

  /// Packs `count` codes (each <= 15) two per byte into `destination`: byte j = codes[2j] | codes[2j + 1] << 4,
  /// the last high nibble 0 when `count` is odd; writes `(count + 1) / 2` bytes.
  public static func packCodes(
    _ codes: UnsafePointer<UInt8>, count: Int, into destination: UnsafeMutablePointer<UInt8>
  ) {
    #if arch(x86_64)
      if KernelPath.isAVX2Available {
        wrapnet_pack_nibbles_avx2(codes, count, destination)
        return
      }
    #endif
    var j = 0
    while 2 &* j &+ 1 < count {
      destination[j] = codes[2 &* j] | codes[2 &* j &+ 1] &<< 4
      j &+= 1
    }
    if 2 &* j < count { destination[j] = codes[2 &* j] }
  }

  /// Packs rows `X [n, k]` (UInt8 codes <= 15) into rows of `rowBytes` bytes, zero beyond the codes: the kernel's
  /// activation form.
  public func packActivations(_ x: [UInt8], n: Int) -> [UInt8] {
    precondition(
      x.count == n * k, "NibbleWeights: activations have \(x.count) codes but X [n: \(n), k: \(k)] needs \(n * k)")
    var out = [UInt8](repeating: 0, count: n * rowBytes)
    x.withUnsafeBufferPointer { src in
      out.withUnsafeMutableBufferPointer { dst in
        for i in 0..<n where k > 0 {
          Self.packCodes(src.baseAddress! + i * k, count: k, into: dst.baseAddress! + i * rowBytes)
        }
      }
    }
    return out
  }
}

/// `wrapGEMM` for binary or ternary weights on nibble-packed activation codes, 8-bit lanes, AVX2 only:
///
///     output[i, r] = wrap_b( Σ_t W[r, t] · X[i, t] )
///
/// `activations` holds `n` rows of `weights.rowBytes` packed bytes at stride `activationRowStride` (as
/// `NibbleWeights.packActivations` writes them): every code at most `weights.maxCode`, every nibble past column
/// `k` zero. Gives the same integers as every other path (the tests check it against the reference). `output`
/// is `[n, m]`.
///
/// - Precondition: `KernelPath.isAVX2Available`, `bits` in 1...8, the buffer sizes above.
public func wrapGEMM(
  nibbleWeights weights: NibbleWeights, activations: UnsafeBufferPointer<UInt8>, n: Int, activationRowStride: Int,
  bits: Int, output: UnsafeMutableBufferPointer<Int32>
) {
  precondition(
    activationRowStride >= weights.rowBytes,
    "wrapGEMM(nibbleWeights:): row stride \(activationRowStride) is below the packed row of \(weights.rowBytes) bytes")
  let needed = n == 0 ? 0 : (n - 1) * activationRowStride + weights.rowBytes
  precondition(
    activations.count >= needed,
    "wrapGEMM(nibbleWeights:): activations has \(activations.count) bytes but X [n: \(n), k: \(weights.k)] packed at stride \(activationRowStride) needs \(needed)"
  )
  withPlainRowOffsets(n: n, stride: activationRowStride, groups: weights.groups, groupBytes: 8) { rows, groups in
    wrapGEMM(
      nibbleWeights: weights, base: activations.baseAddress, rowOffsets: rows, groupOffsets: groups, bits: bits,
      output: output)
  }
}

/// Runs `body` with the offsets of `n` plain rows `stride` bytes apart and of `groups` groups of `groupBytes`
/// bytes in each: the contiguous form of the binary/ternary kernels' row and group offsets.
func withPlainRowOffsets(
  n: Int, stride: Int, groups: Int, groupBytes: Int,
  _ body: (UnsafeBufferPointer<Int>, UnsafeBufferPointer<UInt32>) -> Void
) {
  let rowOffsets = (0..<n).map { $0 * stride }
  let groupOffsets = (0..<groups).map { UInt32($0 * groupBytes) }
  rowOffsets.withUnsafeBufferPointer { rows in
    groupOffsets.withUnsafeBufferPointer { body(rows, $0) }
  }
}

/// The general form of `wrapGEMM(nibbleWeights:...)`: the 16 codes X[i, 16g ..< 16g + 16] are the 8 packed bytes
/// at `base + rowOffsets[i] + groupOffsets[g]`. With rows at output pixels and groups at (kernel tap, 16
/// channels) of a zero-bordered NHWC tensor this is a convolution without an im2col copy (the engine's
/// `avx2` path does that when the input channels are a multiple of 16). `n = rowOffsets.count`.
///
/// - Precondition: `KernelPath.isAVX2Available`, `bits` in 1...8, `groupOffsets.count == weights.groups`,
///   `output.count == n * weights.m`; every addressed byte readable, every code at most `weights.maxCode`,
///   every nibble past column `k` zero (not checked: O(n k)).
public func wrapGEMM(
  nibbleWeights weights: NibbleWeights, base: UnsafePointer<UInt8>?, rowOffsets: UnsafeBufferPointer<Int>,
  groupOffsets: UnsafeBufferPointer<UInt32>, bits: Int, output: UnsafeMutableBufferPointer<Int32>
) {
  let n = rowOffsets.count
  guard
    binaryKernelShouldRun(
      "wrapGEMM(nibbleWeights:)", bits: bits, offsets: groupOffsets.count, groups: weights.groups,
      unit: "groups of 16 codes", n: n, m: weights.m, k: weights.k, base: base, output: output)
  else { return }
  #if arch(x86_64)
    weights.masks.withUnsafeBufferPointer { w in
      weights.correction.withUnsafeBufferPointer { corr in
        weights.cKernel(
          w.baseAddress, weights.m, weights.groups, corr.baseAddress, Int32(weights.maxCode), base,
          rowOffsets.baseAddress, groupOffsets.baseAddress, n, output.baseAddress, weights.m, Int32(bits), nil)
      }
    }
  #endif
}

extension NibbleWeights {
  #if arch(x86_64)
    /// The C kernel for `kind`: binary (XOR masks) or ternary (keep and XOR masks).
    var cKernel:
      @convention(c) (
        UnsafePointer<UInt8>?, Int, Int, UnsafePointer<Int32>?, Int32, UnsafePointer<UInt8>?, UnsafePointer<Int>?,
        UnsafePointer<UInt32>?, Int, UnsafeMutablePointer<Int32>?, Int, Int32,
        UnsafePointer<wrapnet_nibble_epilogue>?
      ) -> Void
    {
      kind == .ternary ? wrapnet_gemm_ternary_nibble_acc8_avx2 : wrapnet_gemm_binary_nibble_acc8_avx2
    }
  #endif

  /// The engine's fused form: the kernel writes the next layer's codes `codes` [rows, m] straight from the
  /// wrapped sums through `table` (a `.table` [m, 2^bits] or, with `shortcut`, a `.residualTable` [m, S, 2^bits]
  /// indexed by the saved input's code at `shortcutCodes + shortcutRows[row]`), and the sums themselves into
  /// `sums` [rows, m] only when given (recorded accumulators). Rows and groups as for
  /// `wrapGEMM(nibbleWeights:base:...)`.
  func runFused(
    base: UnsafePointer<UInt8>, rowOffsets: UnsafePointer<Int>, groupOffsets: UnsafePointer<UInt32>, rows: Int,
    bits: Int, sums: UnsafeMutablePointer<Int32>?, table: [UInt8], shortcut: Shortcut?,
    shortcutCodes: UnsafePointer<UInt8>?, shortcutRows: UnsafePointer<Int>?, arcs: NibbleCodeArcs?,
    codes: UnsafeMutablePointer<UInt8>
  ) {
    precondition(KernelPath.isAVX2Available && (1...8).contains(bits) && k > 0)
    #if arch(x86_64)
      masks.withUnsafeBufferPointer { w in
        correction.withUnsafeBufferPointer { corr in
          withFusedEpilogue(
            m: m, bits: bits, table: table, shortcut: shortcut, shortcutCodes: shortcutCodes,
            shortcutRows: shortcutRows, arcs: arcs, codes: codes
          ) { epilogue in
            cKernel(
              w.baseAddress, m, groups, corr.baseAddress, Int32(maxCode), base, rowOffsets, groupOffsets, rows, sums, m,
              Int32(bits), epilogue)
          }
        }
      }
    #endif
  }
}

/// The checks shared by the binary/ternary kernels' general entry points (`name` for the messages): AVX2, 1 ≤
/// `bits` ≤ 8, one offset per group (`unit`), an `[n, m]` output. Returns false when there is nothing to compute
/// (after zeroing the output for k = 0).
func binaryKernelShouldRun(
  _ name: String, bits: Int, offsets: Int, groups: Int, unit: String, n: Int, m: Int, k: Int,
  base: UnsafePointer<UInt8>?, output: UnsafeMutableBufferPointer<Int32>
) -> Bool {
  precondition(KernelPath.isAVX2Available, "\(name): the kernel needs AVX2")
  precondition((1...8).contains(bits), "\(name): accumulator bits must be in 1...8, got \(bits)")
  precondition(offsets == groups, "\(name): \(offsets) group offsets for \(groups) \(unit) (k = \(k))")
  precondition(
    output.count == n * m, "\(name): output has \(output.count) elements but C [n: \(n), m: \(m)] needs \(n * m)")
  if n == 0 || m == 0 { return false }
  if k == 0 {
    output.update(repeating: 0)
    return false
  }
  precondition(base != nil, "\(name): no activation bytes for \(n) rows")
  return true
}

#if arch(x86_64)
  /// Runs `body` with the fused epilogue both binary/ternary kernels take (`wrapnet_nibble_epilogue`) for a layer
  /// of `m` channels: the next codes to `codes` [rows, m] through `table` (a `.table` [m, 2^bits] or, with
  /// `shortcut`, a `.residualTable` [m, S, 2^bits] indexed by the saved input's code at `shortcutCodes +
  /// shortcutRows[row]`), or through its `arcs` when given.
  func withFusedEpilogue(
    m: Int, bits: Int, table: [UInt8], shortcut: Shortcut?, shortcutCodes: UnsafePointer<UInt8>?,
    shortcutRows: UnsafePointer<Int>?, arcs: NibbleCodeArcs?, codes: UnsafeMutablePointer<UInt8>,
    _ body: (UnsafePointer<wrapnet_nibble_epilogue>) -> Void
  ) {
    precondition(table.count == m * (shortcut?.codes ?? 1) << bits, "fused epilogue: table size")
    precondition(shortcut == nil || (shortcutCodes != nil && shortcutRows != nil))
    precondition(
      arcs == nil || arcs!.bytes.count == (m + 7) / 8 * (1 + 2 * arcs!.levels) * 32, "fused epilogue: arcs size")
    table.withUnsafeBufferPointer { t in
      (arcs?.bytes ?? []).withUnsafeBufferPointer { a in
        var epilogue = wrapnet_nibble_epilogue(
          table: t.baseAddress, shortcut_codes: shortcut?.codes ?? 1, shortcut: shortcutCodes,
          shortcut_rows: shortcutRows, shortcut_channels: shortcut?.channels ?? 0,
          pad_before: shortcut?.padBefore ?? 0, codes: codes, ldo: m, arcs: arcs == nil ? nil : a.baseAddress,
          levels: Int32(arcs?.levels ?? 0))
        body(&epilogue)
      }
    }
  }
#endif

/// A fused table epilogue rewritten as arcs, so the nibble kernel computes 32 next codes per vector with byte
/// compares instead of 32 table look-ups (`wrapnet_nibble_epilogue.arcs`).
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
/// In the kernel's terms (raw sum r before the per-channel correction, r8 = (r << (8 − b)) mod 2^8): v is in
/// arc j when `Int8(truncatingIfNeeded: r8 − offset_j) < limit_j`; empty arcs have limit −128 (never true), full
/// ones are counted in `base`. Layout: see `wrapnet_nibble_epilogue` (per 8-channel panel, (1 + 2 · levels)
/// kinds × 2 halves × 16 bytes).
public struct NibbleCodeArcs: Sendable, Equatable {
  /// Output levels (the largest code): 1 ... 7.
  public let levels: Int
  /// The kernel's parameter bytes, layout above.
  public let bytes: [Int8]

  /// Arcs for `table` ([m, S, 2^bits] codes, S = `shortcutCodes`, 1 for a plain table) of a layer whose nibble
  /// kernel subtracts `correction` (`NibbleWeights.correction`), or nil when the table is not a union of nested
  /// arcs per level, when S > 4, codes exceed `levels` or `levels` is outside 1...7.
  public init?(table: [UInt8], channels m: Int, shortcutCodes: Int, bits: Int, levels: Int, correction: [Int32]) {
    let size = 1 << bits
    guard (1...8).contains(bits), (1...7).contains(levels), (1...4).contains(shortcutCodes), m > 0,
      table.count == m * shortcutCodes * size, correction.count >= m, table.allSatisfy({ Int($0) <= levels })
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
            // Table index u = (r − correction + 2^(b−1)) mod 2^b; in arc ⇔ (u − start) mod 2^b < count.
            // Scaled to bytes and biased by 128 for a signed compare.
            let o = (Int(correction[c]) - size / 2 + starts[0]) & (size - 1)
            offset = (o * scale + 128) & 255
            limit = count * scale - 128
          }
          params[2 * j - 1] = Int8(truncatingIfNeeded: offset)
          params[2 * j] = Int8(limit)
        }
        // Check: rebuild every entry as the kernel computes it from a raw sum with that table index.
        for u in 0..<size {
          let r = (u + Int(correction[c]) - size / 2) & (size - 1)
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
