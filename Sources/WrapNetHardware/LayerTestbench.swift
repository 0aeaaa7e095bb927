/// The self-checking testbench of a `LayerUnit`: it feeds the traced rows one after the other and compares every
/// accumulator value and every output code with the software model's, counting mismatches.
///
/// Files it reads (`$readmemh`, from the working directory): `<unit>_x.hex` (rows' input groups),
/// `<unit>_acc.hex` and `<unit>_code.hex` (expected [rows, O], row-major). Its last line of output is
///
///     RESULT rows=<n> values=<n> acc_mismatches=<n> code_mismatches=<n> cycles=<n>
///
/// With `vcdRows > 0` it dumps the PE's nets to `<unit>.vcd` while the first `vcdRows` rows run (the energy proxy).
public struct LayerTestbench: Sendable {
  /// The unit under test.
  public var unit: LayerUnit
  /// Rows simulated (images × positions).
  public var rows: Int
  /// Rows whose PE activity is dumped to a VCD file (0: none).
  public var vcdRows: Int

  /// A testbench for the first `rows` rows of `unit`'s trace.
  public init(unit: LayerUnit, rows: Int, vcdRows: Int = 0) {
    precondition(rows >= 1 && rows <= unit.trace.rows, "LayerTestbench: \(rows) rows of \(unit.trace.rows)")
    self.unit = unit
    self.rows = rows
    self.vcdRows = min(vcdRows, rows)
  }

  /// The testbench module `tb_<unit>`.
  public func verilog() -> String {
    let u = unit
    let name = u.moduleName
    let p = u.pe.parallel, a = u.pe.activationBits, g = u.groups, o = u.channels
    let ob = u.pe.outputBits, cb = u.codeBits
    var v = VerilogWriter()
    v.line("// Self-checking testbench of \(name): \(rows) row(s) of real data, expected values from the engine's trace.")
    v.line("`timescale 1ns/1ps")
    v.line("module tb_\(name);")
    v.line("  localparam ROWS = \(rows), GROUPS = \(g), CHANNELS = \(o);")
    v.line("  reg clk = 1'b0, rst = 1'b1, start = 1'b0;")
    v.line("  always #5 clk = ~clk;")
    v.line("  reg [\(p * a - 1):0] xs [0:ROWS*GROUPS-1];")
    v.line("  reg [\(ob - 1):0] acc_expected [0:ROWS*CHANNELS-1];")
    v.line("  reg [\(cb - 1):0] code_expected [0:ROWS*CHANNELS-1];")
    v.line("  initial begin")
    v.line("    $readmemh(\"\(name)_x.hex\", xs);")
    v.line("    $readmemh(\"\(name)_acc.hex\", acc_expected);")
    if u.steps != nil { v.line("    $readmemh(\"\(name)_code.hex\", code_expected);") }
    v.line("  end")
    v.line("  integer row = 0, values = 0, acc_bad = 0, code_bad = 0, cycles = 0;")
    v.line("  wire [\(unsignedBits(g - 1) - 1):0] group;")
    v.line("  wire out_valid, busy;")
    v.line("  wire [\(unsignedBits(o - 1) - 1):0] out_channel;")
    v.line("  wire signed [\(ob - 1):0] out_acc;")
    v.line("  wire [\(cb - 1):0] out_code;")
    v.line("  \(name) dut (.clk(clk), .rst(rst), .start(start), .group(group), .x(xs[row*GROUPS + group]),")
    v.line("    .out_valid(out_valid), .out_channel(out_channel), .out_acc(out_acc), .out_code(out_code), .busy(busy));")
    v.line("  always @(posedge clk) begin")
    v.line("    if (!rst) cycles = cycles + 1;")
    v.line("    if (out_valid) begin")
    v.line("      values = values + 1;")
    v.line("      if (out_acc !== acc_expected[row*CHANNELS + out_channel]) begin")
    v.line("        if (acc_bad < 5) $display(\"MISMATCH acc row %0d channel %0d: got %0d expected %0d\", row, out_channel, out_acc, $signed(acc_expected[row*CHANNELS + out_channel]));")
    v.line("        acc_bad = acc_bad + 1;")
    v.line("      end")
    if u.steps != nil {
      v.line("      if (out_code !== code_expected[row*CHANNELS + out_channel]) begin")
      v.line("        if (code_bad < 5) $display(\"MISMATCH code row %0d channel %0d: got %0d expected %0d\", row, out_channel, out_code, code_expected[row*CHANNELS + out_channel]);")
      v.line("        code_bad = code_bad + 1;")
      v.line("      end")
    }
    v.line("    end")
    v.line("  end")
    v.line("  initial begin")
    if vcdRows > 0 {
      v.line("    $dumpfile(\"\(name).vcd\");")
      v.line("    $dumpvars(0, dut.pe);")
    }
    v.line("    repeat (2) @(negedge clk);")
    v.line("    rst = 1'b0;")
    v.line("    for (row = 0; row < ROWS; row = row + 1) begin")
    if vcdRows > 0 { v.line("      if (row == \(vcdRows)) $dumpoff;") }
    v.line("      @(negedge clk) start = 1'b1;")
    v.line("      @(negedge clk) start = 1'b0;")
    v.line("      while (busy) @(negedge clk);")
    v.line("    end")
    v.line("    $display(\"RESULT rows=%0d values=%0d acc_mismatches=%0d code_mismatches=%0d cycles=%0d\", ROWS, values, acc_bad, code_bad, cycles);")
    v.line("    $finish;")
    v.line("  end")
    v.line("endmodule")
    return v.text
  }

  /// Expected values and codes as `$readmemh` text (acc, code). Throws if the oracle disagrees with the engine.
  public func expectedHex() throws -> (acc: String, code: String?) {
    let (values, codes) = try unit.expectedOutputs(rows: rows)
    var acc = HexFile(bits: unit.pe.outputBits)
    for v in values { acc.append(v) }
    guard unit.steps != nil else { return (acc.text, nil) }
    var code = HexFile(bits: unit.codeBits)
    for c in codes { code.append(Int64(c)) }
    return (acc.text, code.text)
  }

}
