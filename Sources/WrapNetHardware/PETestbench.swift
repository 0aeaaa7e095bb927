import WrapNetEngine

/// A self-checking testbench of one PE on seeded random codes: `sums` dot products of `cycles` cycles each (P
/// products per cycle, the weights' full range, activation codes 0 ... 2^a − 1, a share of extreme values so that
/// narrow accumulators overflow), the accumulator checked after every cycle against `PEConfig.accumulate` of the
/// products so far. Prints `RESULT values=<n> acc_mismatches=<n>`.
public struct PETestbench: Sendable {
  public var pe: PEConfig
  public var sums: Int
  public var cycles: Int
  public var seed: UInt64

  /// A testbench; `sums` ≥ 1 dot products of `cycles` ≥ 1 cycles each.
  public init(pe: PEConfig, sums: Int = 4, cycles: Int = 24, seed: UInt64 = 1) {
    precondition(sums >= 1 && cycles >= 1, "PETestbench: sums and cycles must be >= 1")
    (self.pe, self.sums, self.cycles, self.seed) = (pe, sums, cycles, seed)
  }

  /// The module `tb_<pe>`.
  public func verilog() -> String {
    var rng = SplitMix64(seed: seed)
    let p = pe.parallel, a = pe.activationBits, wb = pe.weights.portBits, o = pe.outputBits
    let maxX = (1 << a) - 1, m = pe.weights.maxMagnitude
    var v = VerilogWriter()
    v.line("`timescale 1ns/1ps")
    v.line("module tb_\(pe.moduleName);")
    v.line("  reg clk = 1'b0, rst = 1'b1, en = 1'b0, clear = 1'b0;")
    v.line("  reg [\(p * a - 1):0] x = 0;")
    v.line("  reg [\(p * wb - 1):0] w = 0;")
    v.line("  wire signed [\(o - 1):0] acc;")
    v.line("  always #5 clk = ~clk;")
    v.line("  \(pe.moduleName) dut (.clk(clk), .rst(rst), .en(en), .clear(clear), .x(x), .w(w), .acc(acc));")
    v.line("  integer bad = 0, values = 0;")
    v.line("  task check(input signed [\(o - 1):0] expected);")
    v.line("    begin")
    v.line("      values = values + 1;")
    v.line("      if (acc !== expected) begin")
    v.line("        if (bad < 5) $display(\"MISMATCH acc value %0d: got %0d expected %0d\", values, acc, expected);")
    v.line("        bad = bad + 1;")
    v.line("      end")
    v.line("    end")
    v.line("  endtask")
    v.line("  initial begin")
    v.line("    repeat (2) @(negedge clk);")
    v.line("    rst = 1'b0;")
    for s in 0..<sums {
      // Each dot product leans one way (mostly positive or mostly negative products) so that it overflows.
      let sign: Int8 = s % 2 == 0 ? 1 : -1
      var terms: [Int64] = []
      for t in 0..<cycles {
        var xs: [Int] = [], ws: [Int8] = []
        for _ in 0..<p {
          let r = rng.next() % 4
          xs.append(r == 0 ? maxX : Int(rng.next() % UInt64(maxX + 1)))
          var w: Int8
          if pe.weights == .binary {
            w = rng.next() % 4 == 0 ? -sign : sign
          } else {
            w = Int8(Int(rng.next() % UInt64(2 * m + 1)) - m)
            if rng.next() % 2 == 0 { w = sign * Int8(m) }
          }
          ws.append(w)
        }
        terms += zip(xs, ws).map { Int64($0) * Int64($1) }
        var line = "    @(negedge clk) begin en = 1'b1; clear = 1'b\(t == 0 ? 1 : 0);"
        for i in 0..<p { line += " x[\(i * a) +: \(a)] = \(a)'d\(xs[i]); w[\(i * wb) +: \(wb)] = \(wb)'d\(pe.weights.pattern(ws[i]));" }
        v.line(line + " end")
        let expected = pe.accumulate(terms)
        v.line("    @(posedge clk) #1 check(\(expected < 0 ? "-" : "")\(o)'sd\(expected.magnitude));")
      }
    }
    v.line("    $display(\"RESULT values=%0d acc_mismatches=%0d\", values, bad);")
    v.line("    $finish;")
    v.line("  end")
    v.line("endmodule")
    return v.text
  }
}
