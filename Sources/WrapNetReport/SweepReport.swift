import Foundation
import WrapNet
import WrapNetEngine

/// Turns a sweep's results into `results.md` and SVG plots: the entry point of this module, `markdown()` and
/// `plots()`, drawn with its `LineChart` and `BarChart`. Pure functions of (settings, grid, results), so a
/// resumed sweep and an uninterrupted one write the same files (timings aside).
public struct SweepReport {
  public var settings: SweepSettings
  public var grid: SweepGrid
  public var results: [SweepResult]
  /// The command line that produced the sweep (printed in the report so it can be regenerated).
  public var command: String

  public init(settings: SweepSettings, grid: SweepGrid, results: [SweepResult], command: String) {
    self.settings = settings
    self.grid = grid
    self.results = results
    self.command = command
  }

  /// Accumulator width the headline, overflow and activation-shape views use: 8 when swept, else the widest.
  public var focusBits: Int { grid.bits.contains(8) ? 8 : (grid.bits.max() ?? 8) }

  func result(_ cell: SweepCell) -> SweepResult? { results.last { $0.key == cell.key } }

  /// Rows of the accuracy tables for `phase`: one per mode, cyclic split by slope (and penalty when fine-tuned).
  func rows(_ phase: SweepCell.Phase) -> [(label: String, cells: [SweepCell])] {
    var out: [(String, [SweepCell])] = []
    for m in grid.modes where m != .exact {
      if m == .cyclic {
        for k in grid.slopes {
          if phase == .eval {
            out.append(("cyclic k=\(SweepCell.number(k))", grid.bits.map { SweepCell(phase: phase, mode: m, bits: $0, slope: k) }))
          } else {
            for l in grid.penalties {
              out.append((
                "cyclic k=\(SweepCell.number(k)) λ=\(SweepCell.number(l))",
                grid.bits.map { SweepCell(phase: phase, mode: m, bits: $0, slope: k, penalty: l) }
              ))
            }
          }
        }
      } else {
        out.append((m.rawValue, grid.bits.map { SweepCell(phase: phase, mode: m, bits: $0) }))
      }
    }
    return out
  }

  static func percent(_ x: Double?) -> String { x.map { String(format: "%.2f", 100 * $0) } ?? "" }

  /// Table cell text: accuracy in %, "infeasible", or "…" while not yet run.
  func text(_ cell: SweepCell) -> String {
    guard let r = result(cell) else { return "…" }
    return r.status == "ok" ? Self.percent(r.accuracy) : "infeasible"
  }

  /// The 32-bit base model's accuracy (the `eval/exact` cell, or any eval cell's 32-bit layers otherwise).
  public var baseAccuracy: Double? { result(SweepCell(phase: .eval, mode: .exact, bits: 32))?.accuracy }

  /// The WrapNet cell shown in the headline, fixed by the flags, never by the results: k = 2 when swept (else the
  /// first slope), and the first nonzero penalty listed (else 0). So `--penalties 0.001,0.01` headlines λ = 0.001,
  /// and an ablation `--penalties 0,0.01,0.1` headlines λ = 0.01.
  public func wrapNetCell(bits: Int) -> SweepCell? {
    guard grid.modes.contains(.cyclic) else { return nil }
    let k = grid.slopes.contains(2) ? 2 : grid.slopes[0]
    let l = grid.penalties.first { $0 > 0 } ?? grid.penalties[0]
    return SweepCell(phase: .finetune, mode: .cyclic, bits: bits, slope: k, penalty: l)
  }

  /// The headline rows at `focusBits`: (what, hardware, cell).
  func headlineRows() -> [(String, String, SweepCell)] {
    let b = focusBits
    var rows: [(String, String, SweepCell)] = []
    let wrapHardware = "b-bit wrap-around accumulator"
    if grid.modes.contains(.exact) {
      rows.append(("32-bit accumulators (the base model)", AccumulatorMode.exact.hardware, SweepCell(phase: .eval, mode: .exact, bits: 32)))
      rows.append(("32-bit accumulators, fine-tuned with the same budget", AccumulatorMode.exact.hardware,
                   SweepCell(phase: .finetune, mode: .exact, bits: 32)))
    }
    if grid.modes.contains(.wrap) {
      rows.append(("\(b)-bit, no retraining (32-bit model on wrap-around)", wrapHardware,
                   SweepCell(phase: .eval, mode: .wrap, bits: b)))
      rows.append(("\(b)-bit naive wrap, fine-tuned", wrapHardware, SweepCell(phase: .finetune, mode: .wrap, bits: b)))
    }
    for m in [AccumulatorMode.clamp, .saturate, .avoid] where grid.modes.contains(m) {
      rows.append(("\(b)-bit \(m.rawValue), fine-tuned", m.hardware, SweepCell(phase: .finetune, mode: m, bits: b)))
    }
    if let c = wrapNetCell(bits: b) {
      rows.append(("\(b)-bit WrapNet (cyclic k=\(SweepCell.number(c.slope!)) + penalty λ=\(SweepCell.number(c.penalty!))), fine-tuned",
                   AccumulatorMode.cyclic.hardware, c))
    }
    return rows
  }

  /// `results.md`: headline, accuracy tables (no retraining, fine-tuned), cyclic ablation, overflow per layer,
  /// `avoid` sparsity, infeasible cells.
  public func markdown() -> String {
    let cfg = settings.model
    let t = settings.training
    var s = "# Accumulator sweep: `\(cfg.displayName)` on \(settings.dataset)\n\n"
    if cfg.widthMultiplier != 1 {
      s += "Every hidden width of `\(cfg.architecture)` multiplied by \(cfg.widthMultiplier) (`--width-multiplier \(cfg.widthMultiplier)`). "
    }
    if cfg.widthDivisor != 1 {
      s += "Every hidden width of `\(cfg.architecture)` divided by \(cfg.widthDivisor) (`--width-divisor \(cfg.widthDivisor)`). "
    }
    s += "Weights \(WeightFormat(bits: cfg.weightBits).name), \(cfg.activationBits)-bit activations; first and last layers "
    s += "\(cfg.wideFirstLayer && cfg.wideLastLayer ? "8-bit weights with 32-bit accumulators" : "as configured"). "
    s += "Every fine-tuning cell starts from the same 32-bit model with the same budget and seed: "
    s += "\(t.epochs) epoch(s) on \(t.limitTrain.map { "the first \($0)" } ?? "all") training images, \(t.optimizer) lr \(t.learningRate) "
    s += "(\(t.schedule)), batch \(t.batchSize), seed \(t.seed)\(t.augment ? ", augmentation" : ""). "
    if settings.calibrate == true {
      let target = settings.calibrationTarget.map { SweepCell.number(Float($0)) } ?? "1/3"
      s += "Every fine-tuning cell first range-calibrates the 32-bit model for its accumulator (`--calibrate`: the batch "
      s += "norms feeding the low-bit layers are scaled until their sums' RMS is at most \(target) · 2^(b−1)). "
      switch settings.residualCalibration {
      case .codeStep?:
        s += "Layers fed by a residual sum read the block input re-coded at a larger clip "
        s += "(`--residual-calibration code-step`). "
      case .batchNorm?:
        s += "Layers fed by a residual sum get the batch norm that ends the previous block's body scaled "
        s += "(`--residual-calibration batch-norm`). "
      case .none?, nil:
        if cfg.architecture == "resnet20" { s += "Layers fed by a residual sum are left alone (`--residual-calibration none`). " }
      }
      if settings.preload == true {
        s += "The wrap, cyclic, clamp and saturate cells' accumulators start at a per-channel preload, −round(mean) of "
        s += "the channel's sums, and the RMS is measured around it (`--preload`). "
      }
    }
    if let w = t.penaltyWarmup {
      s += "λ rises linearly over the first \(SweepCell.number(Float(100 * w))) % of each cell's steps (`--penalty-warmup \(w)`). "
    }
    switch t.penaltyScaling {
    case "fan-in": s += "Each low-bit layer's λ is scaled by the mean fan-in over its own (`--penalty-scaling fan-in`). "
    case "overflow":
      s += "Each low-bit layer's λ is scaled by its overflow rate over the mean rate, at every step (`--penalty-scaling overflow`). "
    default: break
    }
    let count = results.first { $0.count != nil }?.count
    s += "Accuracy on \(count.map { "\($0)" } ?? "the") test images. λ (overflow penalty) is used by cyclic cells only.\n\n"
    s += "Command: `\(command)`\n\n"
    let done = results.count, total = grid.cells().count
    if done < total { s += "**Partial: \(done) of \(total) cells finished.**\n\n" }

    let headline = headlineRows()
    if !headline.isEmpty {
      s += "## Headline at \(focusBits) bits\n\n| accumulator | needs in hardware | accuracy (%) | vs base model (pp) |\n|---|---|---:|---:|\n"
      for (what, hw, cell) in headline {
        let r = result(cell)
        var delta = ""
        if let a = r?.accuracy, let b = baseAccuracy { delta = String(format: "%+.2f", 100 * (a - b)) }
        s += "| \(what) | \(hw) | \(text(cell)) | \(delta) |\n"
      }
      s += "\n"
    }

    for phase in [SweepCell.Phase.eval, .finetune] {
      s += phase == .eval
        ? "## Accuracy (%) without retraining: the 32-bit model run on each accumulator\n\n"
        : "## Accuracy (%) after fine-tuning for each accumulator\n\n"
      s += "| mode | " + grid.bits.map { "\($0) bits" }.joined(separator: " | ") + " |\n"
      s += "|---|" + String(repeating: "---:|", count: grid.bits.count) + "\n"
      if grid.modes.contains(.exact) {
        let e = text(SweepCell(phase: phase, mode: .exact, bits: 32))
        s += "| exact (32-bit) | " + grid.bits.map { _ in e }.joined(separator: " | ") + " |\n"
      }
      for row in rows(phase) {
        s += "| \(row.label) | " + row.cells.map(text).joined(separator: " | ") + " |\n"
      }
      s += "\n"
    }

    if grid.modes.contains(.cyclic) && (grid.slopes.count > 1 || grid.penalties.count > 1) {
      for b in grid.bits {
        s += "## Cyclic ablation at \(b) bits: accuracy (%) after fine-tuning, slope k × penalty λ\n\n"
        s += "| k \\ λ | " + grid.penalties.map { SweepCell.number($0) }.joined(separator: " | ") + " |\n"
        s += "|---|" + String(repeating: "---:|", count: grid.penalties.count) + "\n"
        for k in grid.slopes {
          s += "| \(SweepCell.number(k)) | "
            + grid.penalties.map { text(SweepCell(phase: .finetune, mode: .cyclic, bits: b, slope: k, penalty: $0)) }
            .joined(separator: " | ") + " |\n"
        }
        s += "\n"
      }
    }

    let overflow = overflowColumns()
    if !overflow.layers.isEmpty {
      s += "## Overflow rate (% of outputs whose exact sum leaves the \(focusBits)-bit range), per low-bit layer\n\n"
      s += "| layer | " + overflow.columns.map(\.label).joined(separator: " | ") + " |\n"
      s += "|---|" + String(repeating: "---:|", count: overflow.columns.count) + "\n"
      for (i, name) in overflow.layers.enumerated() {
        s += "| \(name) | " + overflow.columns.map { String(format: "%.4f", 100 * $0.rates[i]) }.joined(separator: " | ") + " |\n"
      }
      s += "\n"
    }

    let avoid = results.filter { $0.mode == .avoid && $0.status == "ok" && $0.forcedZeroShare != nil }
    if !avoid.isEmpty {
      s += "## avoid: share of low-bit weights the constraint ‖w‖₁·(2^a−1) ≤ 2^(b−1)−1 forces to zero\n\n"
      s += "| cell | forced to zero (%) |\n|---|---:|\n"
      for r in avoid { s += "| \(r.key) | \(String(format: "%.2f", 100 * r.forcedZeroShare!)) |\n" }
      s += "\n"
    }
    let infeasible = results.filter { $0.status != "ok" }
    if !infeasible.isEmpty {
      s += "## Infeasible cells\n\n"
      var seen = Set<String>()
      for r in infeasible where seen.insert(r.reason ?? "").inserted {
        s += "- \(r.key) (and others with the same reason): \(r.reason ?? r.status)\n"
      }
      s += "\n"
    }
    let seconds = results.reduce(0) { $0 + $1.seconds }
    s += "Cells took \(String(format: "%.0f", seconds)) s in all (2 cores), not counting the base model.\n"
    return s
  }

  /// Per-layer overflow at `focusBits`: the 32-bit model before adaptation, then every fine-tuned cell.
  func overflowColumns() -> (layers: [String], columns: [(label: String, rates: [Double])]) {
    let b = focusBits
    var columns: [(String, [Double])] = []
    var names: [String] = []
    func lowBit(_ r: SweepResult) -> [SweepLayer] { (r.layers ?? []).filter { $0.accumulatorBits < 32 } }
    // Before: the 32-bit model's sums (identical for wrap, cyclic, clamp, saturate; avoid changes the weights).
    if let before = results.first(where: {
      $0.phase == .eval && $0.bits == b && $0.status == "ok" && [.wrap, .cyclic, .clamp, .saturate].contains($0.mode)
    }) {
      names = lowBit(before).map(\.name)
      columns.append(("32-bit model (before)", lowBit(before).map(\.overflowRate)))
    }
    for row in rows(.finetune) {
      guard let cell = row.cells.first(where: { $0.bits == b }), let r = result(cell), r.status == "ok" else { continue }
      let layers = lowBit(r)
      if names.isEmpty { names = layers.map(\.name) }
      guard layers.map(\.name) == names else { continue }
      columns.append(("\(row.label) fine-tuned", layers.map(\.overflowRate)))
    }
    return (names, columns)
  }

  /// SVG plots by file name: accuracy vs bits (fine-tuned, and without retraining), overflow per layer before and
  /// after adaptation, and the cyclic activation's shape.
  public func plots() -> [(name: String, svg: String)] {
    var out: [(String, String)] = []
    let cfg = settings.model
    let what = "\(cfg.displayName) on \(settings.dataset)"
    let xTicks = grid.bits.map(Double.init)
    func series(_ phase: SweepCell.Phase) -> [PlotSeries] {
      rows(phase).map { row in
        PlotSeries(
          name: row.label,
          points: row.cells.compactMap { c in
            guard let r = result(c), r.status == "ok", let a = r.accuracy else { return nil }
            return (Double(c.bits), 100 * a)
          })
      }.filter { !$0.points.isEmpty }
    }
    var reference: [PlotSeries] = []
    if let base = baseAccuracy, let lo = grid.bits.min(), let hi = grid.bits.max() {
      reference.append(PlotSeries(name: "32-bit accumulators", points: [(Double(lo), 100 * base), (Double(hi), 100 * base)], dashed: true))
    }
    if !grid.bits.isEmpty {
      var tuned = series(.finetune)
      if grid.modes.contains(.wrap) {
        let naive = grid.bits.compactMap { b -> (Double, Double)? in
          guard let r = result(SweepCell(phase: .eval, mode: .wrap, bits: b)), let a = r.accuracy else { return nil }
          return (Double(b), 100 * a)
        }
        if !naive.isEmpty { tuned.append(PlotSeries(name: "wrap, no retraining", points: naive, dashed: true)) }
      }
      out.append((
        "accuracy-vs-bits.svg",
        LineChart(
          title: "\(what): accuracy after fine-tuning", xLabel: "accumulator bits", yLabel: "test accuracy (%)",
          series: tuned + reference, xTicks: xTicks, yRange: 0...100
        ).svg()
      ))
      out.append((
        "accuracy-vs-bits-no-retraining.svg",
        LineChart(
          title: "\(what): 32-bit model, no retraining", xLabel: "accumulator bits", yLabel: "test accuracy (%)",
          series: series(.eval) + reference, xTicks: xTicks, yRange: 0...100
        ).svg()
      ))
    }
    let overflow = overflowColumns()
    if !overflow.layers.isEmpty {
      out.append((
        "overflow-per-layer.svg",
        BarChart(
          title: "Overflow per layer at \(focusBits) bits (\(what))",
          yLabel: "outputs overflowing (%)", categories: overflow.layers,
          series: overflow.columns.map { ($0.label, $0.rates.map { 100 * $0 }) }
        ).svg()
      ))
    }
    if grid.modes.contains(.cyclic) {
      let b = focusBits
      let half = Double(1 << (b - 1))
      let activation = grid.slopes.map { k in
        PlotSeries(
          name: "f_k(wrap_\(b)(z)), k=\(SweepCell.number(k))",
          points: PlotSeries.function(
            { z in Double(CyclicActivation(width: AccumulatorWidth(bits: b), slope: k)(Float(z).wrapped(toBits: b))) }, from: -2 * half,
            to: 2 * half, samples: 801))
      }
      let identity = PlotSeries(name: "z (32-bit)", points: [(-2 * half, -2 * half), (2 * half, 2 * half)], dashed: true)
      out.append((
        "cyclic-activation.svg",
        LineChart(
          title: "Cyclic activation on a \(b)-bit wrap-around accumulator", xLabel: "exact sum z",
          yLabel: "layer output", series: activation + [identity], markers: false
        ).svg()
      ))
    }
    return out
  }
}
