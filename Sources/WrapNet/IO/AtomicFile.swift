import Foundation
import WrapNetEngine

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Crash-safe whole-file writes: readers see either the old file or the complete new one, never a torn write.
///
/// Method: write to a temporary file in the same directory (so the rename stays within one file system), `fsync`
/// it, `rename` it over the destination (atomic on POSIX), then `fsync` the directory so the rename itself
/// survives a power loss. On any failure the temporary file is removed and the destination is untouched.
public enum AtomicFile {
  /// Atomically replaces (or creates) the file at `path` with `bytes`. Throws `FileError` naming the path when the
  /// directory is missing or not writable, the disk is full, or the rename fails.
  public static func write(_ bytes: [UInt8], to path: String) throws {
    try bytes.withUnsafeBytes { try write(raw: $0, to: path) }
  }

  /// Atomically replaces (or creates) the file at `path` with `data`; see `write(_:to:)` for `[UInt8]`.
  public static func write(_ data: Data, to path: String) throws {
    try data.withUnsafeBytes { try write(raw: $0, to: path) }
  }

  private static func write(raw: UnsafeRawBufferPointer, to path: String) throws {
    precondition(!path.isEmpty, "AtomicFile.write: empty path")
    let url = URL(fileURLWithPath: path)
    let directory = url.deletingLastPathComponent().path
    // Unique per process and call: concurrent writers of the same file never share a temporary.
    let temporary = directory + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
      throw FileError(
        path: path,
        reason: "cannot create a temporary file in '\(directory)' (\(errorText())); check that the directory exists and is writable")
    }
    var succeeded = false
    defer {
      if !succeeded { unlink(temporary) }
    }
    do {
      var written = 0
      while written < raw.count {
        let n = posixWrite(fd, raw.baseAddress! + written, raw.count - written)
        if n < 0 {
          if errno == EINTR { continue }
          throw FileError(path: path, reason: "write failed after \(written) of \(raw.count) bytes (\(errorText()))")
        }
        written += n
      }
      guard fsync(fd) == 0 else { throw FileError(path: path, reason: "fsync failed (\(errorText()))") }
    } catch {
      close(fd)
      throw error
    }
    guard close(fd) == 0 else { throw FileError(path: path, reason: "close failed (\(errorText()))") }
    guard rename(temporary, path) == 0 else {
      throw FileError(path: path, reason: "cannot rename the temporary file into place (\(errorText()))")
    }
    succeeded = true
    // Persist the directory entry; best effort, since some file systems refuse fsync on directories.
    let dirfd = open(directory, O_RDONLY | O_CLOEXEC)
    if dirfd >= 0 {
      _ = fsync(dirfd)
      close(dirfd)
    }
  }

  /// Removes the temporary files that writers killed mid-write left in `directory` (`.NAME.tmp-PID-N`, the names
  /// `write` uses) when process PID no longer runs; a live writer's temporaries are kept. Returns the removed
  /// names. Best effort: a directory that cannot be listed yields `[]`.
  @discardableResult
  public static func removeStaleTemporaries(in directory: String) -> [String] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
    var removed: [String] = []
    for name in names where name.hasPrefix(".") {
      guard let marker = name.range(of: ".tmp-", options: .backwards) else { continue }
      let parts = name[marker.upperBound...].split(separator: "-")
      guard parts.count == 2, let pid = Int32(parts[0]), pid > 0, UInt32(parts[1]) != nil else { continue }
      // kill(pid, 0) fails with ESRCH exactly when no process has that id.
      guard pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
      if unlink(directory + "/" + name) == 0 { removed.append(name) }
    }
    return removed.sorted()
  }

  /// Creates the output directory `path` (with its parents) for a command's `flag`. Throws `FileError` saying
  /// what to do when a file (not a directory) is in the way or the directory cannot be created.
  public static func createOutputDirectory(_ path: String, flag: String = "--out") throws {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
      guard isDirectory.boolValue else {
        throw FileError(
          path: path, reason: "\(flag) must name a directory, but this is an existing file; choose another \(flag) or move the file away")
      }
      return
    }
    do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
      throw FileError(
        path: path,
        reason: "cannot create the \(flag) directory (a parent is a file, missing permissions, or the disk is full); choose another \(flag)")
    }
  }

  private static func errorText() -> String {
    String(cString: strerror(errno))
  }
}

/// `write(2)` at file scope, where the name is not shadowed by `AtomicFile.write`.
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
  write(fd, buffer, count)
}
