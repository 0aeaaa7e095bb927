import Foundation

/// Element types of a safetensors file that WrapNet reads and writes.
public enum SafeTensorsDType: String, Sendable, CaseIterable, Equatable {
  /// IEEE 754 binary32.
  case f32 = "F32"
  /// IEEE 754 binary64.
  case f64 = "F64"
  /// Signed 8-bit integer.
  case i8 = "I8"
  /// Unsigned 8-bit integer.
  case u8 = "U8"
  /// Signed 16-bit integer.
  case i16 = "I16"
  /// Signed 32-bit integer.
  case i32 = "I32"
  /// Signed 64-bit integer.
  case i64 = "I64"

  /// Bytes per element.
  public var byteSize: Int {
    switch self {
    case .i8, .u8: 1
    case .i16: 2
    case .f32, .i32: 4
    case .f64, .i64: 8
    }
  }
}

/// A Swift scalar type stored in safetensors files (`Float` as F32, `Int8` as I8, ...).
public protocol SafeTensorsScalar: Sendable {
  /// The dtype this type is stored as.
  static var safeTensorsDType: SafeTensorsDType { get }
}
extension Float: SafeTensorsScalar { public static var safeTensorsDType: SafeTensorsDType { .f32 } }
extension Double: SafeTensorsScalar { public static var safeTensorsDType: SafeTensorsDType { .f64 } }
extension Int8: SafeTensorsScalar { public static var safeTensorsDType: SafeTensorsDType { .i8 } }
extension UInt8: SafeTensorsScalar { public static var safeTensorsDType: SafeTensorsDType { .u8 } }
extension Int16: SafeTensorsScalar { public static var safeTensorsDType: SafeTensorsDType { .i16 } }
extension Int32: SafeTensorsScalar { public static var safeTensorsDType: SafeTensorsDType { .i32 } }
extension Int64: SafeTensorsScalar { public static var safeTensorsDType: SafeTensorsDType { .i64 } }

/// One tensor of a safetensors file: dtype, shape and the raw little-endian bytes (row-major).
///
/// Invariant: `bytes.count == shape.reduce(1, *) * dtype.byteSize`. A shape [] is a scalar (one element).
/// WrapNet targets little-endian hosts only (x86-64, arm64), where the in-memory layout is the file layout.
public struct SafeTensor: Sendable, Equatable {
  /// Element type.
  public var dtype: SafeTensorsDType
  /// Extent of each dimension, outermost first.
  public var shape: [Int]
  /// Raw little-endian element bytes, row-major.
  public var bytes: [UInt8]

  /// A tensor from raw bytes. Precondition: the byte count matches shape and dtype.
  public init(dtype: SafeTensorsDType, shape: [Int], bytes: [UInt8]) {
    precondition(shape.allSatisfy { $0 >= 0 }, "SafeTensor shape \(shape) has a negative dimension")
    precondition(
      bytes.count == shape.reduce(1, *) * dtype.byteSize,
      "SafeTensor \(dtype.rawValue) \(shape) needs \(shape.reduce(1, *) * dtype.byteSize) bytes, got \(bytes.count)")
    self.dtype = dtype
    self.shape = shape
    self.bytes = bytes
  }

  /// A tensor of `values` of any supported scalar type with the given shape.
  /// Precondition: `values.count == shape.reduce(1, *)`.
  public init<T: SafeTensorsScalar>(shape: [Int], values: [T]) {
    precondition(
      values.count == shape.reduce(1, *),
      "SafeTensor: \(values.count) values for shape \(shape) (needs \(shape.reduce(1, *)))")
    self.init(dtype: T.safeTensorsDType, shape: shape, bytes: values.withUnsafeBytes { Array($0) })
  }

  /// The elements as `T`, or nil when `T` is not this tensor's dtype (no silent conversion).
  public func values<T: SafeTensorsScalar>(as type: T.Type) -> [T]? {
    guard T.safeTensorsDType == dtype else { return nil }
    let n = shape.reduce(1, *)
    return [T](unsafeUninitializedCapacity: n) { buffer, initialized in
      bytes.withUnsafeBytes { raw in
        UnsafeMutableRawBufferPointer(buffer).copyMemory(from: raw)
      }
      initialized = n
    }
  }
}

/// Why a safetensors file was rejected; the message names the file, what was expected and what was found.
public struct SafeTensorsError: Error, CustomStringConvertible, Sendable, Equatable {
  /// The kind of problem, for programs that react to it.
  public enum Kind: Sendable, Equatable {
    /// Shorter than the 8-byte header length.
    case tooShort
    /// The header length points past the end of the file (or is absurdly large).
    case headerBeyondFile
    /// The header is not a JSON object of the expected form.
    case invalidHeader
    /// A dtype other than F32, F64, I8, U8, I16, I32, I64.
    case unknownDType
    /// Data offsets outside the data section, reversed, overlapping, or not equal to shape * dtype size.
    case badOffsets
    /// Part of the data section belongs to no tensor.
    case uncoveredData
    /// The file could not be read.
    case unreadable
  }

  /// The file (or "<memory>").
  public var path: String
  /// The kind of problem.
  public var kind: Kind
  /// Details.
  public var reason: String

  /// An error about `path`.
  public init(path: String, kind: Kind, reason: String) {
    self.path = path
    self.kind = kind
    self.reason = reason
  }

  /// "<path>: not a valid safetensors file: <reason>".
  public var description: String { "\(path): not a valid safetensors file: \(reason)" }
}

/// A safetensors file: named tensors plus string metadata. The one reader and writer of the format in the package:
/// the engine reads packed models with it, the trainer its checkpoints (`SafeTensorsFile.write(to:)`).
///
/// Byte layout (all integers little-endian):
/// ```
/// [0, 8)          N: UInt64, the header length
/// [8, 8 + N)      JSON header, space-padded so that N % 8 == 0:
///                 {"__metadata__": {"k": "v"}, "name": {"data_offsets": [b, e], "dtype": "F32", "shape": [..]}}
/// [8 + N, end)    data section; tensor bytes at [b, e) relative to its start
/// ```
/// Writing is deterministic: header keys sorted, tensors laid out back to back in name order, no gaps.
/// Reading checks that the tensors tile the data section exactly (no overlap, no gap, nothing left over).
public struct SafeTensorsFile: Sendable, Equatable {
  /// Tensors by name.
  public var tensors: [String: SafeTensor]
  /// Free-form string metadata (`__metadata__`); values are strings (e.g. JSON text).
  public var metadata: [String: String]

  /// A file with the given tensors and metadata. Precondition: no tensor is named "__metadata__".
  public init(tensors: [String: SafeTensor] = [:], metadata: [String: String] = [:]) {
    precondition(tensors["__metadata__"] == nil, "a tensor may not be named __metadata__")
    self.tensors = tensors
    self.metadata = metadata
  }

  /// The largest header accepted when reading (as in the reference implementation), guarding against huge
  /// allocations from a corrupt length field.
  public static let maximumHeaderLength = 100_000_000

  /// The file's bytes; see the type's layout.
  public func serialized() -> [UInt8] {
    precondition(tensors["__metadata__"] == nil, "a tensor may not be named __metadata__")
    var header: [String: Any] = [:]
    var offset = 0
    let names = tensors.keys.sorted()
    for name in names {
      let t = tensors[name]!
      header[name] = [
        "dtype": t.dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + t.bytes.count],
      ] as [String: Any]
      offset += t.bytes.count
    }
    if !metadata.isEmpty { header["__metadata__"] = metadata }
    // Every value is a string, Int or array/dictionary thereof, so serialization cannot fail.
    var json = [UInt8](
      try! JSONSerialization.data(withJSONObject: header, options: [.sortedKeys, .withoutEscapingSlashes]))
    // Pad with spaces so the data section starts 8-byte aligned (readers may map it directly).
    while json.count % 8 != 0 { json.append(0x20) }
    var out: [UInt8] = []
    out.reserveCapacity(8 + json.count + offset)
    withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
    out.append(contentsOf: json)
    for name in names { out.append(contentsOf: tensors[name]!.bytes) }
    return out
  }

  /// Reads and validates the safetensors file at `path`. Throws `SafeTensorsError` naming the path.
  public static func read(from path: String) throws -> SafeTensorsFile {
    if let problem = unreadableFileProblem(path) {
      throw SafeTensorsError(path: path, kind: .unreadable, reason: problem)
    }
    let data: Data
    do {
      data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
      throw SafeTensorsError(path: path, kind: .unreadable, reason: "the file cannot be read (an I/O error); check the disk and the file")
    }
    return try SafeTensorsFile(bytes: [UInt8](data), source: path)
  }

  /// Parses and validates safetensors bytes; `source` names them in errors.
  /// Throws `SafeTensorsError` for every deviation from the format (see `SafeTensorsError.Kind`).
  public init(bytes: [UInt8], source: String = "<memory>") throws {
    func fail(_ kind: SafeTensorsError.Kind, _ reason: String) -> SafeTensorsError {
      SafeTensorsError(path: source, kind: kind, reason: reason)
    }
    guard bytes.count >= 8 else {
      throw fail(.tooShort, "the file has \(bytes.count) bytes, fewer than the 8-byte header length (truncated?)")
    }
    var headerLength: UInt64 = 0
    for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
    guard headerLength <= UInt64(bytes.count - 8), headerLength <= UInt64(SafeTensorsFile.maximumHeaderLength) else {
      throw fail(
        .headerBeyondFile,
        "the header length is \(headerLength) bytes but only \(bytes.count - 8) bytes follow it (truncated?)")
    }
    let headerEnd = 8 + Int(headerLength)
    let headerBytes = Data(bytes[8..<headerEnd])
    let parsed: Any
    do {
      parsed = try JSONSerialization.jsonObject(with: headerBytes)
    } catch {
      throw fail(.invalidHeader, "the header is not valid JSON (\(error.localizedDescription))")
    }
    guard let header = parsed as? [String: Any] else {
      throw fail(.invalidHeader, "the header must be a JSON object, found \(type(of: parsed))")
    }
    let dataSize = bytes.count - headerEnd

    var metadata: [String: String] = [:]
    if let rawMetadata = header["__metadata__"] {
      guard let map = rawMetadata as? [String: Any] else {
        throw fail(.invalidHeader, "__metadata__ must be an object of strings")
      }
      for (key, value) in map {
        guard let string = value as? String else {
          throw fail(.invalidHeader, "__metadata__[\"\(key)\"] must be a string, found \(value)")
        }
        metadata[key] = string
      }
    }

    var tensors: [String: SafeTensor] = [:]
    var spans: [(name: String, begin: Int, end: Int)] = []
    for (name, rawEntry) in header where name != "__metadata__" {
      guard let entry = rawEntry as? [String: Any] else {
        throw fail(.invalidHeader, "tensor '\(name)' must be an object with dtype, shape and data_offsets")
      }
      guard let dtypeName = entry["dtype"] as? String else {
        throw fail(.invalidHeader, "tensor '\(name)' has no string dtype")
      }
      guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
        throw fail(
          .unknownDType,
          "tensor '\(name)' has dtype '\(dtypeName)'; supported: \(SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", "))")
      }
      guard let shape = SafeTensorsFile.integers(entry["shape"]), shape.allSatisfy({ $0 >= 0 }) else {
        throw fail(.invalidHeader, "tensor '\(name)' shape must be an array of non-negative integers")
      }
      guard let offsets = SafeTensorsFile.integers(entry["data_offsets"]), offsets.count == 2 else {
        throw fail(.invalidHeader, "tensor '\(name)' data_offsets must be two integers [begin, end]")
      }
      let (begin, end) = (offsets[0], offsets[1])
      guard begin >= 0, begin <= end, end <= dataSize else {
        throw fail(
          .badOffsets,
          "tensor '\(name)' data_offsets [\(begin), \(end)] are outside the \(dataSize)-byte data section (truncated?)")
      }
      // Overflow-checked so a huge shape cannot wrap into a plausible size.
      var elements = 1
      for d in shape {
        let (product, overflow) = elements.multipliedReportingOverflow(by: d)
        guard !overflow else { throw fail(.badOffsets, "tensor '\(name)' shape \(shape) is too large") }
        elements = product
      }
      let (expected, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
      guard !overflow, expected == end - begin else {
        throw fail(
          .badOffsets,
          "tensor '\(name)' is \(dtypeName) \(shape), which needs \(expected) bytes, but data_offsets [\(begin), \(end)] span \(end - begin)")
      }
      spans.append((name, begin, end))
      tensors[name] = SafeTensor(dtype: dtype, shape: shape, bytes: Array(bytes[(headerEnd + begin)..<(headerEnd + end)]))
    }

    // The tensors must tile the data section: sorted by offset, each starts where the previous one ended.
    spans.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
    var covered = 0
    for span in spans {
      if span.begin < covered {
        throw fail(.badOffsets, "tensor '\(span.name)' at [\(span.begin), \(span.end)] overlaps the previous tensor (which ends at \(covered))")
      }
      if span.begin > covered {
        throw fail(.uncoveredData, "data bytes [\(covered), \(span.begin)) belong to no tensor")
      }
      covered = span.end
    }
    if covered != dataSize {
      throw fail(.uncoveredData, "data bytes [\(covered), \(dataSize)) at the end belong to no tensor")
    }
    self.tensors = tensors
    self.metadata = metadata
  }

  /// An array of JSON integers as [Int], or nil (rejects fractions and booleans).
  private static func integers(_ value: Any?) -> [Int]? {
    guard let array = value as? [Any] else { return nil }
    var out: [Int] = []
    for element in array {
      // JSON booleans also arrive as NSNumber (class __NSCFBoolean), and `is Bool` is true for any 0/1 NSNumber
      // on Linux, so the class name is the only portable way to tell `true` from `1`.
      guard let number = element as? NSNumber, !String(describing: type(of: number)).contains("Boolean") else {
        return nil
      }
      let d = number.doubleValue
      guard d == d.rounded(), abs(d) < 0x1p62 else { return nil }
      out.append(number.intValue)
    }
    return out
  }
}

/// Why `path` cannot be read as a file, in words a user can act on (nil when it is a readable regular file).
func unreadableFileProblem(_ path: String) -> String? {
  var isDirectory: ObjCBool = false
  guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return "no such file" }
  if isDirectory.boolValue { return "this is a directory; pass the file inside it (e.g. \(path)/model.safetensors)" }
  guard FileManager.default.isReadableFile(atPath: path) else {
    return "the file is not readable (permission denied); check its permissions"
  }
  return nil
}
