import Testing
import WrapNet
import WrapNetTestSupport

@Suite struct DatasetGzipTests {
  @Test(arguments: [0, 1, 100, 70_000, 300_000])
  func roundTrip(count: Int) throws {
    let data = testBytes(count: count, seed: UInt64(count) + 7)
    let gz = Gzip.compress(data)
    #expect(Gzip.hasMagic(gz))
    #expect(try Gzip.decompress(gz, path: "x.gz") == data)
  }

  /// Highly compressible data expands far beyond the first output chunk.
  @Test func largeExpansion() throws {
    let data = [UInt8](repeating: 42, count: 5_000_000)
    let gz = Gzip.compress(data, level: 9)
    #expect(gz.count < 20_000)
    #expect(try Gzip.decompress(gz, path: "x.gz") == data)
  }

  @Test func concatenatedMembers() throws {
    let a = testBytes(count: 1000, seed: 1)
    let b = testBytes(count: 2000, seed: 2)
    #expect(try Gzip.decompress(Gzip.compress(a) + Gzip.compress(b), path: "x.gz") == a + b)
  }

  @Test func truncatedStream() {
    let gz = Gzip.compress(testBytes(count: 50_000))
    // Cut in the middle of the deflate data, and cut only the 8-byte trailer's last bytes.
    for cut in [gz.count / 2, gz.count - 3] {
      #expect {
        try Gzip.decompress(Array(gz[0..<cut]), path: "cut.gz")
      } throws: { error in
        guard case DatasetError.truncatedGzip(let path, _) = error else { return false }
        return path == "cut.gz" && "\(error)".contains("truncated gzip stream")
      }
    }
  }

  @Test func corruptChecksum() {
    var gz = Gzip.compress(testBytes(count: 5000))
    gz[gz.count - 8] ^= 0xff  // first byte of the stored CRC-32
    #expect {
      try Gzip.decompress(gz, path: "bad.gz")
    } throws: { error in
      guard case DatasetError.corruptGzip(let path, let detail) = error else { return false }
      return path == "bad.gz" && detail.contains("incorrect data check")
    }
  }

  @Test func trailingGarbage() {
    let gz = Gzip.compress(testBytes(count: 100)) + [1, 2, 3]
    #expect {
      try Gzip.decompress(gz, path: "g.gz")
    } throws: { error in
      guard case DatasetError.corruptGzip(_, let detail) = error else { return false }
      return detail.contains("trailing garbage")
    }
  }

  @Test func notGzip() {
    #expect(throws: DatasetError.notGzip(path: "p.gz", found: [0, 0])) {
      try Gzip.decompress([0, 0, 8, 3, 0], path: "p.gz")
    }
    #expect(throws: DatasetError.notGzip(path: "e.gz", found: [])) {
      try Gzip.decompress([], path: "e.gz")
    }
  }

  @Test func rawDeflateRoundTripAndSizeCheck() throws {
    let data = testBytes(count: 10_000)
    let raw = Gzip.deflateRaw(data)
    #expect(try Gzip.inflateRaw(raw, expectedCount: data.count, path: "r") == data)
    #expect(throws: DatasetError.self) { try Gzip.inflateRaw(raw, expectedCount: data.count + 1, path: "r") }
  }

  /// zlib's CRC-32 check value for "123456789" (the standard CRC-32 test vector).
  @Test func crc32CheckValue() {
    #expect(Gzip.crc32(Array("123456789".utf8)) == 0xcbf4_3926)
    #expect(Gzip.crc32([]) == 0)
  }
}
