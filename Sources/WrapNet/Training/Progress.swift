import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// A one-line progress display for a training or evaluation epoch, written to stderr.
///
/// On a terminal the line is redrawn in place (`\r`, at most every 0.1 s); otherwise (logs, CI) a full line is
/// printed each time another 10% is done or `logInterval` seconds have passed, so logs stay short. Line format:
/// ```
/// train [#######.............]  137/390  35.1%  loss 1.234  acc 56.7%  ETA 0:01:05
/// ```
/// ETA = elapsed / done * (total - done).
public struct ProgressBar: Sendable {
  /// Number of units (batches or samples) in the whole task.
  public let total: Int
  /// Text at the start of the line (e.g. "epoch 3/20").
  public let label: String
  /// Whether the line is redrawn in place (stderr is a terminal) or printed as separate lines.
  public let interactive: Bool
  /// Non-interactive mode prints at least this often (seconds), besides every 10%.
  public let logInterval: Double

  private let sink: @Sendable (String) -> Void
  private let start = ContinuousClock.now
  private var lastOutput: ContinuousClock.Instant? = nil
  private var lastDecile = 0
  private var lastDone = 0
  private var lastMetrics: [(String, String)] = []
  private var lastLineLength = 0
  private var finished = false

  /// A progress bar over `total` units. `interactive` defaults to whether stderr is a terminal; `sink` receives
  /// the raw text (default: written to stderr). Precondition: `total >= 0`.
  public init(
    total: Int, label: String, interactive: Bool? = nil, logInterval: Double = 10,
    sink: (@Sendable (String) -> Void)? = nil
  ) {
    precondition(total >= 0, "ProgressBar total \(total) must not be negative")
    self.total = total
    self.label = label
    self.interactive = interactive ?? (isatty(2) == 1)
    self.logInterval = logInterval
    self.sink = sink ?? { text in
      // write(2) on fd 2 directly: unbuffered, and no access to the C global `stderr`.
      var bytes = Array(text.utf8)
      bytes.withUnsafeMutableBytes { raw in _ = write(2, raw.baseAddress, raw.count) }
    }
  }

  /// Reports that `done` of `total` units are finished, with metrics such as `[("loss", "1.234"), ("acc", "56.7%")]`.
  /// Cheap to call every batch: output is throttled as described on the type.
  public mutating func update(done: Int, metrics: [(String, String)] = []) {
    precondition(done >= 0, "ProgressBar done \(done) must not be negative")
    let now = ContinuousClock.now
    lastDone = done
    lastMetrics = metrics
    let decile = total > 0 ? min(done, total) * 10 / total : 10
    let sinceOutput = lastOutput.map { seconds(now - $0) } ?? .infinity
    if interactive {
      guard sinceOutput >= 0.1 || done >= total else { return }
    } else {
      guard decile > lastDecile || sinceOutput >= logInterval else { return }
    }
    lastDecile = max(lastDecile, decile)
    lastOutput = now
    emit(line(done: done, metrics: metrics, elapsedSeconds: seconds(now - start)))
  }

  /// Prints the final state (with the last metrics, or `metrics` when given) and ends the line.
  public mutating func finish(metrics: [(String, String)]? = nil) {
    guard !finished else { return }
    finished = true
    let text = line(
      done: lastDone, metrics: metrics ?? lastMetrics, elapsedSeconds: seconds(ContinuousClock.now - start),
      final: true)
    if interactive {
      emit(text)
      sink("\n")
    } else {
      sink(text + "\n")
    }
  }

  /// The text of one progress line (no `\r` or newline). With `final`, the ETA is replaced by the elapsed time.
  public func line(done: Int, metrics: [(String, String)], elapsedSeconds: Double, final: Bool = false) -> String {
    let fraction = total > 0 ? Double(min(done, total)) / Double(total) : 1
    let width = 20
    let filled = Int((fraction * Double(width)).rounded(.down))
    var parts = [
      label, "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]",
      "\(done)/\(total)", String(format: "%5.1f%%", fraction * 100),
    ]
    for (name, value) in metrics { parts.append("\(name) \(value)") }
    if final {
      parts.append("in " + ProgressBar.formatDuration(elapsedSeconds))
    } else if done > 0 {
      let remaining = elapsedSeconds / Double(done) * Double(max(total - done, 0))
      parts.append("ETA " + ProgressBar.formatDuration(remaining))
    } else {
      parts.append("ETA --")
    }
    return parts.filter { !$0.isEmpty }.joined(separator: "  ")
  }

  /// `h:mm:ss` for a non-negative number of seconds (rounded to the nearest second).
  public static func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "--" }
    let s = Int(seconds.rounded())
    return String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
  }

  private mutating func emit(_ text: String) {
    if interactive {
      // Pad with spaces so a shorter line fully covers the previous one.
      let padding = String(repeating: " ", count: max(0, lastLineLength - text.count))
      lastLineLength = text.count
      sink("\r" + text + padding)
    } else {
      sink(text + "\n")
    }
  }

  private func seconds(_ duration: Duration) -> Double {
    let c = duration.components
    return Double(c.seconds) + Double(c.attoseconds) * 1e-18
  }
}
