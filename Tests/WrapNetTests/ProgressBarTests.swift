import Foundation
import Testing
import WrapNet

/// Collects what a progress bar writes.
private final class Capture: @unchecked Sendable {
  private let lock = NSLock()
  private var chunks: [String] = []
  func append(_ s: String) { lock.withLock { chunks.append(s) } }
  var text: String { lock.withLock { chunks.joined() } }
}

@Suite struct ProgressBarTests {
  @Test func lineShowsCountPercentMetricsAndETA() {
    let bar = ProgressBar(total: 200, label: "epoch 1/3", interactive: false, sink: { _ in })
    let line = bar.line(done: 50, metrics: [("loss", "1.234"), ("acc", "56.7%")], elapsedSeconds: 30)
    // 50 of 200 in 30 s: 150 left at 0.6 s each = 90 s.
    #expect(line == "epoch 1/3  [#####...............]  50/200   25.0%  loss 1.234  acc 56.7%  ETA 0:01:30")
    #expect(bar.line(done: 0, metrics: [], elapsedSeconds: 0).hasSuffix("ETA --"))
    #expect(bar.line(done: 200, metrics: [], elapsedSeconds: 3725, final: true).hasSuffix("100.0%  in 1:02:05"))
    #expect(ProgressBar.formatDuration(59.6) == "0:01:00")
  }

  @Test func logModePrintsEveryTenPercent() {
    let capture = Capture()
    var bar = ProgressBar(total: 50, label: "t", interactive: false, logInterval: 1e9, sink: capture.append)
    for done in 1...50 { bar.update(done: done, metrics: [("loss", "\(done)")]) }
    bar.finish()
    let lines = capture.text.split(separator: "\n", omittingEmptySubsequences: false)
    // The first update (so a log shows the task started), 10 decile lines (5, 10, ..., 50), the final line, and
    // the empty tail after the last newline.
    #expect(lines.count == 13, "\(lines)")
    #expect(lines[0].contains(" 1/50"))
    #expect(lines[1].contains(" 5/50") && lines[1].contains("loss 5"))
    #expect(lines[11].contains("50/50") && lines[11].contains(" in "))
    #expect(!capture.text.contains("\r"))
  }

  @Test func terminalModeRedrawsInPlace() {
    let capture = Capture()
    var bar = ProgressBar(total: 4, label: "t", interactive: true, sink: capture.append)
    bar.update(done: 1)
    bar.update(done: 4)
    bar.finish(metrics: [("acc", "90%")])
    let text = capture.text
    #expect(text.hasPrefix("\rt  [#####"))
    #expect(text.hasSuffix("acc 90%  in 0:00:00\n"))
    #expect(text.filter { $0 == "\n" }.count == 1)
  }
}
