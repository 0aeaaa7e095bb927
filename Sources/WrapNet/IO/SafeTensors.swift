import Foundation
import WrapNetEngine

// The trainer's side of the package's safetensors reader and writer (`WrapNetEngine/IO/SafeTensors.swift`):
// Float `Tensor`s in and out, and atomic writes.

extension SafeTensor {
  /// An F32 tensor with the shape and elements of `tensor`.
  public init(_ tensor: Tensor) {
    self.init(shape: tensor.shape, values: tensor.data)
  }

  /// The tensor as a Float `Tensor`; nil unless the dtype is F32.
  public var floatTensor: Tensor? {
    values(as: Float.self).map { Tensor(shape: shape, data: $0) }
  }
}

extension SafeTensorsFile {
  /// A file of F32 tensors (e.g. model parameters or `Optimizer.stateTensors()`) plus metadata.
  public init(floatTensors: [String: Tensor], metadata: [String: String] = [:]) {
    self.init(tensors: floatTensors.mapValues { SafeTensor($0) }, metadata: metadata)
  }

  /// The F32 tensors whose names start with `prefix`, as `Tensor`s keyed by full name; tensors of other dtypes
  /// are left out (use `tensors` for those).
  public func floatTensors(withPrefix prefix: String = "") -> [String: Tensor] {
    var out: [String: Tensor] = [:]
    for (name, tensor) in tensors where name.hasPrefix(prefix) {
      if let t = tensor.floatTensor { out[name] = t }
    }
    return out
  }

  /// Atomically writes the file to `path` (temporary file + fsync + rename). Throws `FileError` naming the path.
  public func write(to path: String) throws {
    try AtomicFile.write(serialized(), to: path)
  }
}
