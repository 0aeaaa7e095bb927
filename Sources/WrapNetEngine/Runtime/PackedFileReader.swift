import Foundation

/// A minimal reader of the safetensors container for the engine (which cannot use the trainer's reader):
/// 8-byte little-endian header length N, N bytes of JSON header, then the data section; every tensor's
/// `data_offsets` must lie inside the data section, match dtype × shape, and the tensors must tile it exactly.
struct PackedFileReader {
  struct Entry {
    var dtype: String
    var shape: [Int]
    /// Absolute byte range in `bytes`.
    var range: Range<Int>
  }
  let bytes: [UInt8]
  var metadata: [String: String] = [:]
  var tensors: [String: Entry] = [:]

  static let dtypeSizes = ["U8": 1, "I8": 1, "I16": 2, "I32": 4, "I64": 8, "F32": 4, "F64": 8]

  init(bytes: [UInt8], source: String) throws {
    self.bytes = bytes
    func fail(_ reason: String) -> InferenceModelError {
      InferenceModelError(path: source, reason: "not a valid packed model file: \(reason)")
    }
    guard bytes.count >= 8 else { throw fail("the file has \(bytes.count) bytes, fewer than the 8-byte header length (truncated?)") }
    var n: UInt64 = 0
    for i in 0..<8 { n |= UInt64(bytes[i]) << (8 * UInt64(i)) }
    guard n <= UInt64(bytes.count - 8), n <= 100_000_000 else {
      throw fail("the header length is \(n) bytes but only \(bytes.count - 8) bytes follow it (truncated?)")
    }
    let headerEnd = 8 + Int(n)
    let parsed: Any
    do { parsed = try JSONSerialization.jsonObject(with: Data(bytes[8..<headerEnd])) } catch {
      throw fail("the header is not valid JSON")
    }
    guard let header = parsed as? [String: Any] else { throw fail("the header is not a JSON object") }
    if let raw = header["__metadata__"] {
      guard let map = raw as? [String: Any] else { throw fail("__metadata__ is not an object") }
      for (k, v) in map {
        guard let s = v as? String else { throw fail("__metadata__['\(k)'] is not a string") }
        metadata[k] = s
      }
    }
    let dataSize = bytes.count - headerEnd
    var spans: [(Int, Int, String)] = []
    for (name, raw) in header where name != "__metadata__" {
      guard let e = raw as? [String: Any], let dtype = e["dtype"] as? String, let size = Self.dtypeSizes[dtype],
        let shapeAny = e["shape"] as? [Any], let offAny = e["data_offsets"] as? [Any], offAny.count == 2
      else { throw fail("tensor '\(name)' needs a known dtype, a shape and two data_offsets") }
      let shape = shapeAny.compactMap { ($0 as? NSNumber)?.intValue }
      let offsets = offAny.compactMap { ($0 as? NSNumber)?.intValue }
      guard shape.count == shapeAny.count, offsets.count == 2, shape.allSatisfy({ $0 >= 0 && $0 < 1 << 40 }) else {
        throw fail("tensor '\(name)' has a malformed shape or data_offsets")
      }
      let (b, end) = (offsets[0], offsets[1])
      guard b >= 0, b <= end, end <= dataSize else {
        throw fail("tensor '\(name)' data_offsets [\(b), \(end)] lie outside the \(dataSize)-byte data section (truncated?)")
      }
      var count = 1
      for d in shape {
        let (p, o) = count.multipliedReportingOverflow(by: d)
        guard !o, p < 1 << 40 else { throw fail("tensor '\(name)' shape \(shape) is too large") }
        count = p
      }
      guard count * size == end - b else {
        throw fail("tensor '\(name)' is \(dtype) \(shape) (\(count * size) bytes) but data_offsets span \(end - b)")
      }
      tensors[name] = Entry(dtype: dtype, shape: shape, range: (headerEnd + b)..<(headerEnd + end))
      spans.append((b, end, name))
    }
    spans.sort { ($0.0, $0.1, $0.2) < ($1.0, $1.1, $1.2) }
    var covered = 0
    for (b, end, name) in spans {
      guard b == covered else {
        throw fail(b < covered ? "tensor '\(name)' overlaps the previous one" : "data bytes [\(covered), \(b)) belong to no tensor")
      }
      covered = end
    }
    guard covered == dataSize else { throw fail("data bytes [\(covered), \(dataSize)) belong to no tensor") }
  }
}
