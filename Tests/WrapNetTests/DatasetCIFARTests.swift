import Testing
import WrapNet
import WrapNetTestSupport

@Suite struct DatasetCIFARTests {
  /// `n` records with labels `labels` and deterministic pixels; returns the file bytes.
  func records(_ labels: [UInt8], seed: UInt64) -> (file: [UInt8], pixels: [UInt8]) {
    let pixels = testBytes(count: labels.count * 3072, seed: seed)
    var file = [UInt8]()
    for (i, label) in labels.enumerated() {
      file.append(label)
      file.append(contentsOf: pixels[(i * 3072)..<((i + 1) * 3072)])
    }
    return (file, pixels)
  }

  @Test func batchRoundTrip() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let (file, pixels) = records([3, 0, 9], seed: 5)
    let p = try dir.write(file, to: "data_batch_1.bin")
    let batch = try CIFAR10Reader.readBatch(path: p)
    #expect(batch.count == 3 && batch.shape == [3, 32, 32] && batch.classCount == 10)
    #expect(batch.labels == [3, 0, 9])
    #expect(batch.images == pixels)
    // CHW: image 1, channel G (1), row 2, col 5 is the record's byte 1 + 1024 + 2*32 + 5.
    let offsetInImage: Int = 1024 + 2 * 32 + 5
    let expectedPixel: UInt8 = file[3073 + 1 + offsetInImage]
    #expect(batch.images[3072 + offsetInImage] == expectedPixel)
  }

  @Test func splitsFromBothDirectoryNames() throws {
    for folder in ["cifar-10-batches-bin", "cifar10"] {
      let dir = try TemporaryDirectory()
      defer { dir.remove() }
      var expectedTrain = [UInt8]()
      for k in 1...5 {
        let labels: [UInt8] = [UInt8(k), UInt8(k + 1)]
        expectedTrain += labels
        try dir.write(records(labels, seed: UInt64(k)).file, to: "\(folder)/data_batch_\(k).bin")
      }
      try dir.write(records([7], seed: 9).file, to: "\(folder)/test_batch.bin")
      let splits = try DatasetSplits.load(.cifar10, dataDirectory: dir.path)
      #expect(splits.train.count == 10 && splits.test.count == 1)
      #expect(splits.train.labels == expectedTrain && splits.test.labels == [7])
      #expect(splits.train.images[0..<3072] == records([1, 2], seed: 1).pixels[0..<3072])
    }
  }

  @Test func truncatedRecord() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let file = records([1, 2], seed: 1).file.dropLast(10)
    let p = try dir.write(Array(file), to: "test_batch.bin")
    #expect(throws: DatasetError.truncated(path: p, expectedBytes: 2 * 3073, foundBytes: 2 * 3073 - 10)) {
      try CIFAR10Reader.readBatch(path: p)
    }
  }

  /// An empty batch file is refused, not loaded as 0 images.
  @Test func emptyBatchFile() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let p = try dir.write([], to: "test_batch.bin")
    #expect(throws: DatasetError.empty(path: p)) { try CIFAR10Reader.readBatch(path: p) }
  }

  @Test func labelOutOfRange() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let p = try dir.write(records([1, 2, 10], seed: 1).file, to: "test_batch.bin")
    #expect(throws: DatasetError.labelOutOfRange(path: p, index: 2, label: 10, classCount: 10)) {
      try CIFAR10Reader.readBatch(path: p)
    }
  }

  @Test func missingBatchFiles() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    for k in [1, 2, 4, 5] {
      try dir.write(records([1], seed: 1).file, to: "cifar-10-batches-bin/data_batch_\(k).bin")
    }
    #expect {
      try DatasetSplits.load(.cifar10, dataDirectory: dir.path)
    } throws: { error in
      guard case DatasetError.datasetMissing(let name, _, let missing, _) = error else { return false }
      let text = "\(error)"
      return name == "cifar10" && missing == ["data_batch_3.bin", "test_batch.bin"]
        && text.contains("cannot be fetched") && text.contains("\(dir.path)/cifar-10-batches-bin")
    }
    #expect(throws: DatasetError.fileNotFound(path: dir.file("none.bin"))) {
      try CIFAR10Reader.readBatch(path: dir.file("none.bin"))
    }
  }
}
