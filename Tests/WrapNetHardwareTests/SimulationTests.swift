import Foundation
import Testing
import WrapNet
import WrapNetEngine
import WrapNetHardware

/// A fresh directory under the system's temporary folder, removed by the caller.
func temporaryDirectory(_ tag: String) throws -> String {
  let path = NSTemporaryDirectory() + "wrapnet-hw-\(tag)-\(UUID().uuidString)"
  try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

/// Writes `files` into a new directory and simulates `top` there.
func simulate(_ files: [(String, String)], top: String) throws -> SimulationResult {
  let dir = try temporaryDirectory(top)
  defer { try? FileManager.default.removeItem(atPath: dir) }
  for (name, text) in files { try text.write(toFile: "\(dir)/\(name)", atomically: true, encoding: .utf8) }
  return try Simulator.run(directory: dir, sources: files.map(\.0), top: top)
}

/// Generated PEs and arrays against the software PE, cycle by cycle, on seeded random codes that overflow.
@Suite(.enabled(if: Simulator.isAvailable, "Icarus Verilog is not installed (scripts/setup.sh installs it)"))
struct PESimulationTests {
  static let weightKinds: [HardwareWeightKind] = [.binary, .ternary, .symmetric(bits: 4)]

  @Test(arguments: HardwareAccumulatorMode.allCases)
  func everyPEEqualsTheSoftwarePE(mode: HardwareAccumulatorMode) throws {
    for weights in Self.weightKinds {
      for (p, a, b) in [(1, 2, 6), (2, 3, 7), (3, 2, 5), (5, 1, 8), (16, 2, 8), (17, 2, 6), (64, 2, 10)] {
        let pe = try PEConfig(weights: weights, activationBits: a, accumulatorWidth: AccumulatorWidth(bits: b), mode: mode, parallel: p, fanIn: 4 * p)
        let cycles = mode == .clamp ? 4 : 12
        let tb = PETestbench(pe: pe, sums: 3, cycles: cycles, seed: UInt64(p * 31 + b))
        let result = try simulate(
          [("pe.v", PEVerilog.module(pe)), ("tb.v", tb.verilog())], top: "tb_\(pe.moduleName)")
        #expect(result["values"] == 3 * cycles, "\(pe.moduleName)")
        #expect(result.mismatches == 0, "\(pe.moduleName): \(result.mismatchLines)")
      }
    }
  }

  /// The check can fail: a PE whose tree subtracts one product is caught.
  @Test func aWrongTreeIsCaught() throws {
    let pe = try PEConfig(weights: .ternary, activationBits: 2, accumulatorWidth: AccumulatorWidth(bits: 8), mode: .wrap, parallel: 4)
    let broken = PEVerilog.module(pe).replacingOccurrences(of: "= pp0 + pp1;", with: "= pp0 - pp1;")
      .replacingOccurrences(of: "= p0 + p1;", with: "= p0 - p1;")
    #expect(broken != PEVerilog.module(pe))
    let result = try simulate([("pe.v", broken), ("tb.v", PETestbench(pe: pe).verilog())], top: "tb_\(pe.moduleName)")
    #expect(result.mismatches > 0)
  }

  @Test(arguments: HardwareAccumulatorMode.allCases)
  func outputStationaryArrayEqualsTheSoftwarePE(mode: HardwareAccumulatorMode) throws {
    for (rows, columns) in [(1, 1), (2, 3), (3, 2)] {
      let pe = try PEConfig(weights: .ternary, activationBits: 2, accumulatorWidth: AccumulatorWidth(bits: 5), mode: mode, parallel: 1, fanIn: 40)
      let array = try ArrayConfig(pe: pe, rows: rows, columns: columns)
      let result = try simulate(
        [("pe.v", PEVerilog.module(pe)), ("array.v", array.verilog()), ("tb.v", array.testbench(length: 40, seed: 7))],
        top: "tb_\(array.moduleName)")
      #expect(result["values"] == rows * columns)
      #expect(result.mismatches == 0, "\(array.moduleName): \(result.mismatchLines)")
    }
  }
}
