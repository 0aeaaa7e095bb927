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
      Packs the integer weight codes (1 bit binary, 2 bits ternary, k bits int-k), the accumulators, and the \
      exact post-processing, computed with the trainer's own functions so that the engine reproduces the \
      trainer bit for bit: per-channel tables for low-bit layers up to 12 bits (indexed also by the shortcut \
      code in the last layer of a residual block), the batch-norm and quantizer parameters for wider low-bit \
      layers (the engine evaluates the trainer's Float functions per value), integer thresholds for 32-bit \
      layers, scale and bias for the logits.

      Supports every zoo model (mlp, cnn, vgg-small, resnet20 with its residual adds and sum pooling) with \
      exact, wrap, cyclic, clamp or avoid accumulators and a wide (32-bit) last layer; saturate accumulators \
      and low-bit last layers are refused with the reason. Accumulator preloads (`train --preload`, on by default) of wrap and \
      cyclic layers are folded into their tables: a register that starts at p holds wrap(z + p) = \
      wrap(wrap(z) + p), so the table of the wrapped sum reads them at no cost.

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
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory), isDirectory.boolValue {
      throw ValidationError("--out \(out) is a directory; give a file name, e.g. --out \(out)/engine.safetensors")
    }
  }

  mutating func run() throws {
    var source = try Checkpoint.load(from: checkpoint).model
    let file = try EngineExport.convert(source, checkpoint: checkpoint, to: out)
    let model = try InferenceModel(contentsOf: out)
    let bytes = file.serialized().count
    print("\(out): \(model.architecture) engine model, \(bytes) bytes")
    let width = (model.denseLayers.map(\.name.count).max() ?? 0) + 2
    // Accumulator preloads are folded into the tables, so only the checkpoint shows them.
    var preloads: [String: [Float]] = [:]
    source.network.visitWrapLayers { if let p = $0.preload, p.data.contains(where: { $0 != 0 }) { preloads[$0.name] = p.data } }
    // A recode step shows on the layer that reads its codes.
    var recode: [UInt8]? = nil
    for op in model.operations {
      if case .recode(let codes) = op { recode = codes }
      guard case .dense(let layer) = op else { continue }
      let output: String
      switch layer.output {
      case .table: output = "table"
      case .thresholds: output = "thresholds"
      case .residualTable: output = "table with residual add"
      case .residualThresholds: output = "thresholds with residual add"
      case .float(let f): output = f.shortcut == nil ? "Float post-processing" : "Float post-processing with residual add"
      case .logits: output = "logits"
      }
      // What the avx2 path runs on this layer with 8-bit lanes (the loader decides it from the file).
      var kernel = ""
      if case .lookup(_, let arcs) = layer.kernel {
        kernel = arcs != nil ? "  (avx2: lookup kernel, table as arcs)" : "  (avx2: lookup kernel)"
      }
      // The map's entries past the incoming codes are 0: show it up to its last nonzero entry.
      let input = recode.map { map in
        "; input codes re-coded as [\(map[...(map.lastIndex { $0 != 0 } ?? 0)].map(String.init).joined(separator: " "))]"
      } ?? ""
      recode = nil
      let preload = preloads[layer.name].map { p in
        "; register preloads \(Int(p.min()!))…\(Int(p.max()!)) folded into the table"
      } ?? ""
      print("  " + layer.name.padding(toLength: width, withPad: " ", startingAt: 0)
        + "\(layer.weights.kind) [\(layer.weights.m), \(layer.weights.k)], \(layer.accumulatorBits)-bit \(layer.accumulatorMode.rawValue) → \(output)\(kernel)\(input)\(preload)")
    }
  }
}
