import ArgumentParser
import Foundation
import WrapNet
import WrapNetEngine
import WrapNetHardware

/// `wrapnet rtl`: Verilog for a trained model's layers (checked against the engine on real images), or for one
/// processing element / output-stationary array for synthesis.
struct RTLCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "rtl",
    abstract: "Generate Verilog for WrapNet layers and PEs, with test vectors from the integer engine, and simulate it.",
    discussion: """
      With MODEL (a packed engine model from `wrapnet convert`): writes, for every dense layer (or --layers), a
      layer unit (one PE with --parallel products per cycle, the weights as a ROM, the output stage as comparators
      on the b-bit accumulator), a self-checking testbench and test vectors from the engine on --images real test
      images (input codes, every accumulator value, every output code). When Icarus Verilog is installed it
      simulates each unit and prints the mismatch counts (--no-simulate skips). --network also chains the layers of
      an mlp into one module and compares its logit sums and predicted classes with the engine's.
      --acc-mode/--acc-bits build the same layers with another accumulator (e.g. saturate): values are then checked
      against that PE's software model.

      With --pe: writes one PE (`pe_<weights>_a<A>_b<B>_<mode>_p<P>.v`) and a testbench on seeded random codes;
      with --array RxC an output-stationary array of P = 1 PEs. The last line printed is the .v path.

      Accumulator modes: wrap (b-bit two's complement; every adder of the tree is cut to b bits), saturate (b-bit,
      clamped once per cycle after the exact tree sum; with P = 1 after every product, the trainer's order), exact
      (32-bit register, the baseline), clamp (a register as wide as --fan-in needs, one clamp at the output).

      Examples:
        wrapnet rtl runs/mlp-cyclic8.engine.safetensors --out rtl/mlp --images 100 --parallel 64 --network
        wrapnet rtl runs/cnn-cyclic8.engine.safetensors --out rtl/cnn --layers conv2,conv3 --images 100
        wrapnet rtl --pe --weights ternary --act-bits 2 --acc-bits 8 --acc-mode wrap --parallel 16 --out rtl/pe
        wrapnet rtl --array 8x8 --weights ternary --act-bits 2 --acc-bits 8 --acc-mode saturate --out rtl/array
      """)

  @Argument(help: "A packed engine model (from `wrapnet convert`); omit with --pe or --array.")
  var model: String?

  @Option(name: .customLong("out"), help: "Output directory (replaced as a whole when everything is written); not with --plan.")
  var outOption: String?

  /// `--out`, checked present by `validate`.
  var out: String { outOption ?? "" }

  @Option(help: "Comma-separated layer names to build (default: every dense layer).")
  var layers: String?

  @Option(help: "Products per cycle P of each PE (default: 16 for a model, 1 for --pe).")
  var parallel: Int?

  @Option(help: "Real test images to trace and simulate (default 100).")
  var images: Int = 100

  @Option(help: "Dataset of the test images: mnist, fashion-mnist or cifar10 (default mnist).")
  var dataset: String = "mnist"

  @OptionGroup var data: DataDirOptions

  @Option(help: "Accumulator mode of the PEs: wrap, saturate, exact or clamp (default: the model's own; required with --pe/--array).")
  var accMode: String?

  @Option(
    help: "Accumulator width b, 2...32 (default: the model's own; required with --pe/--array unless exact).",
    transform: AccumulatorWidth.argument("--acc-bits"))
  var accBits: AccumulatorWidth?

  @Flag(help: "Write one PE for synthesis instead of a model's layers.")
  var pe = false

  @Option(help: "Write an output-stationary array of RxC PEs (P = 1), e.g. 8x8.")
  var array: String?

  @Option(help: "--pe/--array: weight codes binary, ternary or int2 ... int8.")
  var weights: String = "ternary"

  @Option(help: "--pe/--array: activation code bits, 1...8.")
  var actBits: Int = 2

  @Option(help: "--pe/--array: dot-product length the clamp register must hold (default 1024).")
  var fanIn: Int = 1024

  @Option(help: "Print the dense layers of a zoo architecture (mlp, cnn, vgg-small, resnet20) as JSON: fan-in, outputs and MACs per image, weights, maximum input code; for hardware cost tables.")
  var plan: String?

  @Flag(help: "Chain the layers of an mlp into one module and simulate whole images.")
  var network = false

  @Option(help: "Dump the PE nets of each layer unit to <unit>.vcd for the first R rows (energy proxy).")
  var vcdRows: Int = 0

  @Flag(help: "Write the files without simulating them.")
  var noSimulate = false

  @Option(help: "Simulator: verilator (compiles for 2-20 s, then fast), iverilog (starts at once, slow), or auto (verilator when installed).")
  var simulator: String = "auto"

  @Flag(help: "Print one JSON object instead of text.")
  var json = false

  func validate() throws {
    if plan != nil { return }
    guard let outOption, !outOption.isEmpty else { throw ValidationError("--out DIR is required: the directory that receives the Verilog") }
    if pe || array != nil {
      if model != nil { throw ValidationError("give either MODEL or --pe/--array, not both") }
      if pe && array != nil { throw ValidationError("--pe and --array are exclusive") }
      guard accMode != nil else { throw ValidationError("--pe/--array need --acc-mode wrap, saturate, exact or clamp") }
      if accMode != "exact" && accBits == nil { throw ValidationError("--pe/--array need --acc-bits (\(AccumulatorWidth.supported)) unless --acc-mode exact") }
      if network || layers != nil { throw ValidationError("--network and --layers apply to a MODEL, not to --pe/--array") }
    } else if model == nil {
      throw ValidationError("give a packed engine MODEL (from `wrapnet convert`), or --pe / --array for one PE")
    }
    if let accMode, HardwareAccumulatorMode(rawValue: accMode) == nil {
      throw ValidationError("unknown --acc-mode '\(accMode)'; choose wrap, saturate, exact or clamp")
    }
    if let p = parallel, !(1...1024).contains(p) { throw ValidationError("--parallel must be in 1...1024, got \(p)") }
    guard (1...10_000).contains(images) else { throw ValidationError("--images must be in 1...10000, got \(images)") }
    guard vcdRows >= 0 else { throw ValidationError("--vcd-rows must be >= 0, got \(vcdRows)") }
    if HardwareWeightKind(name: weights) == nil {
      throw ValidationError("unknown --weights '\(weights)'; choose binary, ternary or int2 ... int8")
    }
    if DatasetName(rawValue: dataset) == nil {
      throw ValidationError("unknown --dataset '\(dataset)'; choose mnist, fashion-mnist or cifar10")
    }
    guard simulator == "auto" || SimulatorKind(rawValue: simulator) != nil else {
      throw ValidationError("unknown --simulator '\(simulator)'; choose auto, verilator or iverilog")
    }
    if let array, Self.arraySize(array) == nil { throw ValidationError("--array must look like 8x8 (rows x columns), got '\(array)'") }
  }

  static func arraySize(_ text: String) -> (Int, Int)? {
    let parts = text.lowercased().split(separator: "x")
    guard parts.count == 2, let r = Int(parts[0]), let c = Int(parts[1]) else { return nil }
    return (r, c)
  }

  func run() throws {
    do {
      if let plan { try runPlan(plan) } else if pe || array != nil { try runPE() } else { try runModel() }
    } catch let error as HardwareError {
      throw ValidationError(error.description)
    }
  }

  /// The simulator to use: the one asked for (it must be installed), or verilator / iverilog, whichever is.
  func simulatorKind() throws -> SimulatorKind {
    if let kind = SimulatorKind(rawValue: simulator) {
      guard noSimulate || Simulator.isAvailable(kind) else {
        throw ValidationError("\(kind.rawValue) is not installed: run scripts/setup.sh, choose another --simulator, or pass --no-simulate")
      }
      return kind
    }
    if Simulator.isAvailable(.verilator) { return .verilator }
    if Simulator.isAvailable(.iverilog) || noSimulate { return .iverilog }
    throw ValidationError("no Verilog simulator found (verilator or iverilog): run scripts/setup.sh, or pass --no-simulate")
  }

  /// The zoo architecture's dense layers with their sizes (the trainer's model, built without data).
  func runPlan(_ architecture: String) throws {
    let colour = ["vgg-small", "resnet20"].contains(architecture)
    let config = ModelConfig(
      architecture: architecture, inputChannels: colour ? 3 : 1, inputHeight: colour ? 32 : 28,
      inputWidth: colour ? 32 : 28, weightBits: HardwareWeightKind(name: weights) == .binary ? 1 : 2,
      activationBits: actBits)
    do { try config.validate() } catch { throw ValidationError("--plan: \(error)") }
    var model = try WrapModel(config: config, seed: 1)
    var layers: [[String: Any]] = []
    for (h, w, layer) in model.wrapLayerInputSizes() {
      let macs = layer.macs(height: h, width: w)
      layers.append([
        "name": layer.name, "fan_in": layer.geometry.fanIn, "outputs": macs / layer.geometry.fanIn, "macs": macs,
        "low_bit": model.isLowBitLayer(layer.name), "channels": layer.geometry.outChannels,
        "max_input_code": layer.maxInputCode, "weights": layer.weightFormat.name,
      ])
    }
    let object: [String: Any] = [
      "architecture": architecture, "input_shape": [config.inputChannels, config.inputHeight, config.inputWidth],
      "activation_bits": actBits, "layers": layers,
    ]
    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    print(String(decoding: data, as: UTF8.self))
  }

  func runPE() throws {
    let mode = HardwareAccumulatorMode(rawValue: accMode!)!
    let config = try PEConfig(
      weights: HardwareWeightKind(name: weights)!, activationBits: actBits, accumulatorWidth: accBits ?? .wide, mode: mode,
      parallel: parallel ?? 1, fanIn: fanIn)
    // One PE's testbench is short: Icarus Verilog (no compile step) unless another simulator is asked for.
    let kind = simulator == "auto" && (Simulator.isAvailable(.iverilog) || noSimulate) ? .iverilog : try simulatorKind()
    var result: SimulationResult? = nil
    let path: String
    if let array, let (r, c) = Self.arraySize(array) {
      let a = try ArrayConfig(pe: config, rows: r, columns: c)
      result = try PERTL.writeArray(a, to: out, simulate: !noSimulate, kind: kind)
      path = "\(out)/\(a.moduleName).v"
    } else {
      result = try PERTL.writePE(config, to: out, simulate: !noSimulate, kind: kind)
      path = "\(out)/\(config.moduleName).v"
    }
    if let result {
      print("simulated: \(result["values"]) accumulator values checked, \(result.mismatches) mismatches")
      for line in result.mismatchLines { print("  \(line)") }
      if result.mismatches > 0 { throw ExitCode(1) }
    }
    print(path)
  }

  func runModel() throws {
    let engine = try InferenceModel(contentsOf: model!)
    var test = try DatasetSplits.load(DatasetName(rawValue: dataset)!, dataDirectory: data.resolved).test
    guard [test.channels, test.height, test.width] == engine.inputShape else {
      throw ValidationError("\(model!) expects \(engine.inputShape) images but \(dataset) has \([test.channels, test.height, test.width])")
    }
    test = test.subset(first: min(images, test.count))
    let simulate = !noSimulate
    let kind = try simulatorKind()
    let request = RTLRequest(
      parallel: parallel ?? 16, layers: layers.map { $0.split(separator: ",").map(String.init) },
      mode: accMode.flatMap(HardwareAccumulatorMode.init(rawValue:)), width: accBits, simulate: simulate,
      vcdRows: vcdRows, network: network, simulator: kind)
    let progress: (String) -> Void = { line in
      FileHandle.standardError.write(Data((line + "\n").utf8))
    }
    let (reports, net) = try ModelRTL.write(
      model: engine, pixels: test.images, count: test.count, request: request, to: out, progress: progress)
    let failed = reports.contains { $0.accumulatorMismatches + $0.codeMismatches > 0 }
      || (net.map { $0.logitMismatches + $0.predictionMismatches > 0 } ?? false)
    if json {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      print(String(decoding: try encoder.encode(RTLOutput(model: model!, images: test.count, layers: reports, network: net)), as: UTF8.self))
    } else {
      print("\(model!): \(engine.architecture), \(test.count) \(dataset) test images, files in \(out)")
      for r in reports {
        let sim = r.simulated
          ? "\(r.values) values, accumulator mismatches \(r.accumulatorMismatches), code mismatches \(r.outputStage ? String(r.codeMismatches) : "-"), \(r.cycles) cycles, \(String(format: "%.1f", r.seconds)) s"
          : "not simulated"
        print("  \(r.layer.padding(toLength: 8, withPad: " ", startingAt: 0)) \(r.pe): \(sim)")
      }
      if let n = net {
        let sim = n.simulated
          ? "\(n.images) images, logit-sum mismatches \(n.logitMismatches), class mismatches \(n.predictionMismatches), \(n.cycles) cycles, \(String(format: "%.1f", n.seconds)) s"
          : "not simulated"
        print("  network  \(n.module): \(sim)")
      }
    }
    if failed { throw ExitCode(1) }
  }
}

/// The JSON printed by `wrapnet rtl MODEL --json`.
private struct RTLOutput: Encodable {
  var model: String
  var images: Int
  var layers: [LayerRTLReport]
  var network: NetworkRTLReport?
}
