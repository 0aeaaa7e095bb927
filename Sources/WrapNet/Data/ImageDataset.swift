/// A labeled image classification dataset held in memory as bytes.
///
/// Shapes: `images` is NCHW `[count, channels, height, width]` (pixels 0...255, row-major),
/// `labels` is `[count]` with every label in `0..<classCount`.
public struct ImageDataset: Sendable, Equatable {
  /// Pixels, NCHW; `images.count == count * channels * height * width`.
  public var images: [UInt8]
  /// Class index of each image, `0..<classCount`.
  public var labels: [UInt8]
  /// Channels per image (1 for MNIST-type, 3 for CIFAR-10).
  public var channels: Int
  /// Image height in pixels.
  public var height: Int
  /// Image width in pixels.
  public var width: Int
  /// Number of classes (10 for all built-in datasets).
  public var classCount: Int

  /// A dataset from NCHW pixels and labels.
  ///
  /// Preconditions: `images.count == labels.count * channels * height * width`, positive sizes. Labels are
  /// not range-checked here (the file readers do that and throw); use `validated()` for untrusted data.
  public init(images: [UInt8], labels: [UInt8], channels: Int, height: Int, width: Int, classCount: Int) {
    precondition(
      channels > 0 && height > 0 && width > 0 && classCount > 0,
      "ImageDataset needs positive sizes, got [channels \(channels), height \(height), width \(width)], "
        + "classCount \(classCount)")
    precondition(
      images.count == labels.count * channels * height * width,
      "ImageDataset images hold \(images.count) bytes but labels [\(labels.count)] x [\(channels), \(height), "
        + "\(width)] need \(labels.count * channels * height * width)")
    self.images = images
    self.labels = labels
    self.channels = channels
    self.height = height
    self.width = width
    self.classCount = classCount
  }

  /// Number of images (`labels.count`; computed so it can never disagree with the arrays).
  public var count: Int { labels.count }

  /// Bytes per image: `channels * height * width`.
  public var imageSize: Int { channels * height * width }

  /// The image shape `[channels, height, width]`.
  public var shape: [Int] { [channels, height, width] }

  /// The first `min(n, count)` images and labels (order kept). Precondition: `n >= 0`.
  public func subset(first n: Int) -> ImageDataset {
    precondition(n >= 0, "subset(first:) needs n >= 0, got \(n)")
    let k = min(n, count)
    return ImageDataset(
      images: Array(images[0..<(k * imageSize)]), labels: Array(labels[0..<k]),
      channels: channels, height: height, width: width, classCount: classCount)
  }

  /// The images and labels at `indices` (in that order, repeats allowed). Precondition: indices in `0..<count`.
  public func subset(indices: [Int]) -> ImageDataset {
    let size = imageSize
    var outImages = [UInt8]()
    outImages.reserveCapacity(indices.count * size)
    var outLabels = [UInt8]()
    outLabels.reserveCapacity(indices.count)
    for i in indices {
      precondition(i >= 0 && i < count, "subset(indices:) index \(i) is outside 0..<\(count)")
      outImages.append(contentsOf: images[(i * size)..<((i + 1) * size)])
      outLabels.append(labels[i])
    }
    return ImageDataset(
      images: outImages, labels: outLabels, channels: channels, height: height, width: width,
      classCount: classCount)
  }

  /// Number of images of each class: `histogram[c] = #{i : labels[i] == c}`, `[classCount]`.
  /// Labels `>= classCount` are not counted.
  public func classHistogram() -> [Int] {
    var histogram = [Int](repeating: 0, count: classCount)
    labels.withUnsafeBufferPointer { buf in
      histogram.withUnsafeMutableBufferPointer { h in
        for label in buf where Int(label) < h.count { h[Int(label)] += 1 }
      }
    }
    return histogram
  }

  /// Minimum, maximum and mean pixel value over all images (all zeros for an empty dataset).
  public func pixelStatistics() -> PixelStatistics {
    images.withUnsafeBufferPointer { buf -> PixelStatistics in
      guard !buf.isEmpty else { return PixelStatistics(minimum: 0, maximum: 0, mean: 0) }
      // Count each byte value once, then derive min/max/mean from the 256-bin histogram: one cheap pass.
      var bins = [Int](repeating: 0, count: 256)
      bins.withUnsafeMutableBufferPointer { b in
        for p in buf { b[Int(p)] &+= 1 }
      }
      let minimum = bins.firstIndex { $0 > 0 }!
      let maximum = bins.lastIndex { $0 > 0 }!
      var sum = 0
      for (value, n) in bins.enumerated() { sum += value * n }
      return PixelStatistics(
        minimum: UInt8(minimum), maximum: UInt8(maximum), mean: Double(sum) / Double(buf.count))
    }
  }

  /// Images `indices` as a Float tensor `[indices.count, channels, height, width]` with pixels scaled to
  /// `pixel / 255` (0...1), and their labels as Ints. Precondition: indices in `0..<count`.
  public func batch(_ indices: [Int]) -> (images: Tensor, labels: [Int]) {
    let size = imageSize
    var data = [Float](repeating: 0, count: indices.count * size)
    var outLabels = [Int]()
    outLabels.reserveCapacity(indices.count)
    images.withUnsafeBufferPointer { src in
      data.withUnsafeMutableBufferPointer { dst in
        for (row, i) in indices.enumerated() {
          precondition(i >= 0 && i < count, "batch index \(i) is outside 0..<\(count)")
          let s = i * size
          let d = row * size
          for j in 0..<size { dst[d + j] = Float(src[s + j]) * (1 / 255) }
        }
      }
    }
    for i in indices { outLabels.append(Int(labels[i])) }
    return (Tensor(shape: [indices.count, channels, height, width], data: data), outLabels)
  }
}

/// Summary statistics of pixel values (0...255).
public struct PixelStatistics: Sendable, Equatable, Codable {
  /// Smallest pixel value.
  public var minimum: UInt8
  /// Largest pixel value.
  public var maximum: UInt8
  /// Mean pixel value over all images, channels and positions.
  public var mean: Double

  /// Statistics with the given values.
  public init(minimum: UInt8, maximum: UInt8, mean: Double) {
    self.minimum = minimum
    self.maximum = maximum
    self.mean = mean
  }
}

/// The built-in datasets; the raw value is the name used on the command line and as the directory name.
public enum DatasetName: String, CaseIterable, Sendable, Codable {
  /// MNIST handwritten digits: 60000 train + 10000 test, 1x28x28, 10 classes.
  case mnist
  /// Fashion-MNIST clothing images: 60000 train + 10000 test, 1x28x28, 10 classes.
  case fashionMNIST = "fashion-mnist"
  /// CIFAR-10 (binary version): 50000 train + 10000 test, 3x32x32, 10 classes.
  case cifar10 = "cifar10"

  /// Whether `wrapnet data fetch` can fetch this dataset on this system (CIFAR-10 must be placed by hand).
  public var isFetchable: Bool { self != .cifar10 }
}

/// The train and test splits of a dataset.
public struct DatasetSplits: Sendable, Equatable {
  /// The training split.
  public var train: ImageDataset
  /// The test split.
  public var test: ImageDataset

  /// Splits from two datasets. Precondition: both have the same image shape and class count.
  public init(train: ImageDataset, test: ImageDataset) {
    precondition(
      train.shape == test.shape && train.classCount == test.classCount,
      "train \(train.shape) (\(train.classCount) classes) and test \(test.shape) (\(test.classCount) classes) differ")
    self.train = train
    self.test = test
  }
}
