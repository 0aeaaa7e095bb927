/// Why a dataset file could not be read. Every description names the file, the problem, and what was expected
/// versus what was found, so a user can tell a wrong file from a damaged download.
public enum DatasetError: Error, CustomStringConvertible, Equatable {
  /// The file does not exist (or cannot be opened).
  case fileNotFound(path: String)
  /// The file exists but reading it failed.
  case unreadable(path: String, detail: String)
  /// A whole dataset is absent from the data directory; `remedy` says what to run or where to put the files.
  case datasetMissing(name: String, directory: String, missingFiles: [String], remedy: String)
  /// A file named `*.gz` does not start with the gzip magic `1f 8b`.
  case notGzip(path: String, found: [UInt8])
  /// The gzip stream ends before its end marker and trailer.
  case truncatedGzip(path: String, detail: String)
  /// The gzip/deflate stream is invalid (bad data, CRC mismatch, trailing garbage).
  case corruptGzip(path: String, detail: String)
  /// The IDX magic number is not the expected one (0x00000803 images, 0x00000801 labels).
  case wrongMagic(path: String, expected: UInt32, found: UInt32)
  /// The IDX dimensions are not what this dataset needs (e.g. images not 28x28).
  case wrongDimensions(path: String, expected: String, found: [Int])
  /// The file is shorter than its header says (or than one record).
  case truncated(path: String, expectedBytes: Int, foundBytes: Int)
  /// The images file and the labels file hold different numbers of items.
  case countMismatch(imagesPath: String, imageCount: Int, labelsPath: String, labelCount: Int)
  /// A label is not a valid class index.
  case labelOutOfRange(path: String, index: Int, label: Int, classCount: Int)
  /// The file holds more bytes than its header (or whole records) account for.
  case trailingBytes(path: String, expectedBytes: Int, foundBytes: Int)
  /// The file holds no images at all.
  case empty(path: String)

  /// A message naming the file and the problem, with expected versus found.
  public var description: String {
    switch self {
    case .fileNotFound(let path):
      return "\(path): file not found"
    case .unreadable(let path, let detail):
      return "\(path): cannot read the file: \(detail)"
    case .datasetMissing(let name, let directory, let missingFiles, let remedy):
      let files = missingFiles.joined(separator: ", ")
      return "\(name) is not in \(directory) (missing: \(files)). \(remedy)"
    case .notGzip(let path, let found):
      let hex = found.map { hexByte($0) }.joined(separator: " ")
      return "\(path): not gzip: expected the gzip magic 1f 8b, found \(found.isEmpty ? "an empty file" : hex)"
    case .truncatedGzip(let path, let detail):
      return "\(path): truncated gzip stream: \(detail); delete the file and fetch it again"
    case .corruptGzip(let path, let detail):
      return "\(path): corrupt gzip/deflate data: \(detail); delete the file and fetch it again"
    case .wrongMagic(let path, let expected, let found):
      return "\(path): wrong IDX magic number: expected \(hexWord(expected)), found \(hexWord(found))"
    case .wrongDimensions(let path, let expected, let found):
      let dims = found.map(String.init).joined(separator: "x")
      return "\(path): wrong dimensions: expected \(expected), found \(dims.isEmpty ? "none" : dims)"
    case .truncated(let path, let expectedBytes, let foundBytes):
      return "\(path): truncated: expected \(expectedBytes) bytes, found \(foundBytes)"
    case .countMismatch(let imagesPath, let imageCount, let labelsPath, let labelCount):
      return
        "image/label count mismatch: \(imagesPath) holds \(imageCount) images but \(labelsPath) holds \(labelCount) labels"
    case .labelOutOfRange(let path, let index, let label, let classCount):
      return "\(path): label out of range at item \(index): expected 0..<\(classCount), found \(label)"
    case .trailingBytes(let path, let expectedBytes, let foundBytes):
      return "\(path): expected \(expectedBytes) bytes, found \(foundBytes) (\(foundBytes - expectedBytes) bytes after the declared data); the file is damaged or not what its name says: delete it and fetch it again"
    case .empty(let path):
      return "\(path): holds no images; expected at least one: delete it and fetch it again"
    }
  }
}

private func hexByte(_ b: UInt8) -> String {
  let s = String(b, radix: 16)
  return s.count == 1 ? "0" + s : s
}

private func hexWord(_ w: UInt32) -> String {
  let s = String(w, radix: 16)
  return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
}
