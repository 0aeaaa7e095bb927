import Foundation
import Testing
import WrapNetEngine

@Suite("PackedWeights byte layout")
struct KernelLayoutTests {
  /// W[r, t] = a distinct non-zero value per position of a 5 x 35 matrix (int8 codes up to 127).
  private static func distinctCodes(m: Int, k: Int) -> [Int8] {
    (0..<(m * k)).map { Int8(($0 % 127) + 1) * ($0 % 2 == 0 ? 1 : -1) }
  }

  @Test func panelsBlocksAndPadding() {
    let (m, k) = (5, 35)
    let codes = Self.distinctCodes(m: m, k: k)
    let w = PackedWeights(codes: codes, m: m, k: k, kind: .symmetric(bits: 8))
    #expect(w.paddedK == 64)
    // 2 panels x 4 rows x 64 padded codes.
    #expect(w.bytes.count == 2 * 4 * 64)
    // W[0, 0] opens the buffer; W[1, 0] is one 32-byte row further; W[0, 32] opens block 1 (4 x 32 bytes in).
    #expect(w.bytes[0] == codes[0])
    #expect(w.bytes[32] == codes[1 * k])
    #expect(w.bytes[128] == codes[32])
    // W[4, 33]: panel 1 (offset 4 * 64), block 1 (+128), row 0 of the panel, byte 1.
    #expect(PackedWeights.byteOffset(row: 4, column: 33, paddedK: 64) == 256 + 128 + 1)
    #expect(w.bytes[256 + 128 + 1] == codes[4 * k + 33])
    #expect(w.code(row: 4, column: 33) == codes[4 * k + 33])
    // Everything that is not a code is zero: 5 * 35 non-zero codes, the rest padding.
    #expect(w.bytes.filter { $0 != 0 }.count == m * k)
    #expect(w.unpacked() == codes)
  }

  @Test func alignedFanInHasNoPadding() {
    let w = PackedWeights(codes: Self.distinctCodes(m: 4, k: 64), m: 4, k: 64, kind: .symmetric(bits: 8))
    #expect(w.paddedK == 64)
    #expect(w.bytes.count == 4 * 64)
    #expect(!w.bytes.contains(0))
  }

  @Test func codeKinds() {
    #expect(PackedWeights.CodeKind.binary.contains(1) && !PackedWeights.CodeKind.binary.contains(0))
    #expect(PackedWeights.CodeKind.ternary.contains(0) && !PackedWeights.CodeKind.ternary.contains(2))
    #expect(PackedWeights.CodeKind.symmetric(bits: 8).maxMagnitude == 127)
    #expect(!PackedWeights.CodeKind.symmetric(bits: 8).contains(-128))
    #expect(PackedWeights.CodeKind.symmetric(bits: 3).maxMagnitude == 3)
    #expect(PackedWeights.CodeKind.symmetric(bits: 4).description == "int4")
  }

  @Test func avx2AvailabilityIsConsistent() throws {
    #expect(KernelPath.avx2.isAvailable == KernelPath.isAVX2Available)
    #expect(KernelPath.fastest.isAvailable)
    #if os(Linux) && arch(x86_64)
      // Cross-check the C probe against the kernel's own view of the CPU flags.
      let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
      let flags = cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") }.map { $0.split(separator: " ") } ?? []
      #expect(KernelPath.isAVX2Available == flags.contains("avx2"))
    #endif
  }
}

@Suite("wrapGEMM preconditions")
struct KernelPreconditionTests {
  /// A wrong activation count stops the program with a message naming both shapes.
  @Test func activationShapeMismatchNamesBothShapes() async throws {
    let result = try await #require(
      processExitsWith: .failure, observing: [\.standardErrorContent]
    ) {
      let w = PackedWeights(codes: [1, 0, -1, 1, 1, 1], m: 2, k: 3, kind: .ternary)
      _ = wrapGEMM(weights: w, activations: [1, 2, 3, 4], n: 2, bits: 8, lanes: 8, path: .reference)
    }
    // Optimized builds (-O) trap without printing precondition messages, so the text is checked in debug only.
    #if DEBUG
      let message = String(decoding: result.standardErrorContent, as: UTF8.self)
      #expect(message.contains("X [n: 2, k: 3]") && message.contains("W is [m: 2, k: 3]"))
    #else
      _ = result
    #endif
  }

  /// Accumulator bits wider than the lanes are rejected.
  @Test func bitsWiderThanLanesStop() async {
    await #expect(processExitsWith: .failure) {
      let w = PackedWeights(codes: [1, -1], m: 1, k: 2, kind: .binary)
      _ = wrapGEMM(weights: w, activations: [1, 2], n: 1, bits: 12, lanes: 8, path: .reference)
    }
  }
}
