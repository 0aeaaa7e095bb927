import Foundation
import WrapNetEngine

/// What `ModelRTL.write` builds: which layers, how wide, which accumulator, how much data, and whether to simulate.
public struct RTLRequest: Sendable {
  /// Products per cycle of every PE.
  public var parallel: Int
  /// Layer names to build (nil: every dense layer).
  public var layers: [String]?
  /// Accumulator mode and width replacing the layers' own (nil: the engine's).
  public var mode: HardwareAccumulatorMode?
  public var width: AccumulatorWidth?
  /// Run Icarus Verilog on every testbench.
  public var simulate: Bool
  /// Rows of each layer whose PE activity goes to a VCD file (0: none).
  public var vcdRows: Int
  /// Also build the whole network as one chained module and simulate it.
  public var network: Bool
  /// The simulator that runs the testbenches.
  public var simulator: SimulatorKind

  /// A request; see the properties.
  public init(
    parallel: Int = 16, layers: [String]? = nil, mode: HardwareAccumulatorMode? = nil, width: AccumulatorWidth? = nil,
    simulate: Bool = true, vcdRows: Int = 0, network: Bool = false, simulator: SimulatorKind = .iverilog
  ) {
    self.simulator = simulator
    (self.parallel, self.layers, self.mode, self.width) = (parallel, layers, mode, width)
    (self.simulate, self.vcdRows, self.network) = (simulate, vcdRows, network)
  }
}

/// One layer unit's files and, when simulated, its result.
public struct LayerRTLReport: Sendable, Codable, Equatable {
  public var layer: String
  public var module: String
  public var pe: String
  public var mode: String
  public var accumulatorBits: Int
  public var parallel: Int
  public var rows: Int
  public var outputStage: Bool
  public var simulated: Bool
  /// Checked accumulator values and codes, and their mismatches (simulated only).
  public var values: Int
  public var accumulatorMismatches: Int
  public var codeMismatches: Int
  public var cycles: Int
  public var seconds: Double
}

/// Writes and simulates the layer units of an engine model on real images.
public enum ModelRTL {
  /// Builds a `LayerUnit` and a testbench for every requested layer of `model` on `count` images (`pixels`, NCHW),
  /// writes them to `directory` (replaced as a whole when everything is written: never half-written), and simulates
  /// each when `request.simulate`. `progress` receives one line per step.
  public static func write(
    model: InferenceModel, pixels: [UInt8], count: Int, request: RTLRequest, to directory: String,
    progress: (String) -> Void = { _ in }
  ) throws -> (layers: [LayerRTLReport], network: NetworkRTLReport?) {
    let names = model.denseLayers.map(\.name)
    if let wanted = request.layers {
      for n in wanted where !names.contains(n) {
        throw HardwareError("the model has no layer '\(n)'; its dense layers are \(names.joined(separator: ", "))")
      }
    }
    progress("tracing \(count) image(s) through the engine model and checking the trace against the engine")
    let trace = try NetworkTrace(model: model, pixels: pixels, count: count)
    let inputCodes = inputMaxCodes(model)
    let staging = try StagingDirectory(final: directory)
    var committed = false
    defer { if !committed { staging.discard() } }
    var reports: [LayerRTLReport] = []
    for (index, t) in trace.layers.enumerated() where request.layers?.contains(t.layer.name) ?? true {
      let unit = try LayerUnit(
        trace: t, inputMaxCode: inputCodes[index], parallel: request.parallel, mode: request.mode, width: request.width)
      let tb = LayerTestbench(unit: unit, rows: t.rows, vcdRows: request.vcdRows)
      let name = unit.moduleName
      try staging.write("\(unit.pe.moduleName).v", PEVerilog.module(unit.pe))
      try staging.write("\(name).v", unit.verilog())
      try staging.write("tb_\(name).v", tb.verilog())
      try staging.write("\(name)_weights.hex", unit.weightsHex())
      if let steps = unit.stepsHex() { try staging.write("\(name)_steps.hex", steps) }
      try staging.write("\(name)_x.hex", unit.inputsHex(rows: t.rows))
      let expected = try tb.expectedHex()
      try staging.write("\(name)_acc.hex", expected.acc)
      if let code = expected.code { try staging.write("\(name)_code.hex", code) }
      var report = LayerRTLReport(
        layer: t.layer.name, module: name, pe: unit.pe.moduleName, mode: unit.pe.mode.rawValue,
        accumulatorBits: unit.pe.accumulatorBits, parallel: unit.pe.parallel, rows: t.rows,
        outputStage: unit.steps != nil, simulated: false, values: 0, accumulatorMismatches: 0, codeMismatches: 0,
        cycles: 0, seconds: 0)
      if request.simulate {
        progress("simulating \(name): \(t.rows) rows × \(unit.channels) channels × \(unit.groups) cycles (\(unit.pe.moduleName))")
        let result = try Simulator.run(
          directory: staging.path, sources: ["tb_\(name).v", "\(name).v", "\(unit.pe.moduleName).v"], top: "tb_\(name)",
          kind: request.simulator, trace: request.vcdRows > 0)
        for line in result.mismatchLines { progress("  \(line)") }
        report.simulated = true
        report.values = result["values"]
        report.accumulatorMismatches = result["acc_mismatches"]
        report.codeMismatches = result["code_mismatches"]
        report.cycles = result["cycles"]
        report.seconds = result.seconds
        guard report.values == t.rows * unit.channels else {
          throw HardwareError("testbench of \(name) checked \(report.values) values, expected \(t.rows * unit.channels)")
        }
      }
      reports.append(report)
    }
    var networkReport: NetworkRTLReport? = nil
    if request.network {
      networkReport = try NetworkRTL.write(
        trace: trace, model: model, inputMaxCodes: inputCodes, request: request, staging: staging, progress: progress)
    }
    let summary = RTLSummary(images: count, layers: reports, network: networkReport)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try staging.write("rtl.json", String(decoding: try encoder.encode(summary), as: UTF8.self))
    try staging.commit()
    committed = true
    return (reports, networkReport)
  }

  /// The largest input code of every dense layer, in forward order (255 for raw pixels).
  static func inputMaxCodes(_ model: InferenceModel) -> [Int] {
    var out: [Int] = []
    var maxCode = 255
    for op in model.operations {
      if case .dense(let d) = op {
        out.append(maxCode)
        maxCode = d.maxOutputCode
      }
    }
    return out
  }
}

/// The `rtl.json` written beside the generated files.
struct RTLSummary: Codable {
  var images: Int
  var layers: [LayerRTLReport]
  var network: NetworkRTLReport?
}

/// A sibling directory that receives every file and replaces the final one only when complete.
struct StagingDirectory {
  let path: String
  let final: String

  /// Refuses a `final` that exists and is neither empty nor an earlier `wrapnet rtl` output (it would be replaced).
  init(final: String) throws {
    let fm = FileManager.default
    var isDirectory: ObjCBool = false
    if fm.fileExists(atPath: final, isDirectory: &isDirectory) {
      guard isDirectory.boolValue else { throw HardwareError("--out \(final) is a file; give a directory") }
      let contents = (try? fm.contentsOfDirectory(atPath: final)) ?? []
      guard contents.isEmpty || contents.contains("rtl.json") || contents.contains("pe.json") else {
        throw HardwareError("--out \(final) exists and is not a `wrapnet rtl` output (no rtl.json); choose a new directory")
      }
    }
    let parent = (final as NSString).deletingLastPathComponent
    let base = (final as NSString).lastPathComponent
    path = (parent.isEmpty ? "." : parent) + "/.\(base).partial-\(ProcessInfo.processInfo.processIdentifier)"
    self.final = final
    try? fm.removeItem(atPath: path)
    do { try fm.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
      throw HardwareError("cannot create \(path): \(error.localizedDescription)")
    }
  }

  func write(_ name: String, _ text: String) throws {
    do { try text.write(toFile: "\(path)/\(name)", atomically: false, encoding: .utf8) } catch {
      throw HardwareError("cannot write \(path)/\(name): \(error.localizedDescription)")
    }
  }

  /// Removes the staged files (after an error).
  func discard() { try? FileManager.default.removeItem(atPath: path) }

  /// Moves the staged directory to `final`, replacing an earlier output.
  func commit() throws {
    let fm = FileManager.default
    if fm.fileExists(atPath: final) {
      do { try fm.removeItem(atPath: final) } catch {
        throw HardwareError("cannot replace \(final): \(error.localizedDescription)")
      }
    }
    do { try fm.moveItem(atPath: path, toPath: final) } catch {
      throw HardwareError("cannot move \(path) to \(final): \(error.localizedDescription)")
    }
  }
}
