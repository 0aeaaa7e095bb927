import ArgumentParser
import Foundation
import WrapNet
import WrapNetEngine

/// `wrapnet convert`: a trained checkpoint → a packed integer engine model.
struct ConvertCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "convert",
    abstract: "Convert a trained model into a packed integer engine model (see docs/FORMAT.md).",
    discussion: """
      Packs the integer weight codes (1 bit binary, 2 bits ternary, k bits int-k), the accumulators, and the exact
      post-processing (per-channel tables for low-bit layers, integer thresholds for 32-bit layers, scale and bias
      for the logits), computed with the trainer's own functions so the engine reproduces it bit for bit.
      Supports every zoo model (mlp, cnn, vgg-small, resnet20) with exact, wrap, cyclic or clamp accumulators and
      a wide (32-bit) last layer. Low-bit layers up to 12 bits get tables; wider ones store the batch-norm and
      quantizer parameters and the engine evaluates the trainer's Float functions per value.

      Example:
        wrapnet convert runs/mlp-cyclic8/model.safetensors --out runs/mlp-cyclic8/engine.safetensors
        wrapnet eval runs/mlp-cyclic8/engine.safetensors --compare runs/mlp-cyclic8/model.safetensors
      """)

  @Argument(help: "A model.safetensors written by `wrapnet train`.")
  var checkpoint: String

  @Option(help: "Where to write the packed model (written atomically).")
  var out: String

  func validate() throws {
    if out.isEmpty { throw ValidationError("--out needs a file name, e.g. --out runs/mlp/engine.safetensors") }
  }

  mutating func run() throws {
    let file = try EngineExport.convert(checkpoint: checkpoint, to: out)
    let model = try InferenceModel(contentsOf: out)
    let bytes = file.serialized().count
    print("\(out): \(model.architecture) engine model, \(bytes) bytes")
    let width = (model.denseLayers.map(\.name.count).max() ?? 0) + 2
    for layer in model.denseLayers {
      let output: String
      switch layer.output {
      case .table: output = "table"
      case .thresholds: output = "thresholds"
      case .residualTable: output = "table with residual add"
      case .residualThresholds: output = "thresholds with residual add"
      case .float(let f): output = f.shortcut == nil ? "Float post-processing" : "Float post-processing with residual add"
      case .logits: output = "logits"
      }
      print("  " + layer.name.padding(toLength: width, withPad: " ", startingAt: 0)
        + "\(layer.weights.kind) [\(layer.weights.m), \(layer.weights.k)], \(layer.accumulatorBits)-bit \(layer.accumulatorMode.rawValue) → \(output)")
    }
  }
}
