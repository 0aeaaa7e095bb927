import Foundation

/// Writes one PE or one output-stationary array with its seeded testbench, and simulates it when asked.
public enum PERTL {
  /// `<pe>.v`, `tb_<pe>.v` and `pe.json` into `directory` (replaced as a whole); the simulation result if run.
  public static func writePE(
    _ pe: PEConfig, to directory: String, simulate: Bool, kind: SimulatorKind = .iverilog
  ) throws -> SimulationResult? {
    // A clamp register holds sums of at most fan-in products; the other modes are driven well past overflow.
    let cycles = pe.mode == .clamp ? max(1, min(64, pe.fanIn / pe.parallel)) : max(8, min(64, 2 * pe.fanIn / pe.parallel))
    let tb = PETestbench(pe: pe, sums: 4, cycles: cycles)
    return try write(
      files: [("\(pe.moduleName).v", PEVerilog.module(pe)), ("tb_\(pe.moduleName).v", tb.verilog())],
      top: "tb_\(pe.moduleName)", module: pe.moduleName, pe: pe, to: directory, simulate: simulate, kind: kind)
  }

  /// `<array>.v` (with its PE module), `tb_<array>.v` and `pe.json` into `directory`; the simulation result if run.
  public static func writeArray(
    _ array: ArrayConfig, to directory: String, simulate: Bool, kind: SimulatorKind = .iverilog
  ) throws -> SimulationResult? {
    try write(
      files: [
        ("\(array.moduleName).v", PEVerilog.module(array.pe) + "\n" + array.verilog()),
        ("tb_\(array.moduleName).v", array.testbench(length: 40, seed: 1)),
      ],
      top: "tb_\(array.moduleName)", module: array.moduleName, pe: array.pe, to: directory, simulate: simulate,
      kind: kind)
  }

  static func write(
    files: [(String, String)], top: String, module: String, pe: PEConfig, to directory: String, simulate: Bool,
    kind: SimulatorKind
  ) throws -> SimulationResult? {
    let staging = try StagingDirectory(final: directory)
    var committed = false
    defer { if !committed { staging.discard() } }
    for (name, text) in files { try staging.write(name, text) }
    let info: [String: Any] = [
      "module": module, "file": files[0].0, "weights": pe.weights.description, "activation_bits": pe.activationBits,
      "accumulator_bits": pe.accumulatorBits, "mode": pe.mode.rawValue, "parallel": pe.parallel,
      "register_bits": pe.registerBits, "output_bits": pe.outputBits, "fan_in": pe.fanIn,
    ]
    let json = try JSONSerialization.data(withJSONObject: info, options: [.prettyPrinted, .sortedKeys])
    try staging.write("pe.json", String(decoding: json, as: UTF8.self))
    var result: SimulationResult? = nil
    if simulate {
      result = try Simulator.run(directory: staging.path, sources: files.map(\.0), top: top, kind: kind)
    }
    try staging.commit()
    committed = true
    return result
  }
}
