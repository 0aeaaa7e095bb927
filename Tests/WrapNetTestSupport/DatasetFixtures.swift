import Foundation
import WrapNet

// Fixtures shared by the test targets that read or write dataset files: temporary directories, deterministic
// bytes, IDX files, and external tools.

/// A fresh directory under the system temp directory, removed by `remove()`.
public struct TemporaryDirectory {
  public let path: String

  public init() throws {
    path = NSTemporaryDirectory() + "/wrapnet-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }

  public func file(_ name: String) -> String { path + "/" + name }

  @discardableResult
  public func write(_ bytes: [UInt8], to name: String) throws -> String {
    let p = file(name)
    try FileManager.default.createDirectory(
      atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try Data(bytes).write(to: URL(fileURLWithPath: p))
    return p
  }

  public func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
public func testBytes(count: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> [UInt8] {
  var x = seed
  return (0..<count).map { _ in
    x ^= x << 13
    x ^= x >> 7
    x ^= x << 17
    return UInt8(truncatingIfNeeded: x >> 24)
  }
}

/// Uncompressed IDX images file `[n, h, w]` with deterministic pixels.
public func idxImages(count n: Int, height h: Int = 28, width w: Int = 28, seed: UInt64 = 1) -> IDXArray {
  IDXArray(dimensions: [n, h, w], bytes: testBytes(count: n * h * w, seed: seed))
}

/// Uncompressed IDX labels file `[labels.count]`.
public func idxLabels(_ labels: [UInt8]) -> IDXArray {
  IDXArray(dimensions: [labels.count], bytes: labels)
}

/// Runs a program found in PATH; returns its exit status (127 when it cannot be found).
@discardableResult
public func runTool(_ arguments: [String]) -> Int32 {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  process.arguments = arguments
  process.standardOutput = FileHandle.nullDevice
  process.standardError = FileHandle.nullDevice
  do { try process.run() } catch { return 127 }
  process.waitUntilExit()
  return process.terminationStatus
}

/// Whether `python3` runs here (used to build zip archives with Python's zipfile).
public let python3Available = runTool(["python3", "--version"]) == 0
