import Foundation

/// The data directory used when none is given: `$WRAPNET_DATA` if set and non-empty, else
/// `$HOME/.cache/wrapnet` (falling back to the home directory Foundation reports).
///
/// - Parameter environment: the process environment (a parameter so tests can pass their own).
public func defaultDataDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
  if let dir = environment["WRAPNET_DATA"], !dir.isEmpty { return dir }
  let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
  return join(join(home, ".cache"), "wrapnet")
}

extension DatasetName {
  /// The four file names of an MNIST-type dataset, in the order train images, train labels, test images,
  /// test labels (the names of the original distribution).
  public static let idxFileNames = [
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
  ]

  /// The directory that holds this dataset under `dataDirectory`: `mnist`, `fashion-mnist`, and for CIFAR-10
  /// `cifar-10-batches-bin` (the official archive's folder) or, if only that exists, `cifar10`.
  public func directory(in dataDirectory: String) -> String {
    switch self {
    case .mnist, .fashionMNIST:
      return join(dataDirectory, rawValue)
    case .cifar10:
      let official = join(dataDirectory, "cifar-10-batches-bin")
      let alternative = join(dataDirectory, "cifar10")
      if !directoryExists(official) && directoryExists(alternative) { return alternative }
      return official
    }
  }
}

extension DatasetSplits {
  /// Loads both splits of a built-in dataset from `dataDirectory` (see `DatasetName.directory(in:)`).
  ///
  /// MNIST-type images must be 28x28 (`[N, 1, 28, 28]` after loading); CIFAR-10 is `[N, 3, 32, 32]`.
  /// - Throws: `DatasetError.datasetMissing` whose message names the command to run
  ///   (`wrapnet data fetch mnist --data-dir DIR`) or, for CIFAR-10, where to put the files; any reader error.
  public static func load(_ name: DatasetName, dataDirectory: String = defaultDataDirectory()) throws
    -> DatasetSplits
  {
    let dir = name.directory(in: dataDirectory)
    switch name {
    case .cifar10:
      do {
        return try CIFAR10Reader.readSplits(directory: dir)
      } catch DatasetError.datasetMissing(_, _, let missing, _) {
        throw DatasetError.datasetMissing(
          name: name.rawValue, directory: dir, missingFiles: missing,
          remedy: CIFAR10Reader.cifarRemedy(dataDirectory: dataDirectory))
      }
    case .mnist, .fashionMNIST:
      // Each file as distributed (`.gz`) or decompressed under its plain name.
      let names = DatasetName.idxFileNames
      let found = names.map { gz -> String? in
        let plain = String(gz.dropLast(3))
        return fileExists(join(dir, gz)) ? join(dir, gz) : fileExists(join(dir, plain)) ? join(dir, plain) : nil
      }
      let missing = zip(names, found).filter { $0.1 == nil }.map(\.0)
      if !missing.isEmpty {
        throw DatasetError.datasetMissing(
          name: name.rawValue, directory: dir, missingFiles: missing,
          remedy: "Run `wrapnet data fetch \(name.rawValue) --data-dir \(dataDirectory)` to fetch and verify it.")
      }
      let paths = found.map { $0! }
      let train = try loadIDXPair(images: paths[0], labels: paths[1])
      let test = try loadIDXPair(images: paths[2], labels: paths[3])
      return DatasetSplits(train: train, test: test)
    }
  }

  /// Reads an MNIST-type images/labels file pair into a `[N, 1, 28, 28]` dataset with 10 classes.
  ///
  /// - Throws: every `DatasetError` of the IDX readers, `.empty` for 0 images, and `.countMismatch` when the
  ///   counts differ.
  public static func loadIDXPair(images imagesPath: String, labels labelsPath: String) throws -> ImageDataset {
    let images = try IDXReader.readImages(path: imagesPath, height: 28, width: 28)
    let labels = try IDXReader.readLabels(path: labelsPath, classCount: 10)
    guard images.dimensions[0] > 0 else { throw DatasetError.empty(path: imagesPath) }
    guard images.dimensions[0] == labels.count else {
      throw DatasetError.countMismatch(
        imagesPath: imagesPath, imageCount: images.dimensions[0], labelsPath: labelsPath, labelCount: labels.count)
    }
    return ImageDataset(images: images.bytes, labels: labels, channels: 1, height: 28, width: 28, classCount: 10)
  }
}

/// `a/b` without doubling the separator.
package func join(_ a: String, _ b: String) -> String {
  if a.isEmpty { return b }
  return a.hasSuffix("/") ? a + b : a + "/" + b
}

package func fileExists(_ path: String) -> Bool {
  var isDirectory: ObjCBool = false
  return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
}

package func directoryExists(_ path: String) -> Bool {
  var isDirectory: ObjCBool = false
  return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
}
