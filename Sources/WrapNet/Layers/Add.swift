// Elementwise sum for residual connections (the ResNet block is composed by the model code).

/// Elementwise sum y = a + b (residual connection). Shapes: `a` and `b` equal → same shape.
public func add(_ a: Tensor, _ b: Tensor) -> Tensor {
  // a [any], b [same] -> output [same]
  precondition(a.shape == b.shape, "add: shapes \(a.shape) and \(b.shape) must be equal")
  var out = a
  b.data.withUnsafeBufferPointer { pb in
    out.data.withUnsafeMutableBufferPointer { po in
      for i in 0..<po.count { po[i] += pb[i] }
    }
  }
  return out
}

/// Backward of `add(_:_:)`: y = a + b gives dL/da = dL/dy and dL/db = dL/dy. Shapes: any → (same, same).
public func addBackward(_ gradOutput: Tensor) -> (gradA: Tensor, gradB: Tensor) {
  // gradOutput [any] -> (gradA [same], gradB [same])
  (gradOutput, gradOutput)
}
