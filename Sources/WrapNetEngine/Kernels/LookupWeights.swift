import CWrapNetKernels

/// Binary or ternary weights as table indices for the lookup kernel (`wrapGEMM(lookupWeights:...)`), AVX2 only:
/// 8-bit lanes, any activation codes. Built once per layer from `PackedWeights`.
///
/// Why: the signs of a binary weight row over 4 codes form a 4-bit index into the 16 signed sums of those codes,
/// and one `vpshufb` picks 32 of them: one shuffle + one byte add per 128 products. The 16-entry tables depend only on the activations, so they are
/// built once per pixel and shared by every output channel and kernel tap (`LookupWeights.buildTables`). Byte
/// sums wrap mod 2^8, which is exactly a b ≤ 8 accumulator. Ternary weights use tables of subset sums S and two
/// indices: Σ w·x = S[plus] − S[minus].
///
/// Layout (`indices`), with `pairs = ceil(k / 8)` (a pair is 8 consecutive codes: groups 2j and 2j + 1 of 4):
///
///     block b = row / 16, q = row % 16, pair j = column / 8, h = (column % 8) / 4, bit i = column % 4
///     binary:  indices[(b * pairs + j) * 32 + 16h + q]       bit i set where W[row, column] = +1
///     ternary: indices[(b * pairs + j) * 64 + 16h + q]       bit i set where W = +1
///              indices[(b * pairs + j) * 64 + 32 + 16h + q]  bit i set where W = −1
public struct LookupWeights: Sendable, Equatable {
  /// `.binary` or `.ternary`.
  public let kind: PackedWeights.CodeKind
  /// Rows of W (output channels) and fan-in.
  public let m: Int
  public let k: Int
  /// Pairs of 4-code groups per row: ceil(k / 8); a row's tables take `32 * pairs` bytes.
  public let pairs: Int
  /// Table indices, layout above.
  public let indices: [UInt8]

  /// The largest input code of the layers the engine runs on this kernel (3-bit codes, the low-bit networks it
  /// is built for); the kernel itself sums any codes, and layers on wider codes run the byte GEMM.
  public static let largestInputCode = 7

  /// Bytes of one row's tables: `32 * pairs`.
  public var rowBytes: Int { 32 * pairs }

  /// Indexes binary or ternary `weights`.
  ///
  /// - Precondition: `weights.kind` is `.binary` or `.ternary`.
  public init(_ weights: PackedWeights) {
    precondition(
      weights.kind == .binary || weights.kind == .ternary,
      "LookupWeights: only binary and ternary weights index lookup tables, got \(weights.kind)")
    let (m, k) = (weights.m, weights.k)
    let ternary = weights.kind == .ternary
    let blockBytes = ternary ? 64 : 32
    let pairs = (k + 7) / 8
    let blocks = (m + 15) / 16
    var indices = [UInt8](repeating: 0, count: blocks * pairs * blockBytes)
    let codes = weights.unpacked()
    for row in 0..<m {
      for column in 0..<k where codes[row * k + column] != 0 {
        let index = (row / 16 * pairs + column / 8) * blockBytes + (column % 8) / 4 * 16 + row % 16
        let bit = UInt8(1) << (column % 4)
        if codes[row * k + column] > 0 {
          indices[index] |= bit
        } else if ternary {
          indices[index + 32] |= bit
        }
      }
    }
    self.kind = weights.kind
    self.m = m
    self.k = k
    self.pairs = pairs
    self.indices = indices
  }

  /// Whether the kernel reads subset-sum tables (ternary weights) rather than signed ones (binary).
  public var subsetTables: Bool { kind == .ternary }

  /// Builds the lookup tables of `count` activation codes into `destination` (`32 * ceil(count / 8)` bytes; codes
  /// past `count` count as 0): pair j's 32 bytes hold, at 16h + pattern, the sum over i < 4 of ±codes[8j + 4h + i]
  /// (+ where bit i of the pattern is set, − otherwise; `subset`: + or nothing), mod 2^8.
  ///
  /// - Precondition: `KernelPath.isAVX2Available`.
  public static func buildTables(
    _ codes: UnsafePointer<UInt8>, count: Int, subset: Bool, into destination: UnsafeMutablePointer<UInt8>
  ) {
    precondition(KernelPath.isAVX2Available, "LookupWeights.buildTables: the lookup kernel needs AVX2")
    #if arch(x86_64)
      wrapnet_lut_tables_avx2(codes, count, destination, subset ? 1 : 0)
    #endif
  }

  /// Tables of rows `X [n, k]` (UInt8 codes), `rowBytes` per row: the kernel's activation form.
  public func tables(_ x: [UInt8], n: Int) -> [UInt8] {
    precondition(
      x.count == n * k, "LookupWeights: activations have \(x.count) codes but X [n: \(n), k: \(k)] needs \(n * k)")
    var out = [UInt8](repeating: 0, count: n * rowBytes)
    x.withUnsafeBufferPointer { src in
      out.withUnsafeMutableBufferPointer { dst in
        for i in 0..<n where k > 0 {
          Self.buildTables(
            src.baseAddress! + i * k, count: k, subset: subsetTables, into: dst.baseAddress! + i * rowBytes)
        }
      }
    }
    return out
  }
}

/// `wrapGEMM` for binary or ternary weights through lookup tables, 8-bit lanes, AVX2 only:
///
///     output[i, r] = wrap_b( Σ_t W[r, t] · X[i, t] )
///
/// `tables` holds the `n` rows' tables (`weights.tables`, `weights.rowBytes` bytes per row). Gives the same
/// integers as every other path (the tests check it against the reference). `output` is `[n, m]`.
///
/// - Precondition: `KernelPath.isAVX2Available`, `bits` in 1...8, `tables.count == n * weights.rowBytes`.
public func wrapGEMM(
  lookupWeights weights: LookupWeights, tables: UnsafeBufferPointer<UInt8>, n: Int, bits: Int,
  output: UnsafeMutableBufferPointer<Int32>
) {
  precondition(
    tables.count == n * weights.rowBytes,
    "wrapGEMM(lookupWeights:): tables have \(tables.count) bytes but \(n) rows of \(weights.pairs) pairs need \(n * weights.rowBytes)"
  )
  withPlainRowOffsets(n: n, stride: weights.rowBytes, groups: weights.pairs, groupBytes: 32) { rows, pairs in
    wrapGEMM(
      lookupWeights: weights, base: tables.baseAddress, rowOffsets: rows, pairOffsets: pairs, bits: bits,
      output: output)
  }
}

/// The general form of `wrapGEMM(lookupWeights:tables:...)`: the 32 table bytes of codes X[i, 8j ..< 8j + 8] are
/// at `base + rowOffsets[i] + pairOffsets[j]`. With rows at output pixels and pairs at (kernel tap, 8 channels)
/// of a zero-bordered NHWC tensor of tables this is a convolution without an im2col copy (code 0 has an all-zero
/// table). `n = rowOffsets.count`.
///
/// - Precondition: `KernelPath.isAVX2Available`, `bits` in 1...8, `pairOffsets.count == weights.pairs`,
///   `output.count == n * weights.m`; every addressed byte readable (not checked: O(n k)).
public func wrapGEMM(
  lookupWeights weights: LookupWeights, base: UnsafePointer<UInt8>?, rowOffsets: UnsafeBufferPointer<Int>,
  pairOffsets: UnsafeBufferPointer<UInt32>, bits: Int, output: UnsafeMutableBufferPointer<Int32>
) {
  let n = rowOffsets.count
  guard
    lookupKernelShouldRun(
      "wrapGEMM(lookupWeights:)", bits: bits, offsets: pairOffsets.count, groups: weights.pairs,
      unit: "pairs of 4-code groups", n: n, m: weights.m, k: weights.k, base: base, output: output)
  else { return }
  #if arch(x86_64)
    weights.indices.withUnsafeBufferPointer { w in
      weights.cKernel(
        w.baseAddress, weights.m, weights.pairs, base, rowOffsets.baseAddress, pairOffsets.baseAddress, n,
        output.baseAddress, weights.m, Int32(bits), nil)
    }
  #endif
}

extension LookupWeights {
  #if arch(x86_64)
    /// The C kernel for `kind`.
    var cKernel:
      @convention(c) (
        UnsafePointer<UInt8>?, Int, Int, UnsafePointer<UInt8>?, UnsafePointer<Int>?, UnsafePointer<UInt32>?, Int,
        UnsafeMutablePointer<Int32>?, Int, Int32, UnsafePointer<wrapnet_code_epilogue>?
      ) -> Void
    {
      kind == .ternary ? wrapnet_gemm_ternary_lut_acc8_avx2 : wrapnet_gemm_binary_lut_acc8_avx2
    }
  #endif

  /// The engine's fused form: the kernel writes the next layer's codes `codes` [rows, m] straight from the
  /// wrapped sums through `table` (a `.table` [m, 2^bits] or, with `shortcut`, a `.residualTable` [m, S, 2^bits]
  /// indexed by the saved input's code at `shortcutCodes + shortcutRows[row]`) or through its `arcs`, and the
  /// sums themselves into `sums` [rows, m] only when given (recorded accumulators). Rows and pairs as for
  /// `wrapGEMM(lookupWeights:base:...)`.
  func runFused(
    base: UnsafePointer<UInt8>, rowOffsets: UnsafePointer<Int>, pairOffsets: UnsafePointer<UInt32>, rows: Int,
    bits: Int, sums: UnsafeMutablePointer<Int32>?, table: [UInt8], shortcut: Shortcut?,
    shortcutCodes: UnsafePointer<UInt8>?, shortcutRows: UnsafePointer<Int>?, arcs: CodeArcs?,
    codes: UnsafeMutablePointer<UInt8>
  ) {
    precondition(KernelPath.isAVX2Available && (1...8).contains(bits) && k > 0)
    #if arch(x86_64)
      indices.withUnsafeBufferPointer { w in
        withCodeEpilogue(
          m: m, bits: bits, table: table, shortcut: shortcut, shortcutCodes: shortcutCodes,
          shortcutRows: shortcutRows, arcs: arcs, codes: codes
        ) { epilogue in
          cKernel(w.baseAddress, m, pairs, base, rowOffsets, pairOffsets, rows, sums, m, Int32(bits), epilogue)
        }
      }
    #endif
  }
}

/// Runs `body` with the offsets of `n` plain rows `stride` bytes apart and of `groups` groups of `groupBytes`
/// bytes in each: the contiguous form of the lookup kernel's row and pair offsets.
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

/// The checks of the lookup kernel's general entry point (`name` for the messages): AVX2, 1 ≤
/// `bits` ≤ 8, one offset per group (`unit`), an `[n, m]` output. Returns false when there is nothing to compute
/// (after zeroing the output for k = 0).
func lookupKernelShouldRun(
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
