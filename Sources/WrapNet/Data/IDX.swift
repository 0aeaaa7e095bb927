import Foundation

/// An array read from an IDX file (the MNIST format): unsigned bytes with their dimensions.
///
/// Layout on disk: a big-endian magic `00 00 08 nd` (0x08 = unsigned byte, `nd` = number of dimensions),
/// `nd` big-endian UInt32 extents, then `product(extents)` bytes in row-major order.
public struct IDXArray: Sendable, Equatable {
  /// The magic number, e.g. 0x00000803 for images `[count, rows, cols]`, 0x00000801 for labels `[count]`.
  public var magic: UInt32
  /// Extent of each dimension, outermost first.
  public var dimensions: [Int]
  /// The elements, row-major; `bytes.count == dimensions.reduce(1, *)`.
  public var bytes: [UInt8]

  /// An array with the given dimensions; the magic is `0x00000800 | dimensions.count`.
  /// Precondition: `bytes.count == dimensions.reduce(1, *)`, 1...255 dimensions.
  public init(dimensions: [Int], bytes: [UInt8]) {
    precondition((1...255).contains(dimensions.count), "IDX needs 1...255 dimensions, got \(dimensions)")
    precondition(
      bytes.count == dimensions.reduce(1, *),
      "IDX dimensions \(dimensions) need \(dimensions.reduce(1, *)) bytes, got \(bytes.count)")
    self.magic = 0x0000_0800 | UInt32(dimensions.count)
    self.dimensions = dimensions
    self.bytes = bytes
  }

  /// The IDX file bytes (uncompressed) of this array: magic, extents, elements.
  public func encoded() -> [UInt8] {
    var out = [UInt8]()
    out.reserveCapacity(4 + 4 * dimensions.count + bytes.count)
    appendBigEndian(magic, to: &out)
    for d in dimensions { appendBigEndian(UInt32(d), to: &out) }
    out.append(contentsOf: bytes)
    return out
  }
}

/// Readers for IDX files, raw or gzip-compressed (detected by the gzip magic, not by the name).
public enum IDXReader {
  /// The magic of an IDX images file (unsigned bytes, 3 dimensions `[count, rows, cols]`).
  public static let imagesMagic: UInt32 = 0x0000_0803
  /// The magic of an IDX labels file (unsigned bytes, 1 dimension `[count]`).
  public static let labelsMagic: UInt32 = 0x0000_0801

  /// Reads a file's bytes, decompressing gzip in memory.
  ///
  /// A file whose name ends in `.gz` may hold the raw IDX bytes (as torchvision and most loaders accept) when it
  /// starts with an unsigned-byte IDX magic `00 00 08 nd`; anything else without the gzip magic is refused as
  /// `DatasetError.notGzip` (a half-written or mislabeled download).
  public static func readDecompressed(path: String) throws -> [UInt8] {
    let bytes = try readFile(path: path)
    if Gzip.hasMagic(bytes) { return try Gzip.decompress(bytes, path: path) }
    if path.hasSuffix(".gz") && !(bytes.count >= 4 && bytes[0] == 0 && bytes[1] == 0 && bytes[2] == 8) {
      return try Gzip.decompress(bytes, path: path)
    }
    return bytes
  }

  /// Reads any unsigned-byte IDX file and returns its dimensions and elements.
  ///
  /// - Throws: `DatasetError` for a missing file, bad gzip, a magic that is not `00 00 08 nd`, or fewer or more
  ///   bytes than the dimensions need.
  public static func read(path: String) throws -> IDXArray {
    try parse(readDecompressed(path: path), path: path)
  }

  /// Parses uncompressed IDX bytes; `path` is only used in error messages.
  public static func parse(_ bytes: [UInt8], path: String) throws -> IDXArray {
    guard bytes.count >= 4 else {
      throw DatasetError.truncated(path: path, expectedBytes: 4, foundBytes: bytes.count)
    }
    let magic = readBigEndian(bytes, at: 0)
    let rank = Int(magic & 0xff)
    // Only unsigned-byte data (type 0x08) is used by these datasets.
    guard magic & 0xffff_ff00 == 0x0000_0800, rank >= 1 else {
      throw DatasetError.wrongMagic(path: path, expected: 0x0000_0800 | UInt32(max(rank, 1)), found: magic)
    }
    let headerCount = 4 + 4 * rank
    guard bytes.count >= headerCount else {
      throw DatasetError.truncated(path: path, expectedBytes: headerCount, foundBytes: bytes.count)
    }
    var dims = [Int]()
    var total = 1
    for i in 0..<rank {
      let d = Int(readBigEndian(bytes, at: 4 + 4 * i))
      dims.append(d)
      // Guard the product against overflow on a corrupt header; no real file comes near 2^40 bytes.
      total = total.multipliedReportingOverflow(by: d).overflow ? Int.max : total * d
      if total > 1 << 40 { total = Int.max }
    }
    let expected = total == Int.max ? Int.max : headerCount + total
    guard bytes.count >= expected else {
      throw DatasetError.truncated(path: path, expectedBytes: expected, foundBytes: bytes.count)
    }
    guard bytes.count == expected else {
      throw DatasetError.trailingBytes(path: path, expectedBytes: expected, foundBytes: bytes.count)
    }
    return IDXArray(dimensions: dims, bytes: Array(bytes[headerCount..<expected]))
  }

  /// Reads an IDX images file `[count, rows, cols]`.
  ///
  /// - Parameters:
  ///   - height, width: the required image size (28x28 for MNIST-type data); `nil` accepts any size.
  /// - Returns: the images as an `IDXArray` whose magic is 0x00000803.
  public static func readImages(path: String, height: Int? = nil, width: Int? = nil) throws -> IDXArray {
    let array = try readChecked(path: path, magic: imagesMagic)
    let d = array.dimensions
    if let height, let width, d[1] != height || d[2] != width {
      throw DatasetError.wrongDimensions(path: path, expected: "Nx\(height)x\(width) images", found: d)
    }
    return array
  }

  /// Reads an IDX labels file `[count]` and checks every label is `< classCount`.
  public static func readLabels(path: String, classCount: Int) throws -> [UInt8] {
    let array = try readChecked(path: path, magic: labelsMagic)
    try checkLabels(array.bytes, classCount: classCount, path: path)
    return array.bytes
  }

  /// Throws `DatasetError.labelOutOfRange` for the first label `>= classCount`.
  static func checkLabels(_ labels: [UInt8], classCount: Int, path: String) throws {
    let bad = labels.withUnsafeBufferPointer { buf -> Int? in
      let limit = UInt8(clamping: classCount)
      for i in 0..<buf.count where buf[i] >= limit { return i }
      return nil
    }
    if let bad {
      throw DatasetError.labelOutOfRange(path: path, index: bad, label: Int(labels[bad]), classCount: classCount)
    }
  }

  private static func readChecked(path: String, magic: UInt32) throws -> IDXArray {
    let bytes = try readDecompressed(path: path)
    // Check the magic before the generic parse so a labels file passed as images says "wrong magic".
    if bytes.count >= 4 {
      let found = readBigEndian(bytes, at: 0)
      guard found == magic else { throw DatasetError.wrongMagic(path: path, expected: magic, found: found) }
    }
    return try parse(bytes, path: path)
  }

  /// Reads a whole file; a missing file throws `DatasetError.fileNotFound`.
  package static func readFile(path: String) throws -> [UInt8] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
      throw DatasetError.fileNotFound(path: path)
    }
    do {
      let data = try Data(contentsOf: URL(fileURLWithPath: path))
      return [UInt8](data)
    } catch {
      throw DatasetError.unreadable(path: path, detail: "\(error.localizedDescription)")
    }
  }
}

func readBigEndian(_ bytes: [UInt8], at offset: Int) -> UInt32 {
  UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
    | UInt32(bytes[offset + 3])
}

func appendBigEndian(_ value: UInt32, to out: inout [UInt8]) {
  out.append(UInt8(truncatingIfNeeded: value >> 24))
  out.append(UInt8(truncatingIfNeeded: value >> 16))
  out.append(UInt8(truncatingIfNeeded: value >> 8))
  out.append(UInt8(truncatingIfNeeded: value))
}
