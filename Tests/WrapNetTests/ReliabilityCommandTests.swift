import Foundation
import Testing
import WrapNet
import WrapNetTestSupport

/// Options and files a user can get wrong end in a clear message and exit status 1, never in a trap; the edge
/// cases that are valid run to the end.
@Suite(.serialized) struct ReliabilityCommandTests {
  /// Options that would break the run (batch norm on one image, a negative subset, a negative flag value) are refused
  /// before any work, naming the flag and the allowed range.
  @Test(arguments: [
    (["--limit-train", "1"], "--limit-train must be at least 2"),
    (["--batch-size", "1"], "--batch-size must be at least 2"),
    (["--limit-train=-1"], "--limit-train must be at least 2"),
    (["--limit-train", "-1"], "--limit-train must be at least 2"),
    (["--limit-test", "0"], "--limit-test must be at least 1"),
    (["--acc-bits", "-5"], "--acc-bits must be in 2...32, got -5"),
    (["--lr", "-1"], "--lr must be > 0"),
    (["--no-such-flag"], "Unknown option '--no-such-flag'"),
    (["--epochs", "two"], "The value 'two' is invalid for '--epochs"),
  ])
  func trainOptionsAreRefusedClearly(extra: [String], fragment: String) throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let data = try writeSyntheticMNIST(in: dir)
    try expectCleanFailure(["train", "--data-dir", data, "--epochs", "1", "--out", dir.file("run")] + extra, fragment)
    #expect(!FileManager.default.fileExists(atPath: dir.file("run/model.safetensors")))
  }

  @Test(arguments: [
    (["--batch-size", "1"], "--batch-size must be at least 2"),
    (["--limit-train", "-3"], "--limit-train must be at least 2"),
  ])
  func sweepOptionsAreRefusedClearly(extra: [String], fragment: String) throws {
    try expectCleanFailure(["sweep", "--out", "/tmp/wrapnet-never-written"] + extra, fragment)
  }

  /// A training set of N ≡ 1 (mod B) images (the last batch would hold one image) and a batch size larger than
  /// any dataset both train to the end.
  @Test(arguments: [["--limit-train", "33", "--batch-size", "16"], ["--limit-train", "40", "--batch-size", "9223372036854775807"]])
  func awkwardBatchesTrain(extra: [String]) throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let data = try writeSyntheticMNIST(in: dir)
    let (status, out, err) = try runWrapnet(
      ["train", "--data-dir", data, "--model", "mlp", "--epochs", "1", "--out", dir.file("run")] + extra)
    #expect(status == 0, "\(err)")
    #expect(out.contains("test accuracy"), "\(out)")
  }

  /// A training split of 0 images is refused by the loader (it would train nothing and save a model).
  @Test func emptyTrainingSetIsRefused() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let data = try writeSyntheticMNIST(in: dir)
    let names = DatasetName.idxFileNames
    try dir.write(Gzip.compress(IDXArray(dimensions: [0, 28, 28], bytes: []).encoded()), to: "data/mnist/" + names[0])
    try dir.write(Gzip.compress(idxLabels([]).encoded()), to: "data/mnist/" + names[1])
    try expectCleanFailure(["train", "--data-dir", data, "--out", dir.file("run")], "holds no images")
  }

  /// Raw Foundation errors are replaced by messages that say what to do; the path appears once.
  @Test func fileMistakesGiveClearMessages() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let data = try writeSyntheticMNIST(in: dir)
    let file = try dir.write(Array("x".utf8), to: "existing-file")
    try expectCleanFailure(["train", "--data-dir", data, "--out", file], "--out must name a directory")
    try expectCleanFailure(["sweep", "--data-dir", data, "--out", file], "--out must name a directory")
    try expectCleanFailure(["eval", dir.path], "this is a directory")
    try expectCleanFailure(["convert", dir.path, "--out", dir.file("e.safetensors")], "this is a directory")
    try expectCleanFailure(["convert", file, "--out", dir.path], "is a directory")
    let bad = try dir.write(Array("abcdefghijklmnop".utf8), to: "bad.safetensors")
    for command in [["eval", bad], ["convert", bad, "--out", dir.file("e.safetensors")]] {
      let (status, _, err) = try runWrapnet(command)
      #expect(status == 1, "\(err)")
      #expect(err.components(separatedBy: bad).count == 2, "the path should appear once: \(err)")
      #expect(err.contains("not a valid safetensors file"), "\(err)")
      #expect(!err.contains("NSCocoaErrorDomain") && !err.contains("error 256"), "\(err)")
    }
  }

  /// A run whose loss turns non-finite stops with exit status 1 and a message naming the learning rate, and
  /// leaves the last good checkpoint untouched (no final model is written).
  @Test func divergingRunStopsAndKeepsTheLastCheckpoint() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let data = try writeSyntheticMNIST(in: dir)
    let run = dir.file("run")
    try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
    // One good epoch at a sane rate, checkpointed as a 2-epoch run whose rate is absurd.
    let checkpoint = run + "/checkpoint.safetensors"
    try writeResumeCheckpoint(to: checkpoint, images: syntheticDataset(count: 96, seed: 21), batchSize: 16) {
      $0.learningRate = 3e38
    }
    let before = fileBytes(checkpoint)
    let (status, _, err) = try runWrapnet(["train", "--resume", "--data-dir", data, "--out", run])
    #expect(status == 1, "\(err)")
    #expect(err.contains("training diverged in epoch 2") && err.contains("lower --lr"), "\(err)")
    #expect(err.contains("after epoch 1) is kept unchanged"), "\(err)")
    #expect(fileBytes(checkpoint) == before)
    #expect(!FileManager.default.fileExists(atPath: run + "/model.safetensors"))
  }

  /// `kill -9` at any file-writing step leaves either the old or the new file (atomic writes), so the states to
  /// resume from are: a checkpoint of an earlier epoch, the last checkpoint without the final model, and the final
  /// model without the summary. Each `--resume` ends with the files of an uninterrupted run, the same model bytes,
  /// and removes the temporary file a killed writer left behind.
  @Test func resumeFinishesAfterAKillAtEveryWritingStep() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let data = try writeSyntheticMNIST(in: dir)
    func train(_ out: String, _ extra: [String] = []) throws -> (Int32, String) {
      let (status, _, err) = try runWrapnet(
        ["train", "--data-dir", data, "--model", "mlp", "--epochs", "2", "--batch-size", "32", "--out", out] + extra)
      return (status, err)
    }
    let whole = dir.file("whole")
    let (s0, e0) = try train(whole)
    #expect(s0 == 0, "\(e0)")
    let reference = fileBytes(whole + "/model.safetensors")
    #expect(!reference.isEmpty)

    // Killed while writing the final model: the last checkpoint is there, the model and summary are not.
    let noModel = dir.file("no-model")
    try FileManager.default.copyItem(atPath: whole, toPath: noModel)
    try FileManager.default.removeItem(atPath: noModel + "/model.safetensors")
    try FileManager.default.removeItem(atPath: noModel + "/summary.json")
    let stale = try dir.write(Array(repeating: 7, count: 100), to: "no-model/.model.safetensors.tmp-2147483646-12345")
    // Killed while writing the summary: the model is there, the summary is not.
    let noSummary = dir.file("no-summary")
    try FileManager.default.copyItem(atPath: whole, toPath: noSummary)
    try FileManager.default.removeItem(atPath: noSummary + "/summary.json")
    for out in [noModel, noSummary] {
      let (status, err) = try train(out, ["--resume"])
      #expect(status == 0, "\(err)")
      #expect(err.contains("writing the missing final model and summary"), "\(err)")
      #expect(fileBytes(out + "/model.safetensors") == reference, "\(out)")
      #expect(FileManager.default.fileExists(atPath: out + "/summary.json"), "\(out)")
    }
    #expect(!FileManager.default.fileExists(atPath: stale), "the stale temporary file should be removed")

    // A real SIGKILL once the first checkpoint exists (during epoch 2 or one of its writes), then resume.
    let killed = dir.file("killed")
    let p = Process()
    p.executableURL = wrapnetExecutable()
    p.arguments = ["train", "--data-dir", data, "--model", "mlp", "--epochs", "2", "--batch-size", "32", "--out", killed]
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    let deadline = Date().addingTimeInterval(300)
    while Date() < deadline && p.isRunning && !FileManager.default.fileExists(atPath: killed + "/checkpoint.safetensors") {
      usleep(5_000)
    }
    kill(p.processIdentifier, SIGKILL)
    p.waitUntilExit()
    let (s1, e1) = try train(killed, ["--resume"])
    #expect(s1 == 0, "\(e1)")
    #expect(fileBytes(killed + "/model.safetensors") == reference)
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: killed).filter { $0.contains(".tmp-") }
    #expect(leftovers.isEmpty, "\(leftovers)")
  }

  /// A sweep killed while writing `base/model.safetensors` (its last checkpoint written) recovers on the rerun.
  @Test func sweepRecoversAMissingBaseModel() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let data = try writeSyntheticMNIST(in: dir)
    let out = dir.file("sweep")
    let arguments = [
      "sweep", "--data-dir", data, "--model", "mlp", "--bits", "8", "--modes", "wrap", "--base-epochs", "1",
      "--epochs", "1", "--batch-size", "32", "--max-cells", "1", "--out", out,
    ]
    let (s1, _, e1) = try runWrapnet(arguments)
    #expect(s1 == 0, "\(e1)")
    let base = fileBytes(out + "/base/model.safetensors")
    #expect(!base.isEmpty)
    try FileManager.default.removeItem(atPath: out + "/base/model.safetensors")
    try FileManager.default.removeItem(atPath: out + "/base/summary.json")
    try FileManager.default.removeItem(atPath: out + "/results.jsonl")
    let (s2, _, e2) = try runWrapnet(arguments)
    #expect(s2 == 0, "\(e2)")
    #expect(fileBytes(out + "/base/model.safetensors") == base)
  }

  /// Models trained with 32-bit wrap or cyclic accumulators convert into engine models that agree with the
  /// trainer on every image (the threshold search once turned almost every threshold into "never").
  @Test(arguments: ["wrap", "cyclic"])
  func convertOf32BitWrapModelsMatchesTheTrainer(mode: String) throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let data = try writeSyntheticMNIST(in: dir)
    let run = dir.file("run"), engine = dir.file("engine.safetensors")
    let (s1, _, e1) = try runWrapnet([
      "train", "--data-dir", data, "--model", "mlp", "--acc-mode", mode, "--acc-bits", "32", "--epochs", "1",
      "--batch-size", "16", "--out", run,
    ])
    #expect(s1 == 0, "\(e1)")
    let (s2, _, e2) = try runWrapnet(["convert", run + "/model.safetensors", "--out", engine])
    #expect(s2 == 0, "\(e2)")
    let (s3, out3, e3) = try runWrapnet([
      "eval", engine, "--data-dir", data, "--compare", run + "/model.safetensors", "--json",
    ])
    #expect(s3 == 0, "\(e3)")
    let doc = try #require(try JSONSerialization.jsonObject(with: Data(out3.utf8)) as? [String: Any])
    let compare = try #require(doc["comparison"] as? [String: Any], "\(out3)")
    #expect(compare["mismatches"] as? Int == 0 && compare["exact_sum_mismatches"] as? Int == 0, "\(out3)")
    let engineAccuracy = try #require(doc["accuracy"] as? Double, "\(out3)")
    let summary = try JSONSerialization.jsonObject(with: Data(fileBytes(run + "/summary.json"))) as? [String: Any]
    let trainerAccuracy = try #require(summary?["test_accuracy"] as? Double)
    #expect(engineAccuracy == trainerAccuracy)
    #expect(engineAccuracy > 0.5, "the synthetic task is learnable in one epoch: \(engineAccuracy)")
  }
}
