/// A problem with a file, naming the file and saying what went wrong and what to do: the one error type for the
/// files the package reads and writes (packed models as `InferenceModelError`, checkpoints as `CheckpointError`,
/// atomic writes and JSON files).
public struct FileError: Error, CustomStringConvertible, Sendable, Equatable {
  /// The file concerned.
  public var path: String
  /// What went wrong and what to do.
  public var reason: String

  /// An error about `path`.
  public init(path: String, reason: String) {
    self.path = path
    self.reason = reason
  }

  /// "<path>: <reason>".
  public var description: String { "\(path): \(reason)" }
}
