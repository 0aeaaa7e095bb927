import Foundation
import Testing
import WrapNetHardware

/// `wrapnet rtl` as a user runs it: the executable built beside the test bundle.
private func rtl(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
  var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
  if !FileManager.default.fileExists(atPath: dir.appendingPathComponent("wrapnet").path) { dir.deleteLastPathComponent() }
  let process = Process()
  process.executableURL = dir.appendingPathComponent("wrapnet")
  process.arguments = ["rtl"] + arguments
  let (out, err) = (Pipe(), Pipe())
  (process.standardOutput, process.standardError) = (out, err)
  try process.run()
  let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  process.waitUntilExit()
  return (process.terminationStatus, stdout, stderr)
}

@Suite struct RTLCommandTests {
  @Test(arguments: [
    (["--pe", "--acc-bits", "8", "--out", "/tmp/x"], "--acc-mode"),
    (["--pe", "--acc-mode", "wrap", "--out", "/tmp/x"], "--acc-bits"),
    (["--pe", "--acc-mode", "sloppy", "--acc-bits", "8", "--out", "/tmp/x"], "sloppy"),
    (["--pe", "--acc-mode", "wrap", "--acc-bits", "40", "--out", "/tmp/x"], "--acc-bits"),
    (["--pe", "--acc-mode", "wrap", "--acc-bits", "8", "--weights", "int9", "--out", "/tmp/x"], "int9"),
    (["--pe", "--acc-mode", "wrap", "--acc-bits", "8", "--parallel", "0", "--out", "/tmp/x"], "--parallel"),
    (["--array", "8by8", "--acc-mode", "wrap", "--acc-bits", "8", "--out", "/tmp/x"], "--array"),
    (["--array", "8x8", "--acc-mode", "wrap", "--acc-bits", "8", "--parallel", "4", "--out", "/tmp/x"], "P = 1"),
    (["--pe", "--acc-mode", "wrap", "--acc-bits", "8"], "--out"),
    (["/nonexistent/model.safetensors", "--out", "/tmp/x"], "/nonexistent/model.safetensors"),
    (["--acc-mode", "wrap", "--out", "/tmp/x"], "MODEL"),
    (["--pe", "--acc-mode", "clamp", "--acc-bits", "8", "--weights", "int8", "--act-bits", "8", "--fan-in", "100000", "--out", "/tmp/x"], "--fan-in"),
  ])
  func badRequestsAreRefusedByName(arguments: [String], fragment: String) throws {
    let (status, _, err) = try rtl(arguments)
    #expect(status != 0)
    #expect(err.contains(fragment), "stderr should mention '\(fragment)': \(err)")
    #expect(!err.contains("Fatal error"))
  }

  @Test func peFilesAreWrittenAndTheLastLineIsTheVerilog() throws {
    let dir = NSTemporaryDirectory() + "wrapnet-rtl-cli-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let (status, out, err) = try rtl([
      "--pe", "--weights", "binary", "--act-bits", "2", "--acc-bits", "8", "--acc-mode", "saturate", "--parallel", "16",
      "--out", dir, "--no-simulate",
    ])
    #expect(status == 0, "\(err)")
    let last = out.split(separator: "\n").last.map(String.init) ?? ""
    #expect(last == "\(dir)/pe_binary_a2_b8_saturate_p16.v")
    #expect(FileManager.default.fileExists(atPath: last))
    #expect(FileManager.default.fileExists(atPath: "\(dir)/pe.json"))
    // An existing directory that is not an rtl output is never replaced.
    let other = dir + "-other"
    try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
    try "keep".write(toFile: other + "/notes.txt", atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: other) }
    let refused = try rtl(["--pe", "--acc-mode", "exact", "--out", other, "--no-simulate"])
    #expect(refused.status != 0 && refused.err.contains("not a `wrapnet rtl` output"))
    #expect(FileManager.default.fileExists(atPath: other + "/notes.txt"))
  }

  @Test func planListsTheZooLayers() throws {
    let (status, out, err) = try rtl(["--plan", "cnn", "--weights", "binary"])
    #expect(status == 0, "\(err)")
    let json = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
    let layers = json?["layers"] as? [[String: Any]] ?? []
    #expect(layers.count == 5)
    #expect(layers.map { $0["macs"] as? Int ?? 0 }.reduce(0, +) == 6_466_432)
  }
}
