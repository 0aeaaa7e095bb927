/// MD5 message digest (RFC 1321), used to verify downloaded dataset files.
///
/// MD5 is broken as a cryptographic hash; here it only checks that a file is the exact byte sequence the
/// dataset's publishers list (their checksums are MD5), i.e. it detects truncation and corruption.
///
/// The message is padded with one `0x80` byte, zeros up to 56 mod 64 bytes and the 64-bit little-endian bit
/// length; each 64-byte block runs the four 16-step rounds `a = b + ((a + F(b,c,d) + M[g] + K[i]) <<< s[i])`.
///
/// ```swift
/// var md5 = MD5()
/// md5.update(Array("abc".utf8))
/// md5.finalize().hexString  // "900150983cd24fb0d6963f7d28e17f72"
/// ```
public struct MD5: Sendable {
  /// The chaining state A, B, C, D (initially the RFC's magic constants).
  private var state: (UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476)
  /// Bytes of an incomplete block carried between `update` calls (always fewer than 64).
  private var pending: [UInt8] = []
  /// Total message length in bytes so far.
  private var length: UInt64 = 0

  /// A fresh hasher for an empty message.
  public init() {
    pending.reserveCapacity(64)
  }

  /// The digest of `bytes` in one call.
  public static func digest(_ bytes: [UInt8]) -> Digest {
    var md5 = MD5()
    md5.update(bytes)
    return md5.finalize()
  }

  /// Appends `bytes` to the message. Any split of a message into `update` calls gives the same digest.
  public mutating func update(_ bytes: [UInt8]) {
    bytes.withUnsafeBufferPointer { update($0) }
  }

  /// Appends the bytes of `buffer` to the message.
  public mutating func update(_ buffer: UnsafeBufferPointer<UInt8>) {
    length &+= UInt64(buffer.count)
    var offset = 0
    // Complete a block left over from an earlier call first.
    if !pending.isEmpty {
      let take = min(64 - pending.count, buffer.count)
      pending.append(contentsOf: buffer[0..<take])
      offset = take
      if pending.count == 64 {
        let block = pending
        block.withUnsafeBufferPointer { compress(blocks: $0.baseAddress!, count: 1) }
        pending.removeAll(keepingCapacity: true)
      }
    }
    let fullBlocks = (buffer.count - offset) / 64
    if fullBlocks > 0, let base = buffer.baseAddress {
      compress(blocks: base + offset, count: fullBlocks)
      offset += fullBlocks * 64
    }
    if offset < buffer.count {
      pending.append(contentsOf: buffer[offset...])
    }
  }

  /// Pads the message and returns its 16-byte digest. The hasher should not be used afterwards.
  public mutating func finalize() -> Digest {
    let bitLength = length &* 8
    var tail = pending
    tail.append(0x80)
    while tail.count % 64 != 56 { tail.append(0) }
    for i in 0..<8 { tail.append(UInt8(truncatingIfNeeded: bitLength >> (8 * UInt64(i)))) }
    tail.withUnsafeBufferPointer { compress(blocks: $0.baseAddress!, count: $0.count / 64) }
    pending.removeAll()
    var out = [UInt8]()
    out.reserveCapacity(16)
    for word in [state.0, state.1, state.2, state.3] {
      for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: word >> (8 * UInt32(i)))) }
    }
    return Digest(bytes: out)
  }

  /// Runs the compression function over `count` consecutive 64-byte blocks starting at `blocks`.
  private mutating func compress(blocks: UnsafePointer<UInt8>, count: Int) {
    var (a0, b0, c0, d0) = state
    var m = (
      UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0),
      UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0), UInt32(0)
    )
    MD5Tables.k.withUnsafeBufferPointer { k in
      MD5Tables.s.withUnsafeBufferPointer { s in
        withUnsafeMutableBytes(of: &m) { raw in
          let words = raw.bindMemory(to: UInt32.self)
          for blockIndex in 0..<count {
            let p = blocks + blockIndex * 64
            // Message words are little-endian regardless of the host.
            for j in 0..<16 {
              let q = p + 4 * j
              words[j] = UInt32(q[0]) | UInt32(q[1]) << 8 | UInt32(q[2]) << 16 | UInt32(q[3]) << 24
            }
            var a = a0
            var b = b0
            var c = c0
            var d = d0
            for i in 0..<64 {
              var f: UInt32
              let g: Int
              switch i >> 4 {
              case 0:
                f = (b & c) | (~b & d)
                g = i
              case 1:
                f = (d & b) | (~d & c)
                g = (5 &* i &+ 1) & 15
              case 2:
                f = b ^ c ^ d
                g = (3 &* i &+ 5) & 15
              default:
                f = c ^ (b | ~d)
                g = (7 &* i) & 15
              }
              f = f &+ a &+ k[i] &+ words[g]
              a = d
              d = c
              c = b
              let shift = s[i]
              b = b &+ ((f << shift) | (f >> (32 &- shift)))
            }
            a0 = a0 &+ a
            b0 = b0 &+ b
            c0 = c0 &+ c
            d0 = d0 &+ d
          }
        }
      }
    }
    state = (a0, b0, c0, d0)
  }

  /// A 16-byte MD5 digest.
  public struct Digest: Sendable, Hashable, CustomStringConvertible {
    /// The 16 digest bytes, in the order RFC 1321 prints them.
    public let bytes: [UInt8]

    /// The digest as 32 lowercase hex digits (the format of `md5sum`).
    public var hexString: String {
      let digits = Array("0123456789abcdef".utf8)
      var chars = [UInt8]()
      chars.reserveCapacity(32)
      for byte in bytes {
        chars.append(digits[Int(byte >> 4)])
        chars.append(digits[Int(byte & 15)])
      }
      return String(decoding: chars, as: UTF8.self)
    }

    /// Same as `hexString`.
    public var description: String { hexString }
  }
}

/// The constants of RFC 1321: `K[i] = floor(2^32 * |sin(i + 1)|)` and the per-step rotation amounts.
private enum MD5Tables {
  static let k: [UInt32] = [
    0xd76a_a478, 0xe8c7_b756, 0x2420_70db, 0xc1bd_ceee, 0xf57c_0faf, 0x4787_c62a, 0xa830_4613, 0xfd46_9501,
    0x6980_98d8, 0x8b44_f7af, 0xffff_5bb1, 0x895c_d7be, 0x6b90_1122, 0xfd98_7193, 0xa679_438e, 0x49b4_0821,
    0xf61e_2562, 0xc040_b340, 0x265e_5a51, 0xe9b6_c7aa, 0xd62f_105d, 0x0244_1453, 0xd8a1_e681, 0xe7d3_fbc8,
    0x21e1_cde6, 0xc337_07d6, 0xf4d5_0d87, 0x455a_14ed, 0xa9e3_e905, 0xfcef_a3f8, 0x676f_02d9, 0x8d2a_4c8a,
    0xfffa_3942, 0x8771_f681, 0x6d9d_6122, 0xfde5_380c, 0xa4be_ea44, 0x4bde_cfa9, 0xf6bb_4b60, 0xbebf_bc70,
    0x289b_7ec6, 0xeaa1_27fa, 0xd4ef_3085, 0x0488_1d05, 0xd9d4_d039, 0xe6db_99e5, 0x1fa2_7cf8, 0xc4ac_5665,
    0xf429_2244, 0x432a_ff97, 0xab94_23a7, 0xfc93_a039, 0x655b_59c3, 0x8f0c_cc92, 0xffef_f47d, 0x8584_5dd1,
    0x6fa8_7e4f, 0xfe2c_e6e0, 0xa301_4314, 0x4e08_11a1, 0xf753_7e82, 0xbd3a_f235, 0x2ad7_d2bb, 0xeb86_d391,
  ]
  static let s: [UInt32] = [
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
    5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
  ]
}
