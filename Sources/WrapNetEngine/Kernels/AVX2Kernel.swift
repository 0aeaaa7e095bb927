#if arch(x86_64)
  import CWrapNetKernels

  /// AVX2 path: picks the C micro-kernel (CWrapNetKernels) for the weight kind and lane width.
  ///
  /// | lanes | binary / ternary                 | symmetric k <= 7                 | symmetric 8                |
  /// |-------|----------------------------------|----------------------------------|----------------------------|
  /// | 8     | `ternary_u8_acc8` (sign + add8)  | `s7_u8_acc16` (no 8-bit multiply)| `s8_u8_acc32`              |
  /// | 16    | `s7_u8_acc16` (maddubs + add16)  | `s7_u8_acc16`                    | `s8_u8_acc32`              |
  /// | 32    | `s8_u8_acc32` (widen + madd)     | `s8_u8_acc32`                    | `s8_u8_acc32`              |
  ///
  /// A wider lane than asked for gives the same integers (the sum is reduced mod 2^b at the end). With |w| up to
  /// 127 and x up to 255, maddubs pair sums saturate int16, and the exact alternatives for 16-bit lanes (two
  /// maddubs on split activations, or widen + mullo) measured no faster than the 32-bit kernel. With `vnni` (a
  /// CPU with AVX-512 VNNI) `s8_u8_acc32` runs as `s8_u8_acc32_vnni` (vpdpbusd, 32 products per instruction):
  /// the 32-bit-lane baseline is then the best this CPU has, not a handicapped one.
  enum AVX2Kernel {
    typealias CKernel =
      @convention(c) (
        UnsafePointer<Int8>?, Int, Int, UnsafePointer<UInt8>?, Int, Int, UnsafeMutablePointer<Int32>?, Int, Int32
      ) -> Void

    /// The C kernel that computes `lanes`-bit (or wider) sums for `kind`.
    static func kernel(kind: PackedWeights.CodeKind, lanes: Int, vnni: Bool) -> CKernel {
      // maddubs is exact while |w| <= 64 (pair sums <= 2 * 255 * 64 < 2^15).
      if lanes == 32 || kind.maxMagnitude > 64 {
        return vnni ? wrapnet_gemm_s8_u8_acc32_4x2_vnni : wrapnet_gemm_s8_u8_acc32_4x2_avx2
      }
      if lanes == 8 && kind.maxMagnitude <= 1 { return wrapnet_gemm_ternary_u8_acc8_4x2_avx2 }
      return wrapnet_gemm_s7_u8_acc16_4x2_avx2
    }

    static func gemm(
      weights: PackedWeights, x: UnsafePointer<UInt8>, ldx: Int, n: Int, bits: Int, lanes: Int, vnni: Bool,
      output: UnsafeMutablePointer<Int32>
    ) {
      let run = kernel(kind: weights.kind, lanes: lanes, vnni: vnni)
      weights.bytes.withUnsafeBufferPointer { w in
        run(w.baseAddress, weights.m, weights.paddedK, x, n, ldx, output, weights.m, Int32(bits))
      }
    }
  }
#endif
