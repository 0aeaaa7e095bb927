/// WrapNetEngine: integer inference with b-bit wrap-around accumulators, and the wrap-around arithmetic core
/// (wrapping, saturation, cyclic activation, quantizers, overflow penalty) that the trainer reuses.
public enum WrapNetEngineInfo {
  /// Version of the engine library.
  public static let version = "0.1.0"
}
