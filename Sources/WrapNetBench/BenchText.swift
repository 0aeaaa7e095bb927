import Foundation
import WrapNet
import WrapNetEngine

extension BenchReport {
  /// Printed in place of the whole-model rows of a model the engine cannot run.
  static let unsupportedLine = "whole-model: not supported by the engine"

  /// The table report of `wrapnet bench`: a header that says what was measured and how, then per model the kernel
  /// table, the whole-model rows (or why the engine cannot run it) and the model bytes; lines joined by "\n".
  public func text() -> String {
    var lines: [String] = []
    let weights = WeightFormat(bits: benchmark.weightBits).name
    lines.append(
      "wrapnet bench: random-weight zoo models; \(weights) weights x \(benchmark.activationBits)-bit activation codes, \(benchmark.accumulatorWidth.bits)-bit wrap-around accumulators (cyclic)"
    )
    lines.append(
      "cpu: \(cpu.model)\(cpu.familyModel.isEmpty ? "" : " (\(cpu.familyModel))"), avx2 \(cpu.avx2 ? "yes" : "no"), "
        + "avx512-vnni \(cpu.vnni ? "yes (32-bit lanes, int8 layers, first-layer convolution)" : "no"), \(cpu.cores) cores; "
        + "load average \(cpu.loadText) (1, 5, 15 min)"
    )
    lines.append(
      "kernels: wrapGEMM on each low-bit layer's shape (m = output channels, n = output positions x batch \(benchmark.batch), k = fan-in), 1 thread,"
    )
    lines.append(
      "  \(benchmark.clock.rawValue) clock, at least \(benchmark.seconds) s and 3 runs per case, GOPS of the median run, each case checked against the reference first; identical shapes measured once."
    )
    lines.append(
      "  GOPS = 2·m·n·k / s (1 MAC = 2 ops); % = share of peak (\(Self.number(benchmark.peakGOPS)) GOPS with 8/16-bit lanes, \(Self.number(benchmark.peakGOPS32)) with 32-bit);"
    )
    lines.append(
      "  8/32 = GOPS with 8-bit lanes over 32-bit lanes; total = MAC-weighted over the low-bit layers (all MACs / all time)."
    )
    if benchmark.weightBits <= 2 && benchmark.accumulatorWidth.bits <= 8 && KernelPath.isAVX2Available {
      lines.append(
        "  avx2 lut = the lookup kernel the engine runs on these layers: 16-entry tables of every 4 codes' signed sums "
          + "(built per input pixel, not timed here), weights as table indices, 8-bit lanes.")
    }
    if !ceilings.isEmpty {
      lines.append(
        "ceiling: register-only loops of the kernels' inner steps (no loads, 1 thread): "
          + ceilings.map { "\($0.0.rawValue) \(String(format: "%.1f", $0.1))" }.joined(separator: ", ")
          + " GOPS;")
      lines.append(
        "  no kernel built from that step can beat its ceiling on this core (loads, reductions and stores only add).")
    }
    lines.append(
      "whole model: engine from uint8 pixels to logits, \(KernelPath.fastest.rawValue) path, narrowest lanes (lookup kernel on binary/ternary layers), wall clock, warm-up then at least \(benchmark.modelSeconds) s and 3 runs, images/s of the median run."
    )
    if benchmark.threads.contains(where: { $0 > 1 }) {
      lines.append(
        "  note: 2-thread numbers are not meaningful while other jobs run on this machine (load average \(cpu.loadText) on \(cpu.cores) cores)."
      )
    }
    for r in models {
      lines.append("")
      let shapes = r.shapes
      let macs = shapes.reduce(0) { $0 + $1.macs }
      lines.append(
        "== \(r.name): \(shapes.count) low-bit layers, \(Self.megaMACs(macs)) MACs at batch \(benchmark.batch) ==")
      lines += kernelTable(r)
      lines.append("")
      if let reason = r.unsupportedReason {
        lines.append(Self.unsupportedLine)
        lines.append("  (exporter: \(reason))")
      } else {
        lines.append("whole model:")
        lines.append("  batch  threads    images/s   ms/batch   runs")
        for w in r.wholeModel {
          lines.append(
            "  " + Self.pad(String(w.batch), 5) + "  " + Self.pad(String(w.threads), 7) + "  "
              + Self.pad(String(format: "%.1f", w.imagesPerSecond), 10) + "  "
              + Self.pad(String(format: "%.3f", 1000 * w.medianSeconds), 9) + "  "
              + Self.pad(String(w.runs), 5))
        }
      }
      guard let b = r.bytes else { continue }
      let e = b.estimate
      let parts =
        "weight codes \(Self.grouped(e.weightCodeBytes)), tables \(Self.grouped(e.tableBytes)), thresholds \(Self.grouped(e.thresholdBytes)), logits scale/bias \(Self.grouped(e.logitsBytes))"
      let source =
        b.computed
        ? "computed from the layer shapes, no file header: \(parts)"
        : "packed file: \(parts), header \(Self.grouped(b.packed - b.tensors))"
      lines.append(
        "model bytes: packed \(Self.grouped(b.packed)) B vs Float32 \(Self.grouped(b.float32)) B (weights, biases, batch norm): \(String(format: "%.1f", Double(b.float32) / Double(max(b.packed, 1))))x smaller"
      )
      lines.append("  (\(source))")
    }
    return lines.joined(separator: "\n")
  }

  /// The per-layer kernel table of one model: one row per layer and path, GOPS and % of peak per lane width.
  func kernelTable(_ r: ModelBench) -> [String] {
    var lines: [String] = []
    let shapes = r.shapes
    let nameWidth = max(8, (shapes.map(\.layer.count) + ["total (MAC-weighted)".count]).max()!)
    let laneList = [8, 16, 32]
    var header =
      Self.left("layer", nameWidth) + "  " + Self.left("path", 9) + Self.pad("m", 6) + Self.pad("n", 8)
      + Self.pad("k", 7) + Self.pad("MACs", 10)
    for l in laneList { header += Self.pad("\(l)-bit lanes", 17) }
    header += Self.pad("8/32", 7)
    lines.append(header)
    // `over32`: the 32-bit-lane GOPS for the 8/32 column when the row has none of its own (the lookup rows,
    // whose 8/32 is over the avx2 32-bit-lane kernel).
    func row(
      _ name: String, _ shape: LayerGEMMShape?, _ path: KernelPath, kernel: EngineKernel = .bytes,
      over32: Double? = nil, _ gops: (Int?) -> Double?
    ) -> String? {
      var line = Self.left(name, nameWidth) + "  " + Self.left(kernel.label ?? path.rawValue, 9)
      if let s = shape {
        line +=
          Self.pad(String(s.m), 6) + Self.pad(String(s.n), 8) + Self.pad(String(s.k), 7)
          + Self.pad(Self.megaMACs(s.macs), 10)
      } else {
        line +=
          String(repeating: " ", count: 21)
          + Self.pad(Self.megaMACs(r.shapes.reduce(0) { $0 + $1.macs }), 10)
      }
      if path == .reference {
        guard let g = gops(nil) else { return nil }
        return line + Self.pad(String(format: "%8.2f", g), 10)
          + "        (exact Int64 sum wrapped once; lanes do not apply)"
      }
      for l in laneList {
        if let g = gops(l) {
          line += Self.pad(String(format: "%8.2f %5.1f%%", g, 100 * g / benchmark.peak(lanes: l)), 17)
        } else {
          line += Self.pad("-", 17)
        }
      }
      if let g8 = gops(8), let g32 = gops(32) ?? over32 { line += Self.pad(String(format: "%.2f", g8 / g32), 7) }
      return line
    }
    for s in shapes {
      for path in KernelPath.allCases {
        if let line = row(s.layer, s, path, { r.gops(s.layer, path, $0) }) { lines.append(line) }
      }
      if let g = r.gops(s.layer, .avx2, 8, kernel: .lookup),
        let line = row(s.layer, s, .avx2, kernel: .lookup, over32: r.gops(s.layer, .avx2, 32), { $0 == 8 ? g : nil })
      {
        lines.append(line)
      }
    }
    for path in KernelPath.allCases {
      if let line = row("total (MAC-weighted)", nil, path, { r.totalGOPS(path, $0) }),
        path == .reference || r.totalGOPS(path, 32) != nil || r.totalGOPS(path, 16) != nil
      {
        lines.append(line)
      }
    }
    if let g = r.totalGOPS(.avx2, 8, kernel: .lookup),
      let line = row(
        "total (MAC-weighted)", nil, .avx2, kernel: .lookup, over32: r.totalGOPS(.avx2, 32), { $0 == 8 ? g : nil })
    {
      lines.append(line)
    }
    return lines
  }

  static func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? " " + s : String(repeating: " ", count: width - s.count) + s
  }

  static func left(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
  }

  static func megaMACs(_ n: Int) -> String {
    n >= 1_000_000 ? String(format: "%.2f M", Double(n) / 1e6) : String(format: "%.1f K", Double(n) / 1e3)
  }

  static func number(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : String(x) }

  /// 1234567 → "1,234,567".
  static func grouped(_ n: Int) -> String {
    let digits = String(abs(n))
    var out = ""
    for (i, ch) in digits.enumerated() {
      if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
      out.append(ch)
    }
    return n < 0 ? "-" + out : out
  }
}
