import Foundation
import WrapNetEngine

/// Per-image outputs of an evaluation as CSV text, so another implementation can be compared with this one image
/// by image (docs/FORMAT.md, "Per-image outputs"). Rows are images in dataset order, index 0 first; lines end in
/// `\n`; no quoting (no field holds a comma).
///
///     predictions:  index,label,prediction            e.g. 0,7,7
///     logits:       index,logit_0,...,logit_{C-1}     e.g. 0,-3.25,0.5,...
///
/// Logits are the engine's Float32 values printed as Swift's shortest decimal that reads back as the same Float32
/// (`Float.description`: `-0.0`, `1.5`, `3.0517578e-05`; `inf`, `-inf` and `nan` for non-finite values), so
/// parsing a field as binary32 (C's `strtof`, NumPy's `float32`) gives back the exact bits.
public enum PerImageOutputs {
  /// The predictions table: header, then `index,label,prediction` per image. Precondition: as many labels as
  /// predictions.
  public static func predictionsCSV(labels: [UInt8], predictions: [Int]) -> String {
    precondition(labels.count == predictions.count, "\(labels.count) labels for \(predictions.count) predictions")
    var text = "index,label,prediction\n"
    for (i, (label, prediction)) in zip(labels, predictions).enumerated() { text += "\(i),\(label),\(prediction)\n" }
    return text
  }

  /// The logits table: header `index,logit_0,...,logit_{C-1}`, then one row per image of `logits` [N, classes].
  /// Precondition: `classes >= 1` and `logits.count` a multiple of it.
  public static func logitsCSV(_ logits: [Float], classes: Int) -> String {
    precondition(classes >= 1 && logits.count % classes == 0, "\(logits.count) logits do not form rows of \(classes)")
    var text = "index," + (0..<classes).map { "logit_\($0)" }.joined(separator: ",") + "\n"
    for i in 0..<(logits.count / classes) {
      text += "\(i)," + logits[(i * classes)..<((i + 1) * classes)].map(\.description).joined(separator: ",") + "\n"
    }
    return text
  }

  /// Why `path`, given to `flag`, cannot receive a table, or nil: it is empty or names a directory. (A missing or
  /// read-only parent directory is reported by the write itself.)
  public static func problem(with path: String, flag: String) -> String? {
    if path.isEmpty { return "\(flag) needs a file path, got an empty one" }
    var isDirectory: ObjCBool = false
    if path.hasSuffix("/") || (FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue) {
      return "\(flag) \(path) is a directory; give the path of a file to write, e.g. \(path.hasSuffix("/") ? path : path + "/")outputs.csv"
    }
    return nil
  }

  /// Writes `text` to `path` atomically (temporary file, sync, rename: readers never see a half-written table).
  /// Throws `FileError` naming the path for a directory or a failed write.
  public static func write(_ text: String, to path: String, flag: String) throws {
    if let problem = problem(with: path, flag: flag) { throw FileError(path: path, reason: problem) }
    try AtomicFile.write(Array(text.utf8), to: path)
  }
}
