import Foundation
import Testing
import WrapNet
import WrapNetDataFetch
import WrapNetTestSupport

@Suite(.enabled(if: python3Available, "python3 builds the test archives"))
struct DatasetZipTests {
  /// Builds `archive.zip` in `dir` with Python's zipfile from files written by Swift:
  /// `stored.bin` (method 0), `deep/dir/deflated.bin` (method 8), `empty.txt` (method 8, zero bytes).
  func makeArchive(in dir: TemporaryDirectory) throws -> (path: String, contents: [String: [UInt8]]) {
    let contents: [String: [UInt8]] = [
      "stored.bin": testBytes(count: 3000, seed: 3),
      "deep/dir/deflated.bin": Array(repeating: Array("wrap-around accumulators ".utf8), count: 4000).flatMap { $0 },
      "empty.txt": [],
    ]
    for (name, bytes) in contents { try dir.write(bytes, to: "src/" + name) }
    let script = """
      import zipfile, sys
      src, out = sys.argv[1], sys.argv[2]
      with zipfile.ZipFile(out, 'w') as z:
          z.write(src + '/stored.bin', 'stored.bin', compress_type=zipfile.ZIP_STORED)
          z.write(src + '/deep/dir/deflated.bin', 'deep/dir/deflated.bin', compress_type=zipfile.ZIP_DEFLATED)
          z.write(src + '/empty.txt', 'empty.txt', compress_type=zipfile.ZIP_DEFLATED)
          z.comment = b'test archive'
      """
    let path = dir.file("archive.zip")
    #expect(runTool(["python3", "-c", script, dir.file("src"), path]) == 0)
    return (path, contents)
  }

  @Test func readsStoredAndDeflated() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let (path, contents) = try makeArchive(in: dir)
    let archive = try ZipArchive(bytes: [UInt8](Data(contentsOf: URL(fileURLWithPath: path))), path: path)
    #expect(archive.entries.map(\.name) == ["stored.bin", "deep/dir/deflated.bin", "empty.txt"])
    #expect(archive.entry(named: "stored.bin")?.method == 0)
    let deflated = try #require(archive.entry(named: "deep/dir/deflated.bin"))
    #expect(deflated.method == 8 && deflated.compressedSize < deflated.uncompressedSize / 10)
    for (name, bytes) in contents {
      #expect(try archive.extract(name) == bytes, "\(name)")
    }
  }

  @Test func crcMismatchAndMissingMember() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let (path, _) = try makeArchive(in: dir)
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    let entry = try #require(try ZipArchive(bytes: bytes, path: path).entry(named: "stored.bin"))
    // Flip one byte of the stored member's data (after its 30-byte local header and name).
    bytes[entry.localHeaderOffset + 30 + "stored.bin".utf8.count + 100] ^= 0x55
    let damaged = try ZipArchive(bytes: bytes, path: path)
    #expect {
      try damaged.extract("stored.bin")
    } throws: { error in
      "\(error)".contains("stored.bin: CRC-32 mismatch: expected 0x")
    }
    #expect(throws: ZipError.self) { try damaged.extract("absent.txt") }
    // A truncated archive has no end-of-central-directory record.
    #expect(throws: ZipError.self) { try ZipArchive(bytes: Array(bytes[0..<(bytes.count / 2)]), path: path) }
    #expect(throws: ZipError.self) { try ZipArchive(bytes: testBytes(count: 100), path: "random") }
  }
}
