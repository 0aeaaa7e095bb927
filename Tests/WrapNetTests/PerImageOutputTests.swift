import Foundation
import Testing
import WrapNet
import WrapNetEngine
import WrapNetTestSupport

/// `eval --predictions-out/--logits-out`: the CSV rows are the engine's own predictions and logits, bit for bit, and
/// paths that cannot take a file are refused before any work.
@Suite(.serialized) struct PerImageOutputTests {
  /// The rows of a CSV table without its header, split at commas.
  static func rows(_ text: String, header: String) -> [[Substring]] {
    var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    #expect(lines.first.map(String.init) == header)
    #expect(lines.last == "", "the table ends with a newline")
    lines = Array(lines.dropFirst().dropLast())
    return lines.map { $0.split(separator: ",", omittingEmptySubsequences: false) }
  }

  /// Synthetic MNIST files with `testImages` test images, and a small trained mlp with its packed engine model in
  /// `dir`: (data directory, trainer model, engine model path).
  static func engineModelAndData(in dir: TemporaryDirectory, testImages: Int) throws -> (String, WrapModel, String) {
    let data = try writeSyntheticMNIST(in: dir, train: 16, test: testImages)
    let model = try EngineFixture.trained("mlp", mode: .cyclic, bits: 8, steps: 2)
    let enginePath = dir.file("mlp.engine.safetensors")
    try EngineExport.packedFile(for: model).write(to: enginePath)
    return (data, model, enginePath)
  }

  /// Every Float32 printed in a logits row reads back as the same bits, signed zero and extremes included.
  @Test func logitsReadBackBitForBit() {
    let values: [Float] = [
      -0.0, 0, 1, -1.5, .leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude, 0.1, 1 / 3, -7e-30,
      Float(bitPattern: 0x3EAA_AAAB), .infinity, -.infinity,
    ]
    let text = PerImageOutputs.logitsCSV(values + [0, 0, 0], classes: 4)
    let rows = Self.rows(text, header: "index,logit_0,logit_1,logit_2,logit_3")
    #expect(rows.count == 4)
    for (i, row) in rows.enumerated() {
      #expect(row.count == 5 && row[0] == "\(i)")
      for j in 0..<4 {
        let printed = Float(String(row[1 + j]))
        #expect(printed?.bitPattern == (values + [0, 0, 0])[i * 4 + j].bitPattern, "row \(i) field \(j): \(row[1 + j])")
      }
    }
  }

  @Test func predictionsTable() {
    let text = PerImageOutputs.predictionsCSV(labels: [3, 0, 9], predictions: [3, 1, 9])
    #expect(text == "index,label,prediction\n0,3,3\n1,0,1\n2,9,9\n")
  }

  /// `wrapnet eval ENGINE --predictions-out P --logits-out L` on a small trained mlp: P and L hold the engine's
  /// predictions and logits for every test image, in dataset order; no temporary file is left beside them.
  @Test func evalWritesTheEnginesOutputs() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let (data, _, enginePath) = try Self.engineModelAndData(in: dir, testImages: 24)
    try FileManager.default.createDirectory(atPath: dir.file("out"), withIntermediateDirectories: true)
    let predictionsPath = dir.file("out/predictions.csv"), logitsPath = dir.file("out/logits.csv")
    let (status, _, err) = try runWrapnet([
      "eval", enginePath, "--data-dir", data, "--kernel", "reference", "--predictions-out", predictionsPath,
      "--logits-out", logitsPath,
    ])
    #expect(status == 0, "\(err)")

    let test = try DatasetSplits.load(.mnist, dataDirectory: data).test
    let engine = try InferenceModel(contentsOf: enginePath)
    let result = try engine.run(pixels: test.images, count: test.count, options: InferenceOptions(path: .reference))
    let predictions = Self.rows(try String(contentsOfFile: predictionsPath, encoding: .utf8), header: "index,label,prediction")
    #expect(predictions.count == test.count)
    for (i, row) in predictions.enumerated() {
      #expect(row == ["\(i)", "\(test.labels[i])", "\(result.predictions[i])"][...].map { Substring($0) }, "row \(i)")
    }
    let header = "index," + (0..<10).map { "logit_\($0)" }.joined(separator: ",")
    let logits = Self.rows(try String(contentsOfFile: logitsPath, encoding: .utf8), header: header)
    #expect(logits.count == test.count)
    for (i, row) in logits.enumerated() {
      #expect(row.count == 11 && row[0] == "\(i)")
      for j in 0..<min(10, row.count - 1) {
        #expect(Float(String(row[1 + j]))?.bitPattern == result.logits[i * 10 + j].bitPattern, "image \(i) logit \(j)")
      }
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("out")).sorted() == ["logits.csv", "predictions.csv"])
  }

  /// A directory, the same file twice or a trainer checkpoint are refused with the flag and the reason, and nothing
  /// is written.
  @Test func badPathsAreRefused() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let (data, trained, enginePath) = try Self.engineModelAndData(in: dir, testImages: 8)
    var model = trained
    let checkpointPath = dir.file("model.safetensors")
    try Checkpoint.save(&model, to: checkpointPath)
    try expectCleanFailure(["eval", enginePath, "--data-dir", data, "--logits-out", dir.path], "--logits-out \(dir.path) is a directory")
    try expectCleanFailure(["eval", enginePath, "--data-dir", data, "--predictions-out", dir.path + "/"], "--predictions-out \(dir.path)/ is a directory")
    try expectCleanFailure(
      ["eval", enginePath, "--data-dir", data, "--predictions-out", dir.file("a.csv"), "--logits-out", dir.file("a.csv")],
      "name the same file")
    try expectCleanFailure(
      ["eval", enginePath, "--data-dir", data, "--logits-out", dir.file("missing/l.csv")], "missing")
    try expectCleanFailure(
      ["eval", checkpointPath, "--data-dir", data, "--logits-out", dir.file("l.csv")], "apply to packed engine models")
    #expect(!FileManager.default.fileExists(atPath: dir.file("a.csv")) && !FileManager.default.fileExists(atPath: dir.file("l.csv")))
    #expect(throws: FileError.self) { try PerImageOutputs.write("x", to: dir.path, flag: "--logits-out") }
  }
}
