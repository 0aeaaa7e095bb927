import WrapNetEngine

/// A time-multiplexed unit for one trained dense layer: one PE (`PEConfig`), the weights as a ROM, and the output
/// stage (`OutputSteps`) as b-bit comparators on the accumulator.
///
/// For each row (one output position of one image) the unit computes the O channels one after the other, each in
/// G = ⌈K / P⌉ cycles, reading group g of the row's K input codes (P codes, zero past K) through its `group` port:
///
///     start ─┐  (one cycle)                    busy stays high until the last channel's result has been shown
///     cycle: channel o, group g → PE(en, clear = (g == 0), w = ROM[o·G + g], x = row codes [g·P, g·P + P))
///     the cycle after a channel's last group: out_valid, out_channel = o, out_acc, out_code
///
/// The stream order of a row's codes is `DenseLayerTrace`'s (the trainer's), and the ROM holds the weights in it.
public struct LayerUnit: Sendable {
  /// The traced layer (weights, inputs and expected outputs).
  public var trace: DenseLayerTrace
  /// The PE the unit uses.
  public var pe: PEConfig
  /// The output stage, or nil when the unit outputs sums only (logits, or a PE whose values are not the layer's).
  public var steps: OutputSteps?
  /// The Verilog module name, `layer_<name>` with non-identifier characters replaced by `_`.
  public var moduleName: String

  /// A unit for `trace.layer` with `parallel` products per cycle; `mode` and `width` override the layer's own
  /// accumulator (nil: the engine's mode and width). Throws `HardwareError` for layers the generator does not build.
  public init(
    trace: DenseLayerTrace, inputMaxCode: Int, parallel: Int, mode: HardwareAccumulatorMode? = nil,
    width: AccumulatorWidth? = nil
  ) throws {
    let layer = trace.layer
    if case .residualTable = layer.output { throw HardwareError("layer '\(layer.name)' ends a residual block; not supported") }
    let native = Self.nativeMode(layer)
    let a = unsignedBits(inputMaxCode)
    let pe = try PEConfig(
      weights: HardwareWeightKind(layer.weights.kind), activationBits: a,
      accumulatorWidth: width ?? (native == .exact ? .wide : layer.accumulatorWidth), mode: mode ?? native,
      parallel: parallel, fanIn: trace.fanIn)
    self.trace = trace
    self.pe = pe
    // The output stage sees the PE's value; it is the layer's own stage only where the PE outputs values of the
    // layer's width (any mode of the same b: wrap, saturate, clamp).
    let layerValueBits = native == .exact ? 32 : layer.accumulatorBits
    if case .logits = layer.output {
      steps = nil
    } else if pe.outputBits == layerValueBits {
      steps = try OutputSteps(layer: layer, valueBits: pe.outputBits)
    } else {
      steps = nil
    }
    moduleName = "layer_" + String(layer.name.map { $0.isLetter || $0.isNumber ? $0 : "_" })
  }

  /// The hardware mode that computes the engine's accumulator value of `layer`.
  public static func nativeMode(_ layer: DenseLayer) -> HardwareAccumulatorMode {
    switch layer.accumulatorMode {
    case .exact: return .exact
    case .wrap, .cyclic: return layer.accumulatorBits >= 32 ? .exact : .wrap
    case .clamp: return .clamp
    }
  }

  /// Groups per channel G = ⌈K / P⌉.
  public var groups: Int { (trace.fanIn + pe.parallel - 1) / pe.parallel }
  /// Output channels O.
  public var channels: Int { trace.layer.outChannels }
  /// Bits of an output code (at least 1).
  public var codeBits: Int { unsignedBits(steps?.maxCode ?? 0) }

  /// The expected PE output for row r and channel o: the software PE over the row's products in stream order.
  public func expectedValue(row r: Int, channel o: Int) -> Int64 {
    let k = trace.fanIn
    let terms = (0..<k).lazy.map { j in Int64(trace.weights[o * k + j]) * Int64(trace.inputs[r * k + j]) }
    return pe.accumulate(Array(terms))
  }

  /// Expected values [rows, O] and codes [rows, O] (codes empty without an output stage). Throws if the software
  /// PE in the layer's own mode disagrees with the engine (values or codes): the oracle must agree with itself.
  public func expectedOutputs(rows: Int) throws -> (values: [Int64], codes: [Int]) {
    var values = [Int64](repeating: 0, count: rows * channels)
    var codes: [Int] = steps == nil ? [] : [Int](repeating: 0, count: rows * channels)
    let native = pe.mode == Self.nativeMode(trace.layer) && pe.outputBits == (pe.mode == .exact ? 32 : trace.layer.accumulatorBits)
    for r in 0..<rows {
      for o in 0..<channels {
        let v = expectedValue(row: r, channel: o)
        values[r * channels + o] = v
        if native && v != trace.values[r * channels + o] {
          throw HardwareError("software PE of '\(trace.layer.name)' gives \(v), the engine \(trace.values[r * channels + o]) (row \(r), channel \(o))")
        }
        if let steps {
          let code = steps.code(v, channel: o)
          codes[r * channels + o] = code
          if native && code != Int(trace.codes[r * channels + o]) {
            throw HardwareError("output stage of '\(trace.layer.name)' gives code \(code), the engine \(trace.codes[r * channels + o]) (row \(r), channel \(o))")
          }
        }
      }
    }
    return (values, codes)
  }

  // MARK: - Verilog

  /// The unit's module (it instantiates `PEVerilog.module(pe)`, which is not included). The ROMs are read from
  /// `<module>_weights.hex` and `<module>_steps.hex` in the simulator's working directory.
  public func verilog() -> String {
    var v = VerilogWriter()
    let a = pe.activationBits, wb = pe.weights.portBits, p = pe.parallel
    let g = groups, o = channels
    let gb = unsignedBits(g - 1), cb = unsignedBits(o - 1), ab = unsignedBits(o * g - 1)
    let ob = pe.outputBits
    v.line("// \(moduleName): layer '\(trace.layer.name)' (\(o) channels, fan-in \(trace.fanIn), \(trace.layer.weights.kind) weights),")
    v.line("// generated by `wrapnet rtl` from the engine model. One \(pe.moduleName); \(g) cycle(s) per channel.")
    v.line("module \(moduleName) (")
    v.line("  input  wire clk,")
    v.line("  input  wire rst,")
    v.line("  input  wire start,")
    v.line("  output wire [\(gb - 1):0] group,")
    v.line("  input  wire [\(p * a - 1):0] x,")
    v.line("  output reg  out_valid,")
    v.line("  output reg  [\(cb - 1):0] out_channel,")
    v.line("  output wire signed [\(ob - 1):0] out_acc,")
    v.line("  output wire [\(codeBits - 1):0] out_code,")
    v.line("  output wire busy")
    v.line(");")
    v.line("  reg [\(p * wb - 1):0] weights [0:\(o * g - 1)];")
    v.line("  initial $readmemh(\"\(moduleName)_weights.hex\", weights);")
    v.line("  reg running;")
    v.line("  reg [\(gb - 1):0] g;")
    v.line("  reg [\(cb - 1):0] ch;")
    v.line("  reg [\(ab - 1):0] addr;")
    v.line("  assign group = g;")
    v.line("  assign busy = running | out_valid;")
    v.line("  wire last_group = (g == \(gb)'d\(g - 1));")
    v.line("  always @(posedge clk) begin")
    v.line("    if (rst) begin")
    v.line("      running <= 1'b0; g <= 0; ch <= 0; addr <= 0; out_valid <= 1'b0; out_channel <= 0;")
    v.line("    end else begin")
    v.line("      out_valid <= running & last_group;")
    v.line("      out_channel <= ch;")
    v.line("      if (start & ~running) begin")
    v.line("        running <= 1'b1; g <= 0; ch <= 0; addr <= 0;")
    v.line("      end else if (running) begin")
    v.line("        addr <= addr + 1'b1;")
    v.line("        if (last_group) begin")
    v.line("          g <= 0;")
    v.line("          ch <= ch + 1'b1;")
    v.line("          if (ch == \(cb)'d\(o - 1)) running <= 1'b0;")
    v.line("        end else g <= g + 1'b1;")
    v.line("      end")
    v.line("    end")
    v.line("  end")
    v.line("  \(pe.moduleName) pe (.clk(clk), .rst(rst), .en(running), .clear(g == 0), .x(x), .w(weights[addr]), .acc(out_acc));")
    if let steps {
      outputStage(steps, into: &v, channelBits: cb)
    } else {
      v.line("  assign out_code = \(codeBits)'d0;")
    }
    v.line("endmodule")
    return v.text
  }

  /// Widths of the output stage's ROM fields: base code, threshold, delta.
  private func stepFieldBits(_ steps: OutputSteps) -> (base: Int, threshold: Int, delta: Int) {
    let maxDelta = steps.deltas.map { abs($0) }.max() ?? 0
    let maxBase = steps.base.max() ?? 0
    return (unsignedBits(maxBase), steps.valueBits, signedBits(magnitude: maxDelta))
  }

  /// code = base[ch] + Σ_i delta[ch, i] · [acc >= threshold[ch, i]], one comparator per step.
  private func outputStage(_ steps: OutputSteps, into v: inout VerilogWriter, channelBits cb: Int) {
    let (bb, tb, db) = stepFieldBits(steps)
    let s = steps.steps
    let word = bb + s * (tb + db)
    let sumBits = signedBits(magnitude: (steps.maxCode + 1) * (s + 1) + (steps.base.max() ?? 0))
    v.line("  // Output stage: code = base + sum of deltas of the thresholds the value reaches (\(s) comparators of \(tb) bits).")
    v.line("  // ROM word per channel: {delta[\(s - 1)], threshold[\(s - 1)], ..., delta[0], threshold[0], base}.")
    v.line("  reg [\(word - 1):0] steps [0:\(steps.channels - 1)];")
    v.line("  initial $readmemh(\"\(moduleName)_steps.hex\", steps);")
    v.line("  wire [\(word - 1):0] step_row = steps[out_channel];")
    var terms = ["$signed({1'b0, step_row[\(bb - 1):0]})"]
    for i in 0..<s {
      let at = bb + i * (tb + db)
      v.line("  wire signed [\(tb - 1):0] t\(i) = step_row[\(at + tb - 1):\(at)];")
      v.line("  wire signed [\(db - 1):0] d\(i) = step_row[\(at + tb + db - 1):\(at + tb)];")
      terms.append("(out_acc >= t\(i) ? d\(i) : \(db)'sd0)")
    }
    v.line("  wire signed [\(sumBits - 1):0] code_sum = \(terms.joined(separator: "\n      + "));")
    v.line("  assign out_code = code_sum[\(codeBits - 1):0];")
  }

  /// `$readmemh` contents of the weight ROM: word o·G + g holds channel o's weights for codes [g·P, g·P + P).
  public func weightsHex() -> String {
    let k = trace.fanIn, p = pe.parallel, wb = pe.weights.portBits
    var hex = HexFile(bits: p * wb)
    var fields = [Int64](repeating: 0, count: p)
    for o in 0..<channels {
      for g in 0..<groups {
        for i in 0..<p {
          let j = g * p + i
          // Zero weights past the fan-in add nothing; binary has no zero, so its padding meets zero codes instead.
          fields[i] = j < k ? Int64(pe.weights.pattern(trace.weights[o * k + j])) : (pe.weights == .binary ? 1 : 0)
        }
        hex.append(fields: fields, width: wb)
      }
    }
    return hex.text
  }

  /// `$readmemh` contents of the output stage's ROM (nil without an output stage).
  public func stepsHex() -> String? {
    guard let steps else { return nil }
    let (bb, tb, db) = stepFieldBits(steps)
    var hex = HexFile(bits: bb + steps.steps * (tb + db))
    for c in 0..<steps.channels {
      // Fields of different widths: pack through a bit offset by hand.
      var fields: [(Int64, Int)] = [(Int64(steps.base[c]), bb)]
      for i in 0..<steps.steps {
        fields.append((steps.thresholds[c * steps.steps + i], tb))
        fields.append((Int64(steps.deltas[c * steps.steps + i]), db))
      }
      hex.append(mixed: fields)
    }
    return hex.text
  }

  /// `$readmemh` contents of the rows' input codes: word r·G + g holds codes [g·P, g·P + P) of row r (zero past K).
  public func inputsHex(rows: Int) -> String {
    let k = trace.fanIn, p = pe.parallel
    var hex = HexFile(bits: p * pe.activationBits)
    var fields = [Int64](repeating: 0, count: p)
    for r in 0..<rows {
      for g in 0..<groups {
        for i in 0..<p {
          let j = g * p + i
          fields[i] = j < k ? Int64(trace.inputs[r * k + j]) : 0
        }
        hex.append(fields: fields, width: pe.activationBits)
      }
    }
    return hex.text
  }
}

extension HexFile {
  /// Appends one word of fields with their own widths, packed from bit 0 upwards.
  mutating func append(mixed fields: [(value: Int64, width: Int)]) {
    // Spread every field to one-bit fields, then pack those.
    var bitsOut: [Int64] = []
    for (value, width) in fields {
      for bit in 0..<width { bitsOut.append((value >> Int64(min(bit, 63))) & 1) }
    }
    append(fields: bitsOut, width: 1)
  }
}
