/// Reader for the CIFAR-10 binary version (`cifar-10-binary.tar.gz`, folder `cifar-10-batches-bin`).
///
/// Each file is a sequence of 3073-byte records: one label byte `0...9`, then 1024 red, 1024 green and
/// 1024 blue bytes (32x32, row-major), i.e. one image already in CHW order.
public enum CIFAR10Reader {
  /// Bytes per record: 1 label + 3 * 32 * 32 pixels.
  public static let recordSize = 3073
  /// The five training batch files (10000 records each in the official release).
  public static let trainFiles = (1...5).map { "data_batch_\($0).bin" }
  /// The test batch file (10000 records).
  public static let testFile = "test_batch.bin"

  /// Reads one batch file into a 3x32x32 dataset.
  ///
  /// - Throws: `DatasetError.fileNotFound`, `.empty` for a file of no records, `.truncated` when the size is not a
  ///   multiple of 3073,
  ///   `.labelOutOfRange` for a label byte `>= 10`.
  public static func readBatch(path: String) throws -> ImageDataset {
    let bytes = try IDXReader.readFile(path: path)
    let records = bytes.count / recordSize
    guard bytes.count % recordSize == 0 else {
      throw DatasetError.truncated(
        path: path, expectedBytes: (records + 1) * recordSize, foundBytes: bytes.count)
    }
    guard records > 0 else { throw DatasetError.empty(path: path) }
    var labels = [UInt8](repeating: 0, count: records)
    var images = [UInt8](repeating: 0, count: records * (recordSize - 1))
    bytes.withUnsafeBufferPointer { src in
      labels.withUnsafeMutableBufferPointer { l in
        images.withUnsafeMutableBufferPointer { img in
          for r in 0..<records {
            let s = r * recordSize
            l[r] = src[s]
            // The pixel block is already CHW: copy it as is.
            let dst = UnsafeMutableBufferPointer(rebasing: img[(r * (recordSize - 1))..<((r + 1) * (recordSize - 1))])
            _ = dst.initialize(from: src[(s + 1)..<(s + recordSize)])
          }
        }
      }
    }
    try IDXReader.checkLabels(labels, classCount: 10, path: path)
    return ImageDataset(images: images, labels: labels, channels: 3, height: 32, width: 32, classCount: 10)
  }

  /// Reads several batch files and concatenates them in order.
  public static func readBatches(paths: [String]) throws -> ImageDataset {
    var images = [UInt8]()
    var labels = [UInt8]()
    for path in paths {
      let batch = try readBatch(path: path)
      images.append(contentsOf: batch.images)
      labels.append(contentsOf: batch.labels)
    }
    return ImageDataset(images: images, labels: labels, channels: 3, height: 32, width: 32, classCount: 10)
  }

  /// Reads the train split (`data_batch_1..5.bin`) and the test split (`test_batch.bin`) from `directory`.
  ///
  /// - Throws: `DatasetError.datasetMissing` listing the absent batch files, or any `readBatch` error.
  public static func readSplits(directory: String) throws -> DatasetSplits {
    let names = trainFiles + [testFile]
    let missing = names.filter { !fileExists(join(directory, $0)) }
    if !missing.isEmpty {
      throw DatasetError.datasetMissing(
        name: "cifar10", directory: directory, missingFiles: missing, remedy: cifarRemedy(dataDirectory: nil))
    }
    let train = try readBatches(paths: trainFiles.map { join(directory, $0) })
    let test = try readBatch(path: join(directory, testFile))
    return DatasetSplits(train: train, test: test)
  }

  /// What to do when CIFAR-10 is missing: it cannot be fetched here, so say where the files go.
  package static func cifarRemedy(dataDirectory: String?) -> String {
    let dir = dataDirectory ?? "DATA_DIR"
    return "CIFAR-10 cannot be fetched by `wrapnet data fetch` on this system: download the binary version "
      + "(cifar-10-binary.tar.gz) elsewhere and extract it "
      + "into \(dir), so that \(join(dir, "cifar-10-batches-bin"))/data_batch_1.bin ... data_batch_5.bin and "
      + "test_batch.bin exist (\(join(dir, "cifar10"))/ is accepted too)."
  }
}
