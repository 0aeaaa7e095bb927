import Foundation

/// What `wrapnet data info` reports about a dataset: counts, image shape, class histograms and pixel statistics.
///
/// Its JSON form (`jsonString()`) is one object:
/// `{"dataset": "mnist", "shape": [1, 28, 28], "train": {"count": 60000, "class_counts": [10 ints],
/// "pixels": {...}}, "test": {...}}`.
public struct DatasetSummary: Sendable, Equatable, Codable {
  /// Counts and statistics of one split.
  public struct Split: Sendable, Equatable, Codable {
    /// Number of images.
    public var count: Int
    /// `class_counts[c]` = number of images with label `c`, `[classCount]`.
    public var classCounts: [Int]
    /// Minimum, maximum and mean pixel value.
    public var pixels: PixelStatistics

    /// The summary of `dataset`.
    public init(_ dataset: ImageDataset) {
      count = dataset.count
      classCounts = dataset.classHistogram()
      pixels = dataset.pixelStatistics()
    }

    enum CodingKeys: String, CodingKey {
      case count
      case classCounts = "class_counts"
      case pixels
    }
  }

  /// The dataset's command-line name (`mnist`, `fashion-mnist`, `cifar10`).
  public var dataset: String
  /// Image shape `[channels, height, width]`.
  public var shape: [Int]
  /// The train split.
  public var train: Split
  /// The test split.
  public var test: Split

  /// The summary of both splits of `name`.
  public init(name: DatasetName, splits: DatasetSplits) {
    dataset = name.rawValue
    shape = splits.train.shape
    train = Split(splits.train)
    test = Split(splits.test)
  }

  /// One JSON object with sorted keys (stable output for scripts).
  public func jsonString() throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: try encoder.encode(self), as: UTF8.self)
  }

  /// A human-readable multi-line report.
  public var text: String {
    func line(_ label: String, _ split: Split) -> [String] {
      let p = split.pixels
      return [
        "\(label): \(split.count) images",
        "  class counts: \(split.classCounts.map(String.init).joined(separator: " "))",
        "  pixels: min \(p.minimum), max \(p.maximum), mean \(String(format: "%.3f", p.mean))",
      ]
    }
    let shapeText = shape.map(String.init).joined(separator: " x ")
    return
      (["\(dataset): image shape \(shapeText) (channels x height x width), \(train.classCounts.count) classes"]
      + line("train", train) + line("test", test)).joined(separator: "\n")
  }
}
