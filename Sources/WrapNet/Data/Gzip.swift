import CZlib

/// In-memory gzip and raw-deflate coding through zlib, for IDX files (`*.gz`) and zip archives (wheels).
///
/// Errors are thrown as `DatasetError` naming `path` (the file the bytes came from), so a corrupt download is
/// reported with the file to delete or re-fetch.
public enum Gzip {
  /// Whether `bytes` start with the gzip magic `1f 8b` (RFC 1952).
  public static func hasMagic(_ bytes: [UInt8]) -> Bool {
    bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
  }

  /// Decompresses a complete gzip file (one or more concatenated members).
  ///
  /// - Throws: `DatasetError.notGzip` without the magic, `.truncatedGzip` when the stream ends before its
  ///   trailer, `.corruptGzip` for invalid deflate data, a CRC-32/length mismatch or trailing garbage.
  public static func decompress(_ bytes: [UInt8], path: String) throws -> [UInt8] {
    guard hasMagic(bytes) else {
      throw DatasetError.notGzip(path: path, found: Array(bytes.prefix(2)))
    }
    // ISIZE (last 4 bytes, little-endian) is the uncompressed size mod 2^32: a good capacity hint. Deflate
    // expands at most 1032:1, so a larger ISIZE (a corrupt trailer) is capped there rather than allocated.
    var hint = 0
    if bytes.count >= 18 {
      let n = bytes.count
      hint = Int(bytes[n - 4]) | Int(bytes[n - 3]) << 8 | Int(bytes[n - 2]) << 16 | Int(bytes[n - 1]) << 24
      hint = min(hint, 1032 * n)
    }
    // windowBits 16 + 15: gzip wrapper (header, CRC-32 and length are checked by zlib), 32 KiB window.
    return try inflate(bytes, windowBits: 16 + 15, capacityHint: hint, allowConcatenated: true, path: path)
  }

  /// Decompresses a raw deflate stream (no header or trailer, as in zip method 8) of known size.
  public static func inflateRaw(_ bytes: [UInt8], expectedCount: Int, path: String) throws -> [UInt8] {
    let out = try inflate(bytes, windowBits: -15, capacityHint: expectedCount, allowConcatenated: false, path: path)
    guard out.count == expectedCount else {
      throw DatasetError.corruptGzip(
        path: path, detail: "deflate stream gave \(out.count) bytes, expected \(expectedCount)")
    }
    return out
  }

  /// Compresses `bytes` into a single gzip member (windowBits 31 = gzip wrapper, 32 KiB window).
  ///
  /// `level` is zlib's 0 (store) ... 9 (best); -1 is zlib's default (6).
  public static func compress(_ bytes: [UInt8], level: Int32 = -1) -> [UInt8] {
    deflate(bytes, windowBits: 31, level: level)
  }

  /// Compresses `bytes` into a raw deflate stream (no header or trailer), the payload of zip method 8.
  public static func deflateRaw(_ bytes: [UInt8], level: Int32 = -1) -> [UInt8] {
    deflate(bytes, windowBits: -15, level: level)
  }

  /// zlib's CRC-32 (the checksum of gzip and zip) of `bytes`.
  public static func crc32(_ bytes: [UInt8]) -> UInt32 {
    bytes.withUnsafeBufferPointer { buf -> UInt32 in
      var crc = CZlib.crc32(0, nil, 0)
      var offset = 0
      // zlib takes a 32-bit length; feed huge buffers in pieces.
      while offset < buf.count {
        let n = min(buf.count - offset, 1 << 30)
        crc = CZlib.crc32(crc, buf.baseAddress! + offset, uInt(n))
        offset += n
      }
      return UInt32(truncatingIfNeeded: crc)
    }
  }

  private static func deflate(_ bytes: [UInt8], windowBits: Int32, level: Int32) -> [UInt8] {
    var stream = z_stream()
    let initStatus = deflateInit2_(
      &stream, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY, zlibVersion(),
      Int32(MemoryLayout<z_stream>.size))
    // Only invalid parameters or out-of-memory fail here, both programming errors with fixed arguments.
    precondition(initStatus == Z_OK, "deflateInit2_ failed with status \(initStatus)")
    defer { deflateEnd(&stream) }
    var input = bytes
    var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))) + 64)
    let produced = input.withUnsafeMutableBufferPointer { inBuf in
      output.withUnsafeMutableBufferPointer { outBuf -> Int in
        stream.next_in = inBuf.baseAddress
        stream.avail_in = uInt(inBuf.count)
        stream.next_out = outBuf.baseAddress
        stream.avail_out = uInt(outBuf.count)
        let status = CZlib.deflate(&stream, Z_FINISH)
        // deflateBound guarantees room for the whole stream in one call.
        precondition(status == Z_STREAM_END, "deflate did not finish (status \(status))")
        return outBuf.count - Int(stream.avail_out)
      }
    }
    output.removeSubrange(produced...)
    return output
  }

  private static func inflate(
    _ bytes: [UInt8], windowBits: Int32, capacityHint: Int, allowConcatenated: Bool, path: String
  ) throws -> [UInt8] {
    var stream = z_stream()
    let initStatus = inflateInit2_(&stream, windowBits, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
    guard initStatus == Z_OK else {
      throw DatasetError.corruptGzip(path: path, detail: "zlib inflateInit2_ failed with status \(initStatus)")
    }
    defer { inflateEnd(&stream) }

    var input = bytes
    // Output grows geometrically; `produced` counts the bytes written so far. Growing with
    // `[UInt8](repeating:count:)` (a memset) keeps even debug builds fast on 47 MB of MNIST pixels.
    var output = [UInt8](repeating: 0, count: max(1 << 16, min(capacityHint, 1 << 28) + 1))
    var produced = 0
    try input.withUnsafeMutableBufferPointer { inBuf in
      guard let inBase = inBuf.baseAddress, inBuf.count > 0 else {
        throw DatasetError.truncatedGzip(path: path, detail: "the file is empty")
      }
      stream.next_in = inBase
      stream.avail_in = uInt(inBuf.count)
      while true {
        if produced == output.count {
          output.append(contentsOf: [UInt8](repeating: 0, count: min(max(output.count, 1 << 16), 1 << 28)))
        }
        let room = min(output.count - produced, Int(UInt32.max))
        let status = output.withUnsafeMutableBufferPointer { outBuf -> Int32 in
          stream.next_out = outBuf.baseAddress! + produced
          stream.avail_out = uInt(room)
          return CZlib.inflate(&stream, Z_NO_FLUSH)
        }
        produced += room - Int(stream.avail_out)
        switch status {
        case Z_OK:
          // Made progress; go on (more output room or more input to consume).
          continue
        case Z_STREAM_END:
          let consumed = inBuf.count - Int(stream.avail_in)
          let rest = UnsafeMutableBufferPointer(rebasing: inBuf[consumed...])
          if rest.isEmpty || rest.allSatisfy({ $0 == 0 }) {
            return
          }
          // gzip allows several members back to back (e.g. `cat a.gz b.gz`).
          if allowConcatenated, rest.count >= 2, rest[0] == 0x1f, rest[1] == 0x8b {
            inflateReset(&stream)
            continue
          }
          throw DatasetError.corruptGzip(
            path: path, detail: "\(rest.count) bytes of trailing garbage after the end of the compressed stream")
        case Z_BUF_ERROR:
          if stream.avail_in == 0 {
            throw DatasetError.truncatedGzip(
              path: path,
              detail: "the compressed stream ends after \(inBuf.count) bytes (\(produced) decompressed) "
                + "before its end marker")
          }
          guard stream.avail_out == 0 else {
            throw DatasetError.corruptGzip(path: path, detail: "zlib made no progress (Z_BUF_ERROR)")
          }
          // No room for output: the next iteration enlarges the buffer.
          continue
        case Z_DATA_ERROR, Z_NEED_DICT:
          let message = stream.msg.map { String(cString: $0) } ?? "invalid compressed data"
          throw DatasetError.corruptGzip(
            path: path, detail: "\(message) at input byte \(inBuf.count - Int(stream.avail_in))")
        case Z_MEM_ERROR:
          throw DatasetError.corruptGzip(path: path, detail: "zlib ran out of memory")
        default:
          throw DatasetError.corruptGzip(path: path, detail: "zlib inflate failed with status \(status)")
        }
      }
    }
    output.removeLast(output.count - produced)
    return output
  }
}
