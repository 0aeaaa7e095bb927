import Foundation
import WrapNetEngine

/// The whole-network simulation: its size, the classes it predicted and how they compare with the engine.
public struct NetworkRTLReport: Sendable, Codable, Equatable {
  public var module: String
  public var images: Int
  public var simulated: Bool
  /// Logit sums (exact 32-bit) that differ from the engine's, and predicted classes that differ.
  public var logitMismatches: Int
  public var predictionMismatches: Int
  public var cycles: Int
  public var seconds: Double
}

/// A linear-layer network (the zoo's `mlp`) as one module: its layer units chained through code buffers, run one
/// layer after the other (time-multiplexed PEs).
///
///     pixels ──in_we/in_addr/in_data──▶ buffer 0 ──▶ unit 0 ──codes──▶ buffer 1 ──▶ unit 1 ─ … ─▶ logits unit
///     start: run unit 0 over its row, then unit 1, …; the logits unit shows each class's exact 32-bit sum on
///     logit_valid / logit_index / logit_sum; done pulses when the last one has been shown.
///
/// Each buffer is a register of ⌈K / P⌉·P codes (zero past K) that the next unit reads P codes at a time; the
/// hardware ends at the logits' integer sums: the class is the argmax of `Float(sum) · scale + bias`, which the
/// host computes from them exactly as the engine does.
public enum NetworkRTL {
  /// Writes `network.v`, its testbench and pixel file into `staging`, and simulates it when requested. The layer
  /// units' files (same names as the per-layer output) are written too if absent.
  static func write(
    trace: NetworkTrace, model: InferenceModel, inputMaxCodes: [Int], request: RTLRequest, staging: StagingDirectory,
    progress: (String) -> Void
  ) throws -> NetworkRTLReport {
    for op in model.operations {
      switch op {
      case .dense(let d):
        guard case .linear = d.geometry else {
          throw HardwareError("--network chains linear layers only (the mlp); layer '\(d.name)' is a convolution: build its unit per layer")
        }
      case .flatten: continue
      default: throw HardwareError("--network chains linear layers only (the mlp); '\(model.architecture)' has pooling or residual steps")
      }
    }
    guard request.mode == nil && request.width == nil else {
      throw HardwareError("--network runs the model's own accumulators; drop --acc-mode and --acc-bits")
    }
    var units: [LayerUnit] = []
    for (i, t) in trace.layers.enumerated() {
      let unit = try LayerUnit(trace: t, inputMaxCode: inputMaxCodes[i], parallel: request.parallel)
      try staging.write("\(unit.pe.moduleName).v", PEVerilog.module(unit.pe))
      try staging.write("\(unit.moduleName).v", unit.verilog())
      try staging.write("\(unit.moduleName)_weights.hex", unit.weightsHex())
      if let steps = unit.stepsHex() { try staging.write("\(unit.moduleName)_steps.hex", steps) }
      units.append(unit)
    }
    guard let last = units.last, last.steps == nil, units.dropLast().allSatisfy({ $0.steps != nil }) else {
      throw HardwareError("--network needs hidden layers with code outputs and a logits layer last")
    }
    let name = "network_\(model.architecture.map { $0.isLetter || $0.isNumber ? $0 : "_" }.map(String.init).joined())"
    try staging.write("\(name).v", verilog(name: name, units: units))
    try staging.write("tb_\(name).v", testbench(name: name, units: units, images: trace.count))
    // Pixels of every image, one code per line, in the first unit's stream order.
    let first = trace.layers[0]
    var pixels = HexFile(bits: units[0].pe.activationBits)
    for v in first.inputs { pixels.append(Int64(v)) }
    try staging.write("\(name)_pixels.hex", pixels.text)
    var report = NetworkRTLReport(
      module: name, images: trace.count, simulated: false, logitMismatches: 0, predictionMismatches: 0, cycles: 0,
      seconds: 0)
    guard request.simulate else { return report }
    progress("simulating \(name): \(trace.count) image(s) through \(units.count) chained layer units")
    var sources = ["tb_\(name).v", "\(name).v"]
    for u in units {
      sources.append("\(u.moduleName).v")
      if !sources.contains("\(u.pe.moduleName).v") { sources.append("\(u.pe.moduleName).v") }
    }
    let result = try Simulator.run(directory: staging.path, sources: sources, top: "tb_\(name)", kind: request.simulator)
    let logitText = try String(contentsOfFile: "\(staging.path)/\(name)_logits.txt", encoding: .utf8)
    let sums = logitText.split(whereSeparator: \.isNewline).compactMap { Int64($0.trimmingCharacters(in: .whitespaces)) }
    let classes = model.classes
    guard sums.count == trace.count * classes else {
      throw HardwareError("the network simulation wrote \(sums.count) logit sums, expected \(trace.count * classes)")
    }
    guard case .logits(let scale, let bias) = last.trace.layer.output else { preconditionFailure("checked above") }
    let expected = last.trace.values
    report.logitMismatches = zip(sums, expected).filter { $0 != $1 }.count
    for i in 0..<trace.count {
      var best = 0
      var bestLogit = -Float.infinity
      for c in 0..<classes {
        let product = Float(Int32(truncatingIfNeeded: sums[i * classes + c])) * scale[c]
        let logit = product + bias[c]
        if c == 0 || logit > bestLogit { (best, bestLogit) = (c, logit) }
      }
      if best != trace.predictions[i] { report.predictionMismatches += 1 }
    }
    report.simulated = true
    report.cycles = result["cycles"]
    report.seconds = result.seconds
    return report
  }

  /// The chained module.
  static func verilog(name: String, units: [LayerUnit]) -> String {
    var v = VerilogWriter()
    let first = units[0]
    let pixelBits = first.pe.activationBits
    let pixelAddressBits = unsignedBits(first.trace.fanIn - 1)
    let last = units[units.count - 1]
    let classBits = unsignedBits(last.channels - 1)
    v.line("// \(name): \(units.count) layer units chained through code buffers, generated by `wrapnet rtl --network`.")
    v.line("module \(name) (")
    v.line("  input  wire clk,")
    v.line("  input  wire rst,")
    v.line("  input  wire in_we,")
    v.line("  input  wire [\(pixelAddressBits - 1):0] in_addr,")
    v.line("  input  wire [\(pixelBits - 1):0] in_data,")
    v.line("  input  wire start,")
    v.line("  output wire logit_valid,")
    v.line("  output wire [\(classBits - 1):0] logit_index,")
    v.line("  output wire signed [\(last.pe.outputBits - 1):0] logit_sum,")
    v.line("  output reg  done")
    v.line(");")
    for (i, u) in units.enumerated() {
      let a = u.pe.activationBits, p = u.pe.parallel
      let width = u.groups * p * a
      v.line("  // Layer \(i) '\(u.trace.layer.name)': input buffer of \(u.groups * p) codes of \(a) bits (zero past \(u.trace.fanIn)).")
      v.line("  reg  [\(width - 1):0] buf\(i);")
      v.line("  reg  start\(i);")
      v.line("  wire [\(unsignedBits(u.groups - 1) - 1):0] group\(i);")
      v.line("  wire valid\(i), busy\(i);")
      v.line("  wire [\(unsignedBits(u.channels - 1) - 1):0] channel\(i);")
      v.line("  wire signed [\(u.pe.outputBits - 1):0] acc\(i);")
      v.line("  wire [\(u.codeBits - 1):0] code\(i);")
      v.line("  \(u.moduleName) unit\(i) (.clk(clk), .rst(rst), .start(start\(i)), .group(group\(i)),")
      v.line("    .x(buf\(i)[group\(i) * \(p * a) +: \(p * a)]), .out_valid(valid\(i)), .out_channel(channel\(i)),")
      v.line("    .out_acc(acc\(i)), .out_code(code\(i)), .busy(busy\(i)));")
    }
    v.line("  // Which layer runs: 0 ... \(units.count - 1); \(units.count) = idle.")
    v.line("  reg [\(unsignedBits(units.count) - 1):0] layer;")
    v.line("  reg launched;")
    v.line("  assign logit_valid = valid\(units.count - 1);")
    v.line("  assign logit_index = channel\(units.count - 1);")
    v.line("  assign logit_sum = acc\(units.count - 1);")
    v.line("  always @(posedge clk) begin")
    v.line("    if (rst) begin")
    v.line("      layer <= \(units.count); launched <= 1'b0; done <= 1'b0;")
    for i in units.indices { v.line("      buf\(i) <= 0; start\(i) <= 1'b0;") }
    v.line("    end else begin")
    v.line("      done <= 1'b0;")
    for i in units.indices { v.line("      start\(i) <= 1'b0;") }
    v.line("      if (in_we) buf0[in_addr * \(pixelBits) +: \(pixelBits)] <= in_data;")
    for i in units.indices.dropLast() {
      let a = units[i + 1].pe.activationBits
      v.line("      if (valid\(i)) buf\(i + 1)[channel\(i) * \(a) +: \(a)] <= code\(i)[\(a - 1):0];")
    }
    v.line("      if (start && layer == \(units.count)) begin")
    v.line("        layer <= 0; launched <= 1'b0;")
    v.line("      end else if (layer != \(units.count)) begin")
    v.line("        if (!launched) begin")
    v.line("          launched <= 1'b1;")
    v.line("          case (layer)")
    for i in units.indices { v.line("            \(i): start\(i) <= 1'b1;") }
    v.line("          endcase")
    v.line("        end else if (!start\(units.count - 1) && !(\(units.indices.map { "busy\($0)" }.joined(separator: " | "))) && !(\(units.indices.map { "start\($0)" }.joined(separator: " | ")))) begin")
    v.line("          launched <= 1'b0;")
    v.line("          layer <= layer + 1'b1;")
    v.line("          if (layer == \(units.count - 1)) done <= 1'b1;")
    v.line("        end")
    v.line("      end")
    v.line("    end")
    v.line("  end")
    v.line("endmodule")
    return v.text
  }

  /// The testbench: per image, writes the pixels, starts the network, and prints every logit sum to
  /// `<name>_logits.txt` (one per line, image by image, class by class).
  static func testbench(name: String, units: [LayerUnit], images: Int) -> String {
    let first = units[0]
    let k = first.trace.fanIn
    let last = units[units.count - 1]
    var v = VerilogWriter()
    v.line("// Testbench of \(name): \(images) image(s) of real data; the host compares the logit sums and classes.")
    v.line("`timescale 1ns/1ps")
    v.line("module tb_\(name);")
    v.line("  reg clk = 1'b0, rst = 1'b1, start = 1'b0, in_we = 1'b0;")
    v.line("  always #5 clk = ~clk;")
    v.line("  reg [\(first.pe.activationBits - 1):0] pixels [0:\(images * k - 1)];")
    v.line("  initial $readmemh(\"\(name)_pixels.hex\", pixels);")
    v.line("  reg [\(unsignedBits(k - 1) - 1):0] in_addr = 0;")
    v.line("  reg [\(first.pe.activationBits - 1):0] in_data = 0;")
    v.line("  wire logit_valid, done;")
    v.line("  wire [\(unsignedBits(last.channels - 1) - 1):0] logit_index;")
    v.line("  wire signed [\(last.pe.outputBits - 1):0] logit_sum;")
    v.line("  \(name) dut (.clk(clk), .rst(rst), .in_we(in_we), .in_addr(in_addr), .in_data(in_data), .start(start),")
    v.line("    .logit_valid(logit_valid), .logit_index(logit_index), .logit_sum(logit_sum), .done(done));")
    v.line("  integer image, i, out, cycles = 0;")
    v.line("  always @(posedge clk) begin")
    v.line("    if (!rst) cycles = cycles + 1;")
    v.line("    if (logit_valid) $fdisplay(out, \"%0d\", logit_sum);")
    v.line("  end")
    v.line("  initial begin")
    v.line("    out = $fopen(\"\(name)_logits.txt\", \"w\");")
    v.line("    repeat (2) @(negedge clk);")
    v.line("    rst = 1'b0;")
    v.line("    for (image = 0; image < \(images); image = image + 1) begin")
    v.line("      for (i = 0; i < \(k); i = i + 1) begin")
    v.line("        @(negedge clk) begin in_we = 1'b1; in_addr = i; in_data = pixels[image * \(k) + i]; end")
    v.line("      end")
    v.line("      @(negedge clk) begin in_we = 1'b0; start = 1'b1; end")
    v.line("      @(negedge clk) start = 1'b0;")
    v.line("      while (!done) @(negedge clk);")
    v.line("    end")
    v.line("    $fclose(out);")
    v.line("    $display(\"RESULT images=%0d cycles=%0d\", \(images), cycles);")
    v.line("    $finish;")
    v.line("  end")
    v.line("endmodule")
    return v.text
  }

}
