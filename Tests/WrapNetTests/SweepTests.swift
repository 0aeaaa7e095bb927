import Foundation
import Testing
import WrapNet
import WrapNetEngine
import WrapNetTestSupport

/// The sequential b-bit saturating accumulator written as plainly as possible: the oracle for `saturatingSums`.
/// x: [N, C, H, W] codes, w: [O, C, k, k] codes; terms in the order channel, kernel row, kernel column.
private func plainSaturatingConv(
  _ x: [Int], n: Int, c: Int, h: Int, w: Int, _ wt: [Int], o: Int, k: Int, stride: Int, pad: Int, bits: Int
) -> [Int] {
  let lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1
  let ho = (h + 2 * pad - k) / stride + 1, wo = (w + 2 * pad - k) / stride + 1
  var out: [Int] = []
  for i in 0..<n {
    for oc in 0..<o {
      for oy in 0..<ho {
        for ox in 0..<wo {
          var s = 0
          for ci in 0..<c {
            for ky in 0..<k {
              for kx in 0..<k {
                let iy = oy * stride - pad + ky, ix = ox * stride - pad + kx
                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                s = min(max(s + x[((i * c + ci) * h + iy) * w + ix] * wt[((oc * c + ci) * k + ky) * k + kx], lo), hi)
              }
            }
          }
          out.append(s)
        }
      }
    }
  }
  return out
}

@Suite struct SaturatingAccumulatorTests {
  /// The vectorized, threaded saturating sums equal the plain sequential loop for convolutions (stride, padding,
  /// odd sizes) and linear layers, with sums that saturate many times.
  @Test(arguments: [
    (1, 3, 5, 5, 7, 3, 1, 1, 4, 3, 1), (2, 5, 7, 6, 3, 3, 2, 1, 5, 3, 2), (3, 2, 4, 4, 17, 1, 1, 0, 6, 255, 8),
    (2, 16, 3, 3, 33, 3, 1, 1, 5, 3, 2), (1, 1, 1, 1, 1, 1, 1, 0, 3, 3, 1),
  ])
  func convMatchesPlainLoop(shape: (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int)) {
    let (n, c, h, w, o, k, stride, pad, bits, maxCode, weightBits) = shape
    var rng = SeededGenerator(seed: UInt64(n * 1000 + c * 100 + o))
    let layer = WrapLayer(
      name: "t", geometry: .conv(inChannels: c, outChannels: o, kernel: k, stride: stride, padding: pad),
      weightFormat: WeightFormat(bits: weightBits), accumulator: Accumulator(width: AccumulatorWidth(bits: bits), mode: .saturate),
      maxInputCode: maxCode, inputScale: 1, generator: &rng)
    let x = (0..<(n * c * h * w)).map { _ in rng.int(below: maxCode + 1) }
    let codes = layer.quantizedWeights().codes
    let got = layer.saturatingSums(Tensor(shape: [n, c, h, w], data: x.map(Float.init)), codes: codes)
    let want = plainSaturatingConv(x, n: n, c: c, h: h, w: w, codes.map { Int($0) }, o: o, k: k, stride: stride, pad: pad, bits: bits)
    #expect(got.data.count == want.count)
    let firstDifference = want.indices.first { Int(got.data[$0]) != want[$0] }
    #expect(firstDifference == nil, "first difference at \(firstDifference ?? -1)")
    #expect(want.contains((1 << (bits - 1)) - 1) || want.contains(-(1 << (bits - 1))), "the test should saturate")
  }

  @Test(arguments: [1, 2, 7, 64, 129])
  func linearMatchesPlainLoop(features: Int) {
    var rng = SeededGenerator(seed: UInt64(features))
    let outF = 5
    let layer = WrapLayer(
      name: "t", geometry: .linear(inFeatures: features, outFeatures: outF), weightFormat: .ternary(threshold: 0.7),
      accumulator: Accumulator(width: AccumulatorWidth(bits: 4), mode: .saturate), maxInputCode: 3, inputScale: 1, generator: &rng)
    let x = (0..<(3 * features)).map { _ in rng.int(below: 4) }
    let codes = layer.quantizedWeights().codes
    let got = layer.saturatingSums(Tensor(shape: [3, features], data: x.map(Float.init)), codes: codes)
    // A linear layer is a 1×1 convolution over a 1×1 image with `features` channels.
    let want = plainSaturatingConv(x, n: 3, c: features, h: 1, w: 1, codes.map { Int($0) }, o: outF, k: 1, stride: 1, pad: 0, bits: 4)
    #expect(got.data.map { Int($0) } == want)
  }
}

@Suite struct AvoidModeTests {
  /// After the projection every channel's ‖codes‖₁ is within budget, so even the worst-case input (every code at
  /// its maximum, signs aligned) cannot overflow; channels already within budget are untouched, and the codes kept
  /// are those of the largest latent |w|.
  @Test(arguments: [(2, 8), (2, 6), (4, 10), (3, 8)])
  func projectionBoundsEveryChannel(weightBits: Int, bits: Int) {
    var rng = SeededGenerator(seed: UInt64(weightBits * 31 + bits))
    let fan = 3 * 3 * 9
    var layer = WrapLayer(
      name: "t", geometry: .conv(inChannels: 9, outChannels: 6, kernel: 3, stride: 1, padding: 1),
      weightFormat: WeightFormat(bits: weightBits), accumulator: Accumulator(width: AccumulatorWidth(bits: bits), mode: .avoid), maxInputCode: 3,
      inputScale: 1, generator: &rng)
    // Channel 0 small enough to be within budget whatever b: only two nonzero weights.
    for k in 0..<fan { layer.weight.data[k] = k < 2 ? 0.5 : 0 }
    let budget = ((1 << (bits - 1)) - 1) / 3
    #expect(layer.avoidBudget == budget)
    let plain = WeightFormat(bits: weightBits).quantize(layer.weight.data, outChannels: 6).codes
    let codes = layer.quantizedWeights().codes
    for c in 0..<6 {
      let row = Array(codes[(c * fan)..<((c + 1) * fan)])
      let l1 = row.reduce(0) { $0 + Int(abs($1)) }
      #expect(l1 <= budget, "channel \(c): ‖codes‖₁ \(l1) > budget \(budget)")
      #expect(l1 * 3 <= (1 << (bits - 1)) - 1)
      let before = Array(plain[(c * fan)..<((c + 1) * fan)])
      if before.reduce(0, { $0 + Int(abs($1)) }) <= budget { #expect(row == before, "channel \(c) changed") }
      // Every kept code has latent |w| at least that of every dropped code.
      let kept = (0..<fan).filter { row[$0] != 0 }.map { abs(layer.weight.data[c * fan + $0]) }
      let dropped = (0..<fan).filter { row[$0] == 0 && before[$0] != 0 }.map { abs(layer.weight.data[c * fan + $0]) }
      if let minKept = kept.min(), let maxDropped = dropped.max() { #expect(minKept >= maxDropped) }
      // Signs are kept and magnitudes never grow.
      for k in 0..<fan where row[k] != 0 { #expect(row[k].sign == before[k].sign && abs(row[k]) <= abs(before[k])) }
    }
    #expect(layer.avoidForcedZeroShare() > 0, "a fan-in of \(fan) must exceed the budget somewhere")
    // Random and extreme inputs never overflow.
    let x = Tensor(shape: [2, 9, 4, 4], data: (0..<288).map { i in i < 144 ? 3 : Float(rng.int(below: 4)) })
    _ = layer.forward(x, phase: .evaluation)
    #expect(layer.overflowsSeen == 0)
  }

  /// Binary weights cannot be zeroed: a binary model whose fan-in is over budget is refused with a message that
  /// says why and what to do; at enough bits it is accepted.
  @Test func binaryInfeasibleIsRefusedClearly() throws {
    #expect {
      _ = try WrapModel(config: ModelConfig(architecture: "mlp", weightBits: 1, accumulatorBits: 8, accumulatorMode: .avoid), seed: 0)
    } throws: { error in
      let text = "\(error)"
      return text.contains("infeasible") && text.contains("binary") && text.contains("--weight-bits 2")
    }
    var model = try WrapModel(config: ModelConfig(architecture: "mlp", weightBits: 1, accumulatorBits: 13, accumulatorMode: .avoid), seed: 0)
    #expect(model.avoidInfeasibility() == nil)
    #expect(model.avoidForcedZeroShare() == 0)
  }

  /// The straight-through gradient reaches the weights the projection dropped (so they can come back).
  @Test func droppedWeightsStillGetGradients() {
    var rng = SeededGenerator(seed: 9)
    var layer = WrapLayer(
      name: "t", geometry: .linear(inFeatures: 40, outFeatures: 2), weightFormat: .ternary(threshold: 0.5),
      accumulator: Accumulator(width: AccumulatorWidth(bits: 5), mode: .avoid), maxInputCode: 3, inputScale: 1, generator: &rng)
    let x = Tensor(shape: [4, 40], data: (0..<160).map { _ in Float(1 + rng.int(below: 3)) })
    let codes = layer.quantizedWeights().codes
    let plain = WeightFormat.ternary(threshold: 0.5).quantize(layer.weight.data, outChannels: 2).codes
    let dropped = (0..<80).filter { codes[$0] == 0 && plain[$0] != 0 }
    #expect(!dropped.isEmpty)
    _ = layer.forward(x, phase: .training)
    _ = layer.backward(Tensor(shape: [4, 2], data: [Float](repeating: 1, count: 8)))
    #expect(dropped.allSatisfy { layer.gradWeight.data[$0] != 0 })
  }
}

@Suite struct SweepJournalTests {
  func settings(epochs: Int = 1) -> SweepSettings {
    var t = TrainingOptions()
    t.epochs = epochs
    return SweepSettings(dataset: "mnist", model: ModelConfig(architecture: "mlp", accumulatorBits: 32, accumulatorMode: .exact),
                         training: t, limitTest: nil, baseDigest: "abc")
  }

  func result(_ key: String) -> SweepResult {
    SweepResult(key: key, phase: .eval, mode: .wrap, bits: 8, status: "ok", accuracy: 0.5, seconds: 1, hardware: "x")
  }

  /// Grid cells have unique keys; eval cells come first; cyclic expands over slopes (and penalties when fine-tuned).
  @Test func gridCells() throws {
    let grid = SweepGrid(bits: [6, 8], modes: [.exact, .wrap, .cyclic, .avoid], slopes: [1, 2], penalties: [0, 0.01])
    try grid.validate()
    let cells = grid.cells()
    #expect(Set(cells.map(\.key)).count == cells.count)
    // eval: exact + 2 bits × (wrap + 2 slopes + avoid); finetune: exact + 2 × (wrap + 4 + avoid)
    #expect(cells.count == (1 + 2 * 4) + (1 + 2 * 6))
    #expect(cells.prefix(9).allSatisfy { $0.phase == .eval })
    #expect(cells.map(\.key).contains("finetune/b8/cyclic/k2/l0.01"))
    #expect(cells.map(\.key).contains("eval/exact"))
    #expect(throws: ConfigError.self) { try SweepGrid(bits: [8, 8], modes: [.wrap]).validate() }
    #expect(throws: ConfigError.self) { try SweepGrid(bits: [40], modes: [.wrap]).validate() }
  }

  /// Results survive reopening; a partial last line (a killed write) is dropped; other settings are refused;
  /// a corrupt line in the middle is reported with its line number.
  @Test func resumeRepairAndRefuse() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let path = dir.file("results.jsonl")
    var journal = try SweepJournal(path: path, settings: settings())
    try journal.append(result("eval/b8/wrap"))
    try journal.append(result("eval/b6/wrap"))
    let reopened = try SweepJournal(path: path, settings: settings())
    #expect(reopened.results == journal.results)

    let handle = try #require(FileHandle(forWritingAtPath: path))
    try handle.seekToEnd()
    try handle.write(contentsOf: Data("{\"key\":\"eval/b4/wr".utf8))
    try handle.close()
    let repaired = try SweepJournal(path: path, settings: settings())
    #expect(repaired.results.map(\.key) == ["eval/b8/wrap", "eval/b6/wrap"])
    #expect(try String(contentsOfFile: path, encoding: .utf8).hasSuffix("\n"))

    #expect { _ = try SweepJournal(path: path, settings: settings(epochs: 2)) } throws: {
      "\($0)".contains("different settings: training.epochs (journal: 1, now: 2)")
    }
    var residual = settings()
    residual.residualCalibration = .codeStep
    #expect { _ = try SweepJournal(path: path, settings: residual) } throws: {
      "\($0)".contains("residual_calibration (journal: unset, now: \"code-step\")")
    }
    var scheduled = settings()
    scheduled.training.penaltyWarmup = 0.5
    #expect { _ = try SweepJournal(path: path, settings: scheduled) } throws: { "\($0)".contains("different settings") }
    var lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
    lines[1] = "garbage"
    try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path))
    #expect { _ = try SweepJournal(path: path, settings: settings()) } throws: { "\($0)".contains("line 2") }
  }
}
