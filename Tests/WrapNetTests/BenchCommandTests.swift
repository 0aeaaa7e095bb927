import Foundation
import Testing

/// `wrapnet bench` flags: rejected before any work with a message naming the flag, and `--json` prints the
/// library's document.
@Suite(.serialized) struct BenchCommandTests {
  /// Bad flags are rejected before any work, with a message naming the flag.
  @Test(arguments: [
    (["bench", "--model", "resnet99"], "--model"),
    (["bench", "--threads", "0"], "--threads"),
    (["bench", "--batches", "x"], "--batches"),
    (["bench", "--batches", "1,0"], "--batches"),
    (["bench", "--acc-bits", "17"], "--acc-bits must be at most 16 here"),
    (["bench", "--acc-bits", "1"], "--acc-bits must be in 2...32, got 1"),
    (["bench", "--acc-bits", "eight"], "--acc-bits must be in 2...32, got 'eight'"),
    (["bench", "--weight-bits", "9"], "--weight-bits"),
    (["bench", "--seconds", "0"], "--seconds"),
    (["bench", "--clock", "sundial"], "sundial"),
  ])
  func badFlagsGiveClearErrors(arguments: [String], fragment: String) throws {
    let (status, _, err) = try runWrapnet(arguments)
    #expect(status == 1)
    #expect(err.contains(fragment), "stderr should mention '\(fragment)': \(err)")
    #expect(!err.contains("Fatal error"), "must not crash: \(err)")
  }

  /// The command prints the report's JSON on stdout (its keys are checked in WrapNetBenchTests).
  @Test func jsonGoesToStdout() throws {
    let (status, out, err) = try runWrapnet([
      "bench", "--model", "mlp", "--seconds", "0.01", "--model-seconds", "0.01", "--batches", "1", "--threads", "1",
      "--json",
    ])
    #expect(status == 0, "\(err)")
    let doc = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], "\(out)")
    #expect((doc["models"] as? [[String: Any]])?.first?["model"] as? String == "mlp")
    #expect(err.contains("bench mlp: whole model, batch 1, 1 thread(s)"), "\(err)")
  }
}
