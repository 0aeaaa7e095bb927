import Foundation
import Testing
import WrapNet
import WrapNetEngine
import WrapNetTestSupport

/// The `wrapnet` executable built beside the test bundle.
func wrapnetExecutable() -> URL {
  let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
  let exe = dir.appendingPathComponent("wrapnet")
  // swift-testing may run from inside the .xctest bundle directory.
  return FileManager.default.fileExists(atPath: exe.path) ? exe : dir.deletingLastPathComponent().appendingPathComponent("wrapnet")
}

/// Runs the `wrapnet` executable built beside the test bundle; returns (exit status, stdout, stderr), the status
/// being 128 + N for a process killed by signal N.
func runWrapnet(_ arguments: [String]) throws -> (Int32, String, String) {
  let p = Process()
  p.executableURL = wrapnetExecutable()
  p.arguments = arguments
  let out = Pipe(), err = Pipe()
  p.standardOutput = out
  p.standardError = err
  try p.run()
  let o = out.fileHandleForReading.readDataToEndOfFile()
  let e = err.fileHandleForReading.readDataToEndOfFile()
  p.waitUntilExit()
  // A process killed by a signal (a trap, an abort) reports 128 + the signal, as shells do.
  let status = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
  return (status, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

private let mnistPresent = FileManager.default.fileExists(
  atPath: DatasetName.mnist.directory(in: defaultDataDirectory()) + "/t10k-labels-idx1-ubyte.gz")

@Suite(.serialized) struct CommandLineTests {
  /// Bad flags are rejected before any work, with a message naming the flag.
  @Test(arguments: [
    (["train", "--epochs", "0", "--out", "/tmp/x"], "--epochs"),
    (["train", "--model", "resnet99", "--out", "/tmp/x"], "resnet99"),
    (["train", "--acc-bits", "1", "--out", "/tmp/x"], "--acc-bits"),
    (["train", "--width-multiplier", "0", "--out", "/tmp/x"], "--width-multiplier"),
    (["sweep", "--width-multiplier", "17", "--out", "/tmp/x"], "--width-multiplier"),
    (["train", "--width-divisor", "3", "--out", "/tmp/x"], "--width-divisor"),
    (["train", "--acc-mode", "sloppy", "--out", "/tmp/x"], "sloppy"),
    (["train", "--dataset", "imagenet", "--out", "/tmp/x"], "imagenet"),
    (["train", "--resume", "--init", "a.safetensors", "--out", "/tmp/x"], "--resume"),
    (["train", "--calibrate", "--out", "/tmp/x"], "--calibrate needs --init"),
    (["train", "--calibration-target", "0", "--out", "/tmp/x"], "--calibration-target"),
    (["train", "--penalty-warmup", "0", "--out", "/tmp/x"], "--penalty-warmup"),
    (["train", "--penalty-warmup", "2", "--out", "/tmp/x"], "--penalty-warmup"),
    (["train", "--penalty-scaling", "per-layer", "--out", "/tmp/x"], "--penalty-scaling"),
    (["train", "--residual-calibration", "shortcut", "--out", "/tmp/x"], "--residual-calibration"),
    (["train", "--preload", "--out", "/tmp/x"], "--preload needs --init with range calibration"),
    (["train", "--preload", "--init", "a.safetensors", "--no-calibrate", "--out", "/tmp/x"], "drop --no-calibrate"),
    (["train", "--preload", "--acc-mode", "avoid", "--out", "/tmp/x"], "--preload needs a low-bit --acc-mode"),
    (["train", "--preload", "--acc-bits", "32", "--out", "/tmp/x"], "got cyclic 32-bit"),
    (["sweep", "--residual-calibration", "clip", "--out", "/tmp/x"], "--residual-calibration"),
    (["sweep", "--penalty-warmup", "-1", "--out", "/tmp/x"], "--penalty-warmup"),
    (["sweep", "--calibration-target", "1.5", "--out", "/tmp/x"], "--calibration-target"),
    (["eval", "/nonexistent/model.safetensors"], "no such file"),
    (["eval", "x.safetensors", "--acc-bits", "40"], "--acc-bits"),
    (["sweep", "--bits", "8,x", "--out", "/tmp/x"], "--bits"),
    (["sweep", "--modes", "wrap,sloppy", "--out", "/tmp/x"], "sloppy"),
    (["sweep", "--bits", "8,8", "--out", "/tmp/x"], "duplicate"),
    (["sweep", "--base", "/nonexistent/base.safetensors", "--out", "/tmp/x"], "--base"),
  ])
  func badFlagsGiveClearErrors(arguments: [String], fragment: String) throws {
    let (status, _, err) = try runWrapnet(arguments)
    #expect(status != 0)
    #expect(err.contains(fragment), "stderr should mention '\(fragment)': \(err)")
    #expect(!err.contains("Fatal error"), "must not crash: \(err)")
  }

  /// A corrupt checkpoint is reported, naming the file, not a crash.
  @Test func corruptCheckpoint() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let path = try dir.write(Array("not a model at all, just some text".utf8), to: "model.safetensors")
    let (status, _, err) = try runWrapnet(["eval", path])
    #expect(status != 0)
    #expect(err.contains(path) && err.contains("safetensors"), "\(err)")
    #expect(!err.contains("Fatal error"))
  }

  /// A missing dataset names the fetch command to run.
  @Test func missingDatasetNamesFetchCommand() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let (status, _, err) = try runWrapnet(["train", "--data-dir", dir.path, "--out", dir.file("run")])
    #expect(status != 0)
    #expect(err.contains("wrapnet data fetch mnist"), "\(err)")
  }

  /// End to end on real MNIST: a short training on a subset clearly beats chance, writes the documented files,
  /// `eval --json` reports the documented keys, and `--resume` of a finished run is a no-op that keeps the model.
  @Test(.tags(.realData), .enabled(if: mnistPresent, "MNIST not fetched (run `wrapnet data fetch mnist`)"))
  func trainEvaluateResumeOnMNISTSubset() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let out = dir.file("run")
    let (status, stdout, err) = try runWrapnet([
      "train", "--model", "mlp", "--acc-mode", "cyclic", "--acc-bits", "8", "--epochs", "1", "--limit-train", "3000",
      "--limit-test", "1000", "--batch-size", "64", "--out", out,
    ])
    #expect(status == 0, "train failed: \(err)")
    #expect(stdout.contains("test accuracy"))
    let summaryData = try Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))
    let summary = try #require(try JSONSerialization.jsonObject(with: summaryData) as? [String: Any])
    let accuracy = try #require(summary["test_accuracy"] as? Double)
    #expect(accuracy > 0.6, "1 epoch on 3000 images should clearly beat chance (10%), got \(accuracy)")
    for key in ["epochs", "train_seconds", "images_per_second", "config", "layers", "low_bit_mac_share"] {
      #expect(summary[key] != nil, "summary.json lacks \(key)")
    }
    let layers = try #require(summary["layers"] as? [[String: Any]])
    #expect(layers.contains { ($0["name"] as? String) == "fc2" && $0["overflow_rate"] is Double })
    let share = try #require(summary["low_bit_mac_share"] as? Double)
    #expect(share > 0.7)

    // Python-readable safetensors with the configuration in the metadata.
    let file = try SafeTensorsFile.read(from: out + "/model.safetensors")
    #expect(file.metadata["config"]?.contains("\"accumulator_mode\":\"cyclic\"") == true)

    let (s2, evalOut, err2) = try runWrapnet([
      "eval", out + "/model.safetensors", "--acc-mode", "wrap", "--acc-bits", "8", "--limit-test", "1000", "--json",
    ])
    #expect(s2 == 0, "eval failed: \(err2)")
    let report = try #require(try JSONSerialization.jsonObject(with: Data(evalOut.utf8)) as? [String: Any])
    #expect(report["accuracy"] is Double)
    #expect((report["layers"] as? [[String: Any]])?.first?["overflow_rate"] is Double)
    #expect((report["config"] as? [String: Any])?["accumulator_mode"] as? String == "wrap")

    let before = try Data(contentsOf: URL(fileURLWithPath: out + "/model.safetensors"))
    let (s3, _, err3) = try runWrapnet(["train", "--resume", "--out", out, "--limit-test", "1000"])
    #expect(s3 == 0, "resume failed: \(err3)")
    let after = try Data(contentsOf: URL(fileURLWithPath: out + "/model.safetensors"))
    #expect(before == after, "resuming a finished run must not change the model")
  }

  /// `--init` calibrates by default: it fits a 32-bit model's sums into 8 bits before fine-tuning, prints and records
  /// what it did; `--no-calibrate` leaves the model as it is.
  @Test(.tags(.realData), .enabled(if: mnistPresent, "MNIST not fetched (run `wrapnet data fetch mnist`)"))
  func calibratedFineTuning() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let common = ["--model", "mlp", "--act-bits", "3", "--epochs", "1", "--limit-train", "1500", "--limit-test", "500"]
    let (s1, _, e1) = try runWrapnet(["train"] + common + ["--acc-mode", "exact", "--out", dir.file("base")])
    #expect(s1 == 0, "base: \(e1)")
    let out = dir.file("calibrated")
    let (s2, _, e2) = try runWrapnet(
      ["train"] + common + ["--acc-mode", "cyclic", "--acc-bits", "8", "--penalty", "0.001",
                            "--init", dir.file("base") + "/model.safetensors", "--out", out])
    #expect(s2 == 0, "fine-tune: \(e2)")
    #expect(e2.contains("calibrate fc2: sums RMS"), "progress lines: \(e2)")
    let written = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/calibration.json"))) as? [[String: Any]])
    #expect(written.map { $0["name"] as? String } == ["fc2", "fc3", "fc4"])
    for layer in written {
      let after = try #require(layer["rms_after"] as? Double), target = try #require(layer["target"] as? Double)
      #expect(after <= target * 1.03, "\(layer)")
    }
    let summary = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))) as? [String: Any])
    #expect((summary["calibration"] as? [[String: Any]])?.count == 3)

    // --no-calibrate fine-tunes the model as it is.
    let plain = dir.file("plain")
    let (s3, _, e3) = try runWrapnet(
      ["train"] + common + ["--acc-mode", "cyclic", "--acc-bits", "8", "--no-calibrate",
                            "--init", dir.file("base") + "/model.safetensors", "--out", plain])
    #expect(s3 == 0, "fine-tune: \(e3)")
    #expect(!e3.contains("calibrate fc2") && !FileManager.default.fileExists(atPath: plain + "/calibration.json"))

    // Calibration sets the preloads by default, reports them, and the engine takes the preloaded model;
    // --no-preload leaves the registers at 0.
    #expect(e2.contains("around the preloads (RMS"), "progress lines: \(e2)")
    #expect(written.allSatisfy { ($0["preload_rms"] as? Double).map { $0 > 0 } == true }, "\(written)")
    let (s4, o4, e4) = try runWrapnet(["convert", out + "/model.safetensors", "--out", dir.file("p.safetensors")])
    #expect(s4 == 0, "convert: \(e4)")
    #expect(o4.contains("register preloads") && o4.contains("folded into the table"), "convert: \(o4)")
    let unloaded = dir.file("unloaded")
    let (s5, _, e5) = try runWrapnet(
      ["train"] + common + ["--acc-mode", "cyclic", "--acc-bits", "8", "--penalty", "0.001", "--no-preload",
                            "--init", dir.file("base") + "/model.safetensors", "--out", unloaded])
    #expect(s5 == 0, "fine-tune: \(e5)")
    #expect(e5.contains("calibrate fc2: sums RMS") && !e5.contains("preloads"), "progress lines: \(e5)")
  }

  /// A sweep killed halfway (SIGKILL, possibly mid-write) and run again skips its finished cells and ends with the
  /// same results as an uninterrupted sweep (timings aside); both train the same base model.
  @Test(.tags(.realData), .enabled(if: mnistPresent, "MNIST not fetched (run `wrapnet data fetch mnist`)"))
  func sweepKilledAndResumedEqualsUninterrupted() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    func arguments(_ out: String) -> [String] {
      [
        "sweep", "--model", "mlp", "--bits", "5,8", "--modes", "exact,wrap,cyclic,clamp", "--limit-train", "400",
        "--limit-test", "300", "--base-epochs", "1", "--epochs", "1", "--batch-size", "100", "--out", out,
      ]
    }
    let whole = dir.file("whole"), killed = dir.file("killed")
    let (s1, _, e1) = try runWrapnet(arguments(whole))
    #expect(s1 == 0, "sweep failed: \(e1)")

    // Start the same sweep, kill it once some cells are in its journal, then run it again.
    let p = Process()
    p.executableURL = wrapnetExecutable()
    p.arguments = arguments(killed)
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    let journal = killed + "/results.jsonl"
    let deadline = Date().addingTimeInterval(300)
    while Date() < deadline {
      let lines = (try? String(contentsOfFile: journal, encoding: .utf8))?.split(separator: "\n").count ?? 0
      if lines >= 5 { break }
      usleep(20_000)
    }
    kill(p.processIdentifier, SIGKILL)
    p.waitUntilExit()
    let doneBeforeKill = try String(contentsOfFile: journal, encoding: .utf8).split(separator: "\n").count - 1
    #expect(doneBeforeKill >= 4 && doneBeforeKill < 14, "killed after \(doneBeforeKill) of 14 cells")
    let (s2, _, e2) = try runWrapnet(arguments(killed))
    #expect(s2 == 0, "resumed sweep failed: \(e2)")
    #expect(e2.contains("already done"), "\(e2)")

    func results(_ out: String) throws -> [SweepResult] {
      try String(contentsOfFile: out + "/results.jsonl", encoding: .utf8).split(separator: "\n").dropFirst().map {
        try JSONDecoder().decode(SweepResult.self, from: Data($0.utf8)).withoutTiming
      }
    }
    let a = try results(whole), b = try results(killed)
    #expect(a.count == 14)
    #expect(a == b)
    for name in ["results.md", "accuracy-vs-bits.svg", "overflow-per-layer.svg", "cyclic-activation.svg"] {
      #expect(FileManager.default.fileExists(atPath: killed + "/" + name), "\(name) missing")
    }
  }

  /// resnet20 end to end on CIFAR-10-format files the test writes: train a few steps, convert, and run the
  /// integer engine with --compare: zero mismatches of any kind.
  @Test func resnet20OnCIFARFilesConvertsAndMatchesTheTrainer() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    try FileManager.default.createDirectory(atPath: dir.file("cifar-10-batches-bin"), withIntermediateDirectories: true)
    for (index, name) in ((1...5).map { "data_batch_\($0).bin" } + ["test_batch.bin"]).enumerated() {
      let count = 24
      let pixels = testBytes(count: count * 3072, seed: UInt64(index + 1))
      var file = [UInt8]()
      for i in 0..<count {
        file.append(UInt8((i * 7 + index) % 10))
        file.append(contentsOf: pixels[(i * 3072)..<((i + 1) * 3072)])
      }
      _ = try dir.write(file, to: "cifar-10-batches-bin/" + name)
    }
    let run = dir.file("run"), engine = dir.file("engine.safetensors")
    let (s1, _, e1) = try runWrapnet([
      "train", "--dataset", "cifar10", "--data-dir", dir.path, "--model", "resnet20", "--acc-mode", "cyclic",
      "--acc-bits", "6", "--epochs", "1", "--limit-train", "32", "--batch-size", "16", "--out", run,
    ])
    #expect(s1 == 0, "\(e1)")
    let (s2, out2, e2) = try runWrapnet(["convert", run + "/model.safetensors", "--out", engine])
    #expect(s2 == 0, "\(e2)")
    #expect(out2.contains("table with residual add") && out2.contains("stage3.block3.conv2"), "\(out2)")
    do {
      let (s3, out3, e3) = try runWrapnet([
        "eval", engine, "--dataset", "cifar10", "--data-dir", dir.path, "--compare", run + "/model.safetensors",
        "--json",
      ])
      #expect(s3 == 0, "\(e3)")
      let doc = try #require(try JSONSerialization.jsonObject(with: Data(out3.utf8)) as? [String: Any])
      let compare = try #require(doc["comparison"] as? [String: Any], "\(out3)")
      #expect(compare["images"] as? Int == 24, "\(out3)")
      #expect(compare["mismatches"] as? Int == 0 && compare["accumulator_mismatches"] as? Int == 0, "\(out3)")
      #expect(compare["logit_mismatches"] as? Int == 0 && compare["exact_sum_mismatches"] as? Int == 0, "\(out3)")
      #expect((compare["accumulators_compared"] as? Int ?? 0) > 0, "\(out3)")
    }
  }

  /// resnet20 with 3-bit activations (its sum pool folded into the logits layer) and a narrow vgg-small on
  /// 1×28×28 MNIST files: train, convert, and the engine matches the trainer.
  @Test(arguments: [["--model", "resnet20"], ["--model", "vgg-small", "--width-divisor", "8"]])
  func greyZooModelsTrainConvertAndMatchTheTrainer(model: [String]) throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let data = try writeSyntheticMNIST(in: dir, train: 32, test: 12)
    let run = dir.file("run"), engine = dir.file("engine.safetensors")
    let (s1, _, e1) = try runWrapnet(
      [
        "train", "--data-dir", data, "--act-bits", "3", "--acc-mode", "wrap", "--acc-bits", "8", "--epochs", "1",
        "--batch-size", "16", "--out", run,
      ] + model)
    #expect(s1 == 0, "\(e1)")
    let (s2, _, e2) = try runWrapnet(["convert", run + "/model.safetensors", "--out", engine])
    #expect(s2 == 0, "\(e2)")
    let (s3, out3, e3) = try runWrapnet(
      ["eval", engine, "--data-dir", data, "--compare", run + "/model.safetensors", "--json"])
    #expect(s3 == 0, "\(e3)")
    let doc = try #require(try JSONSerialization.jsonObject(with: Data(out3.utf8)) as? [String: Any])
    let compare = try #require(doc["comparison"] as? [String: Any], "\(out3)")
    #expect(compare["images"] as? Int == 12, "\(out3)")
    #expect(compare["mismatches"] as? Int == 0 && compare["accumulator_mismatches"] as? Int == 0, "\(out3)")
    #expect(compare["logit_mismatches"] as? Int == 0, "\(out3)")
    #expect((compare["accumulators_compared"] as? Int ?? 0) > 0, "\(out3)")
  }
}
