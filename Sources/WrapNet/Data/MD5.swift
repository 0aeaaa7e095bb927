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
  ///
  /// Step i of round r: `t = a + R(b, c, d) + M[g] + K[i]; a = b + (t <<< s[i])`, then the registers rotate
  /// (written here by renaming instead of moving), with `F = (b & c) | (~b & d)`, `G = (b & d) | (c & ~d)`,
  /// `H = b ^ c ^ d`, `I = c ^ (b | ~d)`, `g = i, 5i+1, 3i+5, 7i (mod 16)` and `K[i] = floor(2^32 * |sin(i + 1)|)`.
  /// The 64 steps are written out (generated from the RFC's tables) so that even unoptimized debug builds hash
  /// fast enough for dataset verification (~55 MB per Fashion-MNIST check).
  private mutating func compress(blocks: UnsafePointer<UInt8>, count: Int) {
    var (a0, b0, c0, d0) = state
    for blockIndex in 0..<count {
      let p = blocks + blockIndex * 64
      // Message words are little-endian regardless of the host.
      let m0 = MD5.word(p, 0)
      let m1 = MD5.word(p, 1)
      let m2 = MD5.word(p, 2)
      let m3 = MD5.word(p, 3)
      let m4 = MD5.word(p, 4)
      let m5 = MD5.word(p, 5)
      let m6 = MD5.word(p, 6)
      let m7 = MD5.word(p, 7)
      let m8 = MD5.word(p, 8)
      let m9 = MD5.word(p, 9)
      let m10 = MD5.word(p, 10)
      let m11 = MD5.word(p, 11)
      let m12 = MD5.word(p, 12)
      let m13 = MD5.word(p, 13)
      let m14 = MD5.word(p, 14)
      let m15 = MD5.word(p, 15)
      var a = a0
      var b = b0
      var c = c0
      var d = d0
      var t: UInt32 = 0
      t = a &+ ((b & c) | (~b & d)) &+ m0 &+ 0xd76aa478
      a = b &+ (t &<< 7 | t &>> 25)
      t = d &+ ((a & b) | (~a & c)) &+ m1 &+ 0xe8c7b756
      d = a &+ (t &<< 12 | t &>> 20)
      t = c &+ ((d & a) | (~d & b)) &+ m2 &+ 0x242070db
      c = d &+ (t &<< 17 | t &>> 15)
      t = b &+ ((c & d) | (~c & a)) &+ m3 &+ 0xc1bdceee
      b = c &+ (t &<< 22 | t &>> 10)
      t = a &+ ((b & c) | (~b & d)) &+ m4 &+ 0xf57c0faf
      a = b &+ (t &<< 7 | t &>> 25)
      t = d &+ ((a & b) | (~a & c)) &+ m5 &+ 0x4787c62a
      d = a &+ (t &<< 12 | t &>> 20)
      t = c &+ ((d & a) | (~d & b)) &+ m6 &+ 0xa8304613
      c = d &+ (t &<< 17 | t &>> 15)
      t = b &+ ((c & d) | (~c & a)) &+ m7 &+ 0xfd469501
      b = c &+ (t &<< 22 | t &>> 10)
      t = a &+ ((b & c) | (~b & d)) &+ m8 &+ 0x698098d8
      a = b &+ (t &<< 7 | t &>> 25)
      t = d &+ ((a & b) | (~a & c)) &+ m9 &+ 0x8b44f7af
      d = a &+ (t &<< 12 | t &>> 20)
      t = c &+ ((d & a) | (~d & b)) &+ m10 &+ 0xffff5bb1
      c = d &+ (t &<< 17 | t &>> 15)
      t = b &+ ((c & d) | (~c & a)) &+ m11 &+ 0x895cd7be
      b = c &+ (t &<< 22 | t &>> 10)
      t = a &+ ((b & c) | (~b & d)) &+ m12 &+ 0x6b901122
      a = b &+ (t &<< 7 | t &>> 25)
      t = d &+ ((a & b) | (~a & c)) &+ m13 &+ 0xfd987193
      d = a &+ (t &<< 12 | t &>> 20)
      t = c &+ ((d & a) | (~d & b)) &+ m14 &+ 0xa679438e
      c = d &+ (t &<< 17 | t &>> 15)
      t = b &+ ((c & d) | (~c & a)) &+ m15 &+ 0x49b40821
      b = c &+ (t &<< 22 | t &>> 10)
      t = a &+ ((b & d) | (c & ~d)) &+ m1 &+ 0xf61e2562
      a = b &+ (t &<< 5 | t &>> 27)
      t = d &+ ((a & c) | (b & ~c)) &+ m6 &+ 0xc040b340
      d = a &+ (t &<< 9 | t &>> 23)
      t = c &+ ((d & b) | (a & ~b)) &+ m11 &+ 0x265e5a51
      c = d &+ (t &<< 14 | t &>> 18)
      t = b &+ ((c & a) | (d & ~a)) &+ m0 &+ 0xe9b6c7aa
      b = c &+ (t &<< 20 | t &>> 12)
      t = a &+ ((b & d) | (c & ~d)) &+ m5 &+ 0xd62f105d
      a = b &+ (t &<< 5 | t &>> 27)
      t = d &+ ((a & c) | (b & ~c)) &+ m10 &+ 0x02441453
      d = a &+ (t &<< 9 | t &>> 23)
      t = c &+ ((d & b) | (a & ~b)) &+ m15 &+ 0xd8a1e681
      c = d &+ (t &<< 14 | t &>> 18)
      t = b &+ ((c & a) | (d & ~a)) &+ m4 &+ 0xe7d3fbc8
      b = c &+ (t &<< 20 | t &>> 12)
      t = a &+ ((b & d) | (c & ~d)) &+ m9 &+ 0x21e1cde6
      a = b &+ (t &<< 5 | t &>> 27)
      t = d &+ ((a & c) | (b & ~c)) &+ m14 &+ 0xc33707d6
      d = a &+ (t &<< 9 | t &>> 23)
      t = c &+ ((d & b) | (a & ~b)) &+ m3 &+ 0xf4d50d87
      c = d &+ (t &<< 14 | t &>> 18)
      t = b &+ ((c & a) | (d & ~a)) &+ m8 &+ 0x455a14ed
      b = c &+ (t &<< 20 | t &>> 12)
      t = a &+ ((b & d) | (c & ~d)) &+ m13 &+ 0xa9e3e905
      a = b &+ (t &<< 5 | t &>> 27)
      t = d &+ ((a & c) | (b & ~c)) &+ m2 &+ 0xfcefa3f8
      d = a &+ (t &<< 9 | t &>> 23)
      t = c &+ ((d & b) | (a & ~b)) &+ m7 &+ 0x676f02d9
      c = d &+ (t &<< 14 | t &>> 18)
      t = b &+ ((c & a) | (d & ~a)) &+ m12 &+ 0x8d2a4c8a
      b = c &+ (t &<< 20 | t &>> 12)
      t = a &+ (b ^ c ^ d) &+ m5 &+ 0xfffa3942
      a = b &+ (t &<< 4 | t &>> 28)
      t = d &+ (a ^ b ^ c) &+ m8 &+ 0x8771f681
      d = a &+ (t &<< 11 | t &>> 21)
      t = c &+ (d ^ a ^ b) &+ m11 &+ 0x6d9d6122
      c = d &+ (t &<< 16 | t &>> 16)
      t = b &+ (c ^ d ^ a) &+ m14 &+ 0xfde5380c
      b = c &+ (t &<< 23 | t &>> 9)
      t = a &+ (b ^ c ^ d) &+ m1 &+ 0xa4beea44
      a = b &+ (t &<< 4 | t &>> 28)
      t = d &+ (a ^ b ^ c) &+ m4 &+ 0x4bdecfa9
      d = a &+ (t &<< 11 | t &>> 21)
      t = c &+ (d ^ a ^ b) &+ m7 &+ 0xf6bb4b60
      c = d &+ (t &<< 16 | t &>> 16)
      t = b &+ (c ^ d ^ a) &+ m10 &+ 0xbebfbc70
      b = c &+ (t &<< 23 | t &>> 9)
      t = a &+ (b ^ c ^ d) &+ m13 &+ 0x289b7ec6
      a = b &+ (t &<< 4 | t &>> 28)
      t = d &+ (a ^ b ^ c) &+ m0 &+ 0xeaa127fa
      d = a &+ (t &<< 11 | t &>> 21)
      t = c &+ (d ^ a ^ b) &+ m3 &+ 0xd4ef3085
      c = d &+ (t &<< 16 | t &>> 16)
      t = b &+ (c ^ d ^ a) &+ m6 &+ 0x04881d05
      b = c &+ (t &<< 23 | t &>> 9)
      t = a &+ (b ^ c ^ d) &+ m9 &+ 0xd9d4d039
      a = b &+ (t &<< 4 | t &>> 28)
      t = d &+ (a ^ b ^ c) &+ m12 &+ 0xe6db99e5
      d = a &+ (t &<< 11 | t &>> 21)
      t = c &+ (d ^ a ^ b) &+ m15 &+ 0x1fa27cf8
      c = d &+ (t &<< 16 | t &>> 16)
      t = b &+ (c ^ d ^ a) &+ m2 &+ 0xc4ac5665
      b = c &+ (t &<< 23 | t &>> 9)
      t = a &+ (c ^ (b | ~d)) &+ m0 &+ 0xf4292244
      a = b &+ (t &<< 6 | t &>> 26)
      t = d &+ (b ^ (a | ~c)) &+ m7 &+ 0x432aff97
      d = a &+ (t &<< 10 | t &>> 22)
      t = c &+ (a ^ (d | ~b)) &+ m14 &+ 0xab9423a7
      c = d &+ (t &<< 15 | t &>> 17)
      t = b &+ (d ^ (c | ~a)) &+ m5 &+ 0xfc93a039
      b = c &+ (t &<< 21 | t &>> 11)
      t = a &+ (c ^ (b | ~d)) &+ m12 &+ 0x655b59c3
      a = b &+ (t &<< 6 | t &>> 26)
      t = d &+ (b ^ (a | ~c)) &+ m3 &+ 0x8f0ccc92
      d = a &+ (t &<< 10 | t &>> 22)
      t = c &+ (a ^ (d | ~b)) &+ m10 &+ 0xffeff47d
      c = d &+ (t &<< 15 | t &>> 17)
      t = b &+ (d ^ (c | ~a)) &+ m1 &+ 0x85845dd1
      b = c &+ (t &<< 21 | t &>> 11)
      t = a &+ (c ^ (b | ~d)) &+ m8 &+ 0x6fa87e4f
      a = b &+ (t &<< 6 | t &>> 26)
      t = d &+ (b ^ (a | ~c)) &+ m15 &+ 0xfe2ce6e0
      d = a &+ (t &<< 10 | t &>> 22)
      t = c &+ (a ^ (d | ~b)) &+ m6 &+ 0xa3014314
      c = d &+ (t &<< 15 | t &>> 17)
      t = b &+ (d ^ (c | ~a)) &+ m13 &+ 0x4e0811a1
      b = c &+ (t &<< 21 | t &>> 11)
      t = a &+ (c ^ (b | ~d)) &+ m4 &+ 0xf7537e82
      a = b &+ (t &<< 6 | t &>> 26)
      t = d &+ (b ^ (a | ~c)) &+ m11 &+ 0xbd3af235
      d = a &+ (t &<< 10 | t &>> 22)
      t = c &+ (a ^ (d | ~b)) &+ m2 &+ 0x2ad7d2bb
      c = d &+ (t &<< 15 | t &>> 17)
      t = b &+ (d ^ (c | ~a)) &+ m9 &+ 0xeb86d391
      b = c &+ (t &<< 21 | t &>> 11)
      a0 = a0 &+ a
      b0 = b0 &+ b
      c0 = c0 &+ c
      d0 = d0 &+ d
    }
    state = (a0, b0, c0, d0)
  }

  @inline(__always) private static func word(_ p: UnsafePointer<UInt8>, _ j: Int) -> UInt32 {
    UnsafeRawPointer(p + 4 * j).loadUnaligned(as: UInt32.self).littleEndian
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
