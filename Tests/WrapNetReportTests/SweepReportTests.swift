import Testing
import WrapNet
import WrapNetReport

/// `SweepReport` on a small grid with some cells finished: tables, plots and the headline cell.
@Suite struct SweepReportTests {
  /// A finished sweep of the 32-bit mlp on MNIST (the settings only label the report).
  func settings() -> SweepSettings {
    SweepSettings(
      dataset: "mnist", model: ModelConfig(architecture: "mlp", accumulatorBits: 32, accumulatorMode: .exact),
      training: TrainingOptions(), limitTest: nil, baseDigest: "abc")
  }

  /// Naive 8-bit wrap-around without retraining at 50 %.
  let wrapResult = SweepResult(
    key: "eval/b8/wrap", phase: .eval, mode: .wrap, bits: 8, status: "ok", accuracy: 0.5, seconds: 1, hardware: "x")

  /// The report lists every cell of the grid, marks unfinished ones, and the plots are written for finished data.
  @Test func reportTablesAndPlots() {
    let grid = SweepGrid(bits: [6, 8], modes: [.exact, .wrap, .cyclic])
    var results = [wrapResult]
    results.append(SweepResult(key: "eval/exact", phase: .eval, mode: .exact, bits: 32, status: "ok", accuracy: 0.99, seconds: 1, hardware: "x"))
    let report = SweepReport(settings: settings(), grid: grid, results: results, command: "wrapnet sweep --bits 6,8")
    let md = report.markdown()
    #expect(md.contains("Partial: 2 of"))
    #expect(md.contains("| wrap | … | 50.00 |"))
    #expect(md.contains("wrapnet sweep --bits 6,8"))
    #expect(md.contains("Headline at 8 bits"))
    let names = report.plots().map(\.name)
    #expect(names.contains("accuracy-vs-bits.svg") && names.contains("cyclic-activation.svg"))
  }

  /// The headline's WrapNet cell follows the flags' order (k = 2 when swept; the first nonzero λ), not the results.
  @Test func headlineWrapNetCellFollowsTheFlags() {
    func cell(_ slopes: [Float], _ penalties: [Float]) -> String? {
      SweepReport(settings: settings(), grid: SweepGrid(bits: [8], modes: [.cyclic], slopes: slopes, penalties: penalties),
                  results: [], command: "").wrapNetCell(bits: 8)?.key
    }
    #expect(cell([2], [0.01]) == "finetune/b8/cyclic/k2/l0.01")
    #expect(cell([2], [0.001, 0.01]) == "finetune/b8/cyclic/k2/l0.001")
    #expect(cell([1, 2, 4], [0, 0.01, 0.1]) == "finetune/b8/cyclic/k2/l0.01")
    #expect(cell([4, 1], [0]) == "finetune/b8/cyclic/k4/l0")
  }

  /// A penalty schedule is stated in the report; without one the report says nothing about it.
  @Test func penaltyScheduleIsStated() {
    var scheduled = settings()
    scheduled.training.penaltyWarmup = 0.5
    scheduled.training.penaltyScaling = "fan-in"
    let grid = SweepGrid(bits: [8], modes: [.cyclic])
    let md = SweepReport(settings: scheduled, grid: grid, results: [], command: "").markdown()
    #expect(md.contains("first 50 % of each cell's steps"))
    #expect(md.contains("--penalty-scaling fan-in"))
    let plain = SweepReport(settings: settings(), grid: grid, results: [], command: "").markdown()
    #expect(!plain.contains("--penalty-warmup") && !plain.contains("--penalty-scaling"))
  }

  /// The residual-layer calibration is stated for resnet20 sweeps, with its flag.
  @Test func residualCalibrationIsStated() {
    var s = settings()
    s.model = ModelConfig(architecture: "resnet20")
    s.calibrate = true
    let grid = SweepGrid(bits: [8], modes: [.cyclic])
    func md(_ r: RangeCalibration.ResidualCalibration?) -> String {
      var t = s
      t.residualCalibration = r
      return SweepReport(settings: t, grid: grid, results: [], command: "").markdown()
    }
    #expect(md(.codeStep).contains("`--residual-calibration code-step`"))
    #expect(md(.batchNorm).contains("`--residual-calibration batch-norm`"))
    #expect(md(nil).contains("`--residual-calibration none`"))
    #expect(md(.codeStep).contains("at most 1/3 · 2^(b−1)"))
    s.calibrationTarget = 0.5
    #expect(md(nil).contains("at most 0.5 · 2^(b−1)"))
    s.model = ModelConfig(architecture: "cnn")
    #expect(!md(nil).contains("--residual-calibration"))
  }
}
