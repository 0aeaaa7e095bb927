import Foundation
import Testing
import WrapNet
import WrapNetTestSupport

@Suite struct DatasetLoaderTests {
  /// Writes a small MNIST-type dataset (gzip, the official file names) under `dir/<name>/`.
  func writeSmall(_ name: DatasetName, in dir: TemporaryDirectory, trainLabels: [UInt8], testLabels: [UInt8])
    throws -> (train: IDXArray, test: IDXArray)
  {
    let train = idxImages(count: trainLabels.count, seed: 11)
    let test = idxImages(count: testLabels.count, seed: 12)
    let files = DatasetName.idxFileNames
    let sub = name.rawValue + "/"
    try dir.write(Gzip.compress(train.encoded()), to: sub + files[0])
    try dir.write(Gzip.compress(idxLabels(trainLabels).encoded()), to: sub + files[1])
    try dir.write(Gzip.compress(test.encoded()), to: sub + files[2])
    try dir.write(Gzip.compress(idxLabels(testLabels).encoded()), to: sub + files[3])
    return (train, test)
  }

  @Test(arguments: [DatasetName.mnist, .fashionMNIST])
  func loadsSmallDataset(name: DatasetName) throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let (train, test) = try writeSmall(name, in: dir, trainLabels: [0, 1, 1, 9, 4], testLabels: [2, 2])
    let splits = try DatasetSplits.load(name, dataDirectory: dir.path)
    #expect(splits.train.images == train.bytes && splits.test.images == test.bytes)
    #expect(splits.train.labels == [0, 1, 1, 9, 4] && splits.test.labels == [2, 2])
    #expect(splits.train.shape == [1, 28, 28] && splits.train.count == 5 && splits.test.count == 2)
    #expect(splits.train.classHistogram() == [1, 2, 0, 0, 1, 0, 0, 0, 0, 1])
  }

  @Test(arguments: [DatasetName.mnist, .fashionMNIST])
  func missingDatasetNamesTheFetchCommand(name: DatasetName) throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    #expect {
      try DatasetSplits.load(name, dataDirectory: dir.path)
    } throws: { error in
      "\(error)".contains("wrapnet data fetch \(name.rawValue) --data-dir \(dir.path)")
    }
    // One file missing: listed by name.
    _ = try writeSmall(name, in: dir, trainLabels: [1], testLabels: [1])
    try FileManager.default.removeItem(atPath: dir.file(name.rawValue + "/t10k-labels-idx1-ubyte.gz"))
    #expect {
      try DatasetSplits.load(name, dataDirectory: dir.path)
    } throws: { error in
      guard case DatasetError.datasetMissing(_, _, let missing, _) = error else { return false }
      return missing == ["t10k-labels-idx1-ubyte.gz"]
    }
  }

  /// Decompressed files under their plain names (no `.gz`) are found and read.
  @Test func plainFileNamesAreAccepted() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let train = idxImages(count: 3, seed: 5), test = idxImages(count: 2, seed: 6)
    let files = DatasetName.idxFileNames.map { "mnist/" + $0.dropLast(3) }
    try dir.write(train.encoded(), to: files[0])
    try dir.write(idxLabels([1, 2, 3]).encoded(), to: files[1])
    try dir.write(test.encoded(), to: files[2])
    try dir.write(Gzip.compress(idxLabels([4, 5]).encoded()), to: "mnist/" + DatasetName.idxFileNames[3])
    let splits = try DatasetSplits.load(.mnist, dataDirectory: dir.path)
    #expect(splits.train.images == train.bytes && splits.train.labels == [1, 2, 3])
    #expect(splits.test.images == test.bytes && splits.test.labels == [4, 5])
  }

  @Test func defaultDataDirectory() {
    #expect(WrapNet.defaultDataDirectory(environment: ["WRAPNET_DATA": "/data/x", "HOME": "/h"]) == "/data/x")
    #expect(WrapNet.defaultDataDirectory(environment: ["WRAPNET_DATA": "", "HOME": "/h"]) == "/h/.cache/wrapnet")
    #expect(WrapNet.defaultDataDirectory(environment: ["HOME": "/h/"]) == "/h/.cache/wrapnet")
  }

  @Test func subsetHistogramAndStatistics() {
    let d = ImageDataset(
      images: [0, 10, 20, 30, 40, 50, 60, 255], labels: [3, 1, 3, 0], channels: 1, height: 1, width: 2,
      classCount: 4)
    #expect(d.classHistogram() == [1, 1, 0, 2])
    #expect(d.pixelStatistics() == PixelStatistics(minimum: 0, maximum: 255, mean: 465.0 / 8))
    let first = d.subset(first: 3)
    #expect(first.count == 3 && first.images == [0, 10, 20, 30, 40, 50] && first.labels == [3, 1, 3])
    #expect(d.subset(first: 10) == d)
    #expect(d.subset(first: 0).count == 0 && d.subset(first: 0).pixelStatistics().maximum == 0)
    let picked = d.subset(indices: [3, 0])
    #expect(picked.images == [60, 255, 0, 10] && picked.labels == [0, 3])
    let (tensor, labels) = d.batch([1, 3])
    #expect(tensor.shape == [2, 1, 1, 2])
    #expect(labels == [1, 0])
    let pixels: [Float] = [20, 30, 60, 255]
    #expect(tensor.data == pixels.map { $0 * (1 / 255) })
  }

  @Test func summaryJSON() throws {
    let train = ImageDataset(
      images: [1, 2, 3, 4], labels: [0, 9, 9, 9], channels: 1, height: 1, width: 1, classCount: 10)
    let test = ImageDataset(images: [7], labels: [5], channels: 1, height: 1, width: 1, classCount: 10)
    let summary = DatasetSummary(name: .fashionMNIST, splits: DatasetSplits(train: train, test: test))
    let json = try summary.jsonString()
    let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    #expect(object["dataset"] as? String == "fashion-mnist")
    #expect(object["shape"] as? [Int] == [1, 1, 1])
    let trainObject = try #require(object["train"] as? [String: Any])
    #expect(trainObject["count"] as? Int == 4)
    #expect(trainObject["class_counts"] as? [Int] == [1, 0, 0, 0, 0, 0, 0, 0, 0, 3])
    let testObject = try #require(object["test"] as? [String: Any])
    #expect(testObject["count"] as? Int == 1)
    #expect(testObject["class_counts"] as? [Int] == [0, 0, 0, 0, 0, 1, 0, 0, 0, 0])
    #expect(summary.text.contains("train: 4 images"))
  }
}
