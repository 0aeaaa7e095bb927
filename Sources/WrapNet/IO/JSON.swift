import Foundation
import WrapNetEngine

/// Pretty, deterministic JSON files (sorted keys, two-level indentation, trailing newline), written atomically.
///
/// Used for run summaries (`summary.json`) and configs, so that diffs between runs show only real changes.
public enum JSONFile {
  /// The bytes `write(_:to:)` would write for an `Encodable` value: pretty-printed, keys sorted, slashes unescaped,
  /// ending in a newline. Throws when the value cannot be encoded (e.g. a NaN Float).
  public static func encode<T: Encodable>(_ value: T) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    var data = try encoder.encode(value)
    data.append(0x0A)
    return data
  }

  /// Atomically writes `value` as pretty, sorted-key JSON to `path`. Throws `FileError` naming the path.
  public static func write<T: Encodable>(_ value: T, to path: String) throws {
    let data: Data
    do {
      data = try encode(value)
    } catch {
      throw FileError(path: path, reason: "cannot encode JSON (\(error)); NaN and infinity are not valid JSON numbers")
    }
    try AtomicFile.write(data, to: path)
  }

  /// Atomically writes a JSONSerialization-compatible object (dictionaries, arrays, strings, numbers, bools,
  /// NSNull) as pretty, sorted-key JSON. Throws `FileError` when the object is not valid JSON.
  public static func write(jsonObject object: Any, to path: String) throws {
    guard JSONSerialization.isValidJSONObject(object) else {
      throw FileError(
        path: path,
        reason: "not a valid JSON object (top level must be an array or dictionary of JSON values, no NaN/infinity)")
    }
    var data = try JSONSerialization.data(
      withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    data.append(0x0A)
    try AtomicFile.write(data, to: path)
  }

  /// Reads and decodes a JSON file. Throws `FileError` naming the path when it cannot be read or decoded.
  public static func read<T: Decodable>(_ type: T.Type, from path: String) throws -> T {
    let data: Data
    do {
      data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
      throw FileError(path: path, reason: "cannot read file (\(error.localizedDescription))")
    }
    do {
      return try JSONDecoder().decode(T.self, from: data)
    } catch {
      throw FileError(path: path, reason: "invalid JSON for \(T.self): \(error)")
    }
  }
}
