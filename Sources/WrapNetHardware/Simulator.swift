import Foundation

/// What a testbench reported on its `RESULT` line.
public struct SimulationResult: Sendable, Equatable {
  /// Key/value pairs of the RESULT line (rows, values, acc_mismatches, code_mismatches, cycles, ...).
  public var fields: [String: Int]
  /// Mismatch lines the testbench printed (at most a few per kind).
  public var mismatchLines: [String]
  /// Wall time of compile + run, seconds.
  public var seconds: Double

  /// The field `name`, 0 if absent.
  public subscript(_ name: String) -> Int { fields[name] ?? 0 }
  /// Total mismatches of every kind.
  public var mismatches: Int { fields.filter { $0.key.hasSuffix("mismatches") }.map(\.value).reduce(0, +) }
}

/// Which Verilog simulator runs a testbench.
public enum SimulatorKind: String, Sendable, CaseIterable {
  /// Icarus Verilog (`iverilog` + `vvp`): starts at once, about 10^4 cycles/s on a 64-product PE.
  case iverilog
  /// Verilator (`verilator --binary --timing`): 10–20 s to compile (2–3 s with ccache once its runtime library is
  /// cached), then about 10^6 cycles/s.
  case verilator
}

/// Runs testbenches with Icarus Verilog or Verilator.
public enum Simulator {
  /// The path of `tool` on PATH, or nil.
  public static func find(_ tool: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for dir in path.split(separator: ":") {
      let candidate = "\(dir)/\(tool)"
      if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
  }

  /// Whether Icarus Verilog is installed.
  public static var isAvailable: Bool { find("iverilog") != nil && find("vvp") != nil }

  /// Whether `kind` is installed.
  public static func isAvailable(_ kind: SimulatorKind) -> Bool {
    switch kind {
    case .iverilog: return isAvailable
    case .verilator: return find("verilator") != nil
    }
  }

  /// Compiles `sources` (paths relative to `directory`) with top module `top` and runs it in `directory`; `trace`
  /// lets Verilator honour the testbench's `$dumpvars` (Icarus always does).
  /// Throws `HardwareError` when the tools are missing, compilation fails (with the compiler's messages) or the
  /// testbench prints no RESULT line.
  public static func run(
    directory: String, sources: [String], top: String, kind: SimulatorKind = .iverilog, trace: Bool = false
  ) throws -> SimulationResult {
    let started = Date()
    let run: (status: Int32, output: String)
    switch kind {
    case .iverilog:
      guard let iverilog = find("iverilog"), let vvp = find("vvp") else {
        throw HardwareError("Icarus Verilog (iverilog, vvp) is not installed: run scripts/setup.sh, or pass --no-simulate")
      }
      let image = "\(top).vvp"
      let compile = try execute(iverilog, ["-g2005", "-o", image, "-s", top] + sources, in: directory)
      guard compile.status == 0 else {
        throw HardwareError("iverilog failed on \(sources.joined(separator: " ")) in \(directory):\n\(compile.output)")
      }
      run = try execute(vvp, ["-n", image], in: directory)
      try? FileManager.default.removeItem(atPath: "\(directory)/\(image)")
    case .verilator:
      guard let verilator = find("verilator") else {
        throw HardwareError("Verilator is not installed: run scripts/setup.sh, or use --simulator iverilog")
      }
      // Width warnings are expected (sign extension of narrower tree levels is intended); errors still stop.
      let objects = "obj_\(top)"
      // With ccache, Verilator's runtime library (most of a small design's compile time) is built once.
      var environment = ProcessInfo.processInfo.environment
      if find("ccache") != nil && environment["OBJCACHE"] == nil { environment["OBJCACHE"] = "ccache" }
      let compile = try execute(
        verilator,
        ["--binary", "--timing", "-j", "2", "-Wno-fatal", "-Wno-WIDTH", "--top-module", top, "-Mdir", objects, "-o", "sim"]
          + (trace ? ["--trace"] : []) + sources, in: directory, environment: environment)
      guard compile.status == 0 else {
        throw HardwareError("verilator failed on \(sources.joined(separator: " ")) in \(directory):\n\(compile.output.suffix(4000))")
      }
      run = try execute("\(directory)/\(objects)/sim", [], in: directory)
      try? FileManager.default.removeItem(atPath: "\(directory)/\(objects)")
    }
    guard run.status == 0, let line = run.output.split(separator: "\n").last(where: { $0.hasPrefix("RESULT ") }) else {
      throw HardwareError("simulation of \(top) in \(directory) printed no RESULT line:\n\(run.output.suffix(2000))")
    }
    var fields: [String: Int] = [:]
    for pair in line.dropFirst("RESULT ".count).split(separator: " ") {
      let kv = pair.split(separator: "=")
      if kv.count == 2, let n = Int(kv[1]) { fields[String(kv[0])] = n }
    }
    let mismatches = run.output.split(separator: "\n").filter { $0.hasPrefix("MISMATCH") }.map(String.init)
    return SimulationResult(fields: fields, mismatchLines: mismatches, seconds: Date().timeIntervalSince(started))
  }

  /// Runs `tool` with `arguments` in `directory`; returns its exit status and combined output.
  static func execute(
    _ tool: String, _ arguments: [String], in directory: String, environment: [String: String]? = nil
  ) throws -> (status: Int32, output: String) {
    let process = Process()
    if let environment { process.environment = environment }
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: directory)
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    do { try process.run() } catch {
      throw HardwareError("cannot start \(tool): \(error.localizedDescription)")
    }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
  }
}
