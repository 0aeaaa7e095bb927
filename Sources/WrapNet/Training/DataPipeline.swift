/// How 8-bit pixels become Float inputs.
public enum PixelScaling: Sendable, Equatable {
  /// The pixel value itself, 0...255 (the first WrapNet layer takes raw 8-bit pixels).
  case raw
  /// `x / 255`, in [0, 1].
  case unit
  /// `(x / 255 - mean[c]) / std[c]` per channel c (torchvision `ToTensor` + `Normalize`).
  case normalized(mean: [Float], std: [Float])
}

/// Random augmentation for small colour images (the CIFAR recipe): random crop from the image zero-padded by
/// `padding` pixels on every side, then a horizontal flip with probability 1/2 (when enabled).
public struct Augmentation: Sendable, Equatable {
  /// Zero padding on each side before the random crop (0: no crop).
  public var padding: Int
  /// Mirror left-right with probability 1/2.
  public var horizontalFlip: Bool

  /// An augmentation. Precondition: `padding >= 0`.
  public init(padding: Int, horizontalFlip: Bool) {
    precondition(padding >= 0, "augmentation padding \(padding) must not be negative")
    self.padding = padding
    self.horizontalFlip = horizontalFlip
  }

  /// No augmentation.
  public static let none = Augmentation(padding: 0, horizontalFlip: false)
  /// The standard CIFAR-10 recipe: crop with zero padding 4, horizontal flip.
  public static let cifar = Augmentation(padding: 4, horizontalFlip: true)

  /// Whether the augmentation changes anything.
  public var isIdentity: Bool { padding == 0 && !horizontalFlip }
}

/// The random choices of one augmented sample: the crop's top-left corner in the padded image, and the flip.
public struct AugmentationChoice: Sendable, Equatable {
  /// Row of the crop window in the padded image, in 0...2*padding (padding means no vertical shift).
  public var offsetY: Int
  /// Column of the crop window in the padded image, in 0...2*padding.
  public var offsetX: Int
  /// Whether the crop is mirrored left-right.
  public var flip: Bool

  /// A choice with the given crop corner and flip.
  public init(offsetY: Int, offsetX: Int, flip: Bool) {
    self.offsetY = offsetY
    self.offsetX = offsetX
    self.flip = flip
  }
}

/// One mini-batch: images [B, C, H, W] as Float, labels, and the dataset indices they came from.
public struct ImageBatch: Sendable, Equatable {
  /// Converted (and possibly augmented) images, shape [B, C, H, W].
  public var images: Tensor
  /// Class labels, `labels.count == B`.
  public var labels: [Int]
  /// Dataset index of each sample, `indices.count == B`.
  public var indices: [Int]

  /// A batch from its parts.
  public init(images: Tensor, labels: [Int], indices: [Int]) {
    self.images = images
    self.labels = labels
    self.indices = indices
  }
}

/// Seeded shuffling, batching, augmentation and conversion of an 8-bit NCHW image dataset.
///
/// Input: `images` of `count * channels * height * width` bytes in NCHW order and `labels` of `count` bytes (the
/// same fields as `ImageDataset`). Determinism:
/// - epoch e visits the permutation `SeededGenerator(seed: seed, keys: 1, e).permutation(count:)` (Fisher-Yates),
///   or 0..<count when `shuffle` is false;
/// - sample i in epoch e is augmented with `SeededGenerator(seed: seed, keys: 2, e, i)`,
/// so every batch is a pure function of (seed, epoch, batch index), independent of thread count and of which
/// batches were built before.
public struct DataPipeline: Sendable {
  /// Pixels, NCHW, `count * channels * height * width` bytes.
  public let images: [UInt8]
  /// Labels, one byte per image.
  public let labels: [UInt8]
  /// Number of images N.
  public let count: Int
  /// Channels C per image.
  public let channels: Int
  /// Image height H.
  public let height: Int
  /// Image width W.
  public let width: Int
  /// Batch size B (the last batch may be smaller unless `dropLast`).
  public var batchSize: Int
  /// Shuffle every epoch (training) or keep dataset order (evaluation).
  public var shuffle: Bool
  /// Drop the last partial batch.
  public var dropLast: Bool
  /// Without `dropLast`: the smallest last partial batch that is kept; a smaller one is dropped. Training uses 2,
  /// because batch norm needs two images per batch (one image gives it a single value per channel).
  public var minimumLastBatch: Int
  /// The seed of all randomness of this pipeline.
  public var seed: UInt64
  /// Pixel conversion.
  public var scaling: PixelScaling
  /// Augmentation (training only; use `.none` for evaluation).
  public var augmentation: Augmentation

  /// A pipeline over raw NCHW bytes. Preconditions: sizes agree, `batchSize > 0`, normalization has one mean and
  /// one positive std per channel.
  public init(
    images: [UInt8], labels: [UInt8], count: Int, channels: Int, height: Int, width: Int,
    batchSize: Int, shuffle: Bool = true, dropLast: Bool = false, minimumLastBatch: Int = 1, seed: UInt64 = 0,
    scaling: PixelScaling = .raw, augmentation: Augmentation = .none
  ) {
    precondition(
      count >= 0 && channels > 0 && height > 0 && width > 0,
      "DataPipeline: invalid dims count \(count), [C, H, W] = [\(channels), \(height), \(width)]")
    precondition(
      images.count == count * channels * height * width,
      "DataPipeline: \(images.count) pixel bytes but [N, C, H, W] = [\(count), \(channels), \(height), \(width)] needs \(count * channels * height * width)"
    )
    precondition(labels.count == count, "DataPipeline: \(labels.count) labels for \(count) images")
    precondition(batchSize > 0, "DataPipeline: batch size \(batchSize) must be positive")
    precondition(minimumLastBatch >= 1, "DataPipeline: minimumLastBatch \(minimumLastBatch) must be positive")
    if case .normalized(let mean, let std) = scaling {
      precondition(
        mean.count == channels && std.count == channels,
        "DataPipeline: normalization has \(mean.count) means and \(std.count) stds for \(channels) channels")
      precondition(std.allSatisfy { $0 > 0 }, "DataPipeline: normalization stds \(std) must be positive")
    }
    self.images = images
    self.labels = labels
    self.count = count
    self.channels = channels
    self.height = height
    self.width = width
    self.batchSize = batchSize
    self.shuffle = shuffle
    self.dropLast = dropLast
    self.minimumLastBatch = minimumLastBatch
    self.seed = seed
    self.scaling = scaling
    self.augmentation = augmentation
  }

  /// Number of batches per epoch: `floor(N / B)`, plus one for the last partial batch of `N mod B` images unless
  /// `dropLast` or `N mod B < minimumLastBatch`. No overflow for any positive B (`Int.max` included).
  public var batchesPerEpoch: Int {
    let rest = count % batchSize
    return count / batchSize + (rest > 0 && !dropLast && rest >= minimumLastBatch ? 1 : 0)
  }

  /// The order in which epoch `epoch` visits the dataset: a permutation of 0..<N derived from (seed, epoch).
  public func order(epoch: Int) -> [Int] {
    guard shuffle else { return Array(0..<count) }
    var generator = SeededGenerator(seed: seed, keys: 1, UInt64(bitPattern: Int64(epoch)))
    return generator.permutation(count: count)
  }

  /// The augmentation applied to dataset sample `index` in `epoch` (identity when augmentation is `.none`).
  public func augmentationChoice(epoch: Int, index: Int) -> AugmentationChoice {
    let p = augmentation.padding
    guard !augmentation.isIdentity else { return AugmentationChoice(offsetY: p, offsetX: p, flip: false) }
    var generator = SeededGenerator(
      seed: seed, keys: 2, UInt64(bitPattern: Int64(epoch)), UInt64(bitPattern: Int64(index)))
    let offsetY = generator.int(below: 2 * p + 1)
    let offsetX = generator.int(below: 2 * p + 1)
    let flip = augmentation.horizontalFlip ? generator.coinFlip() : false
    return AugmentationChoice(offsetY: offsetY, offsetX: offsetX, flip: flip)
  }

  /// The batches of `epoch`, as a random-access collection (build any batch on any thread, in any order).
  public func epoch(_ epoch: Int) -> Epoch {
    Epoch(pipeline: self, epoch: epoch, order: order(epoch: epoch))
  }

  /// The batches of one epoch; element i is batch i, built on access.
  public struct Epoch: RandomAccessCollection, Sendable {
    /// The pipeline the batches come from.
    public let pipeline: DataPipeline
    /// The epoch number.
    public let epoch: Int
    /// Dataset indices in visiting order.
    public let order: [Int]

    /// Always 0.
    public var startIndex: Int { 0 }
    /// The number of batches.
    public var endIndex: Int { pipeline.batchesPerEpoch }

    /// Batch `position`: samples `order[position * B ..< min((position + 1) * B, N)]`, converted and augmented.
    public subscript(position: Int) -> ImageBatch {
      precondition(position >= 0 && position < endIndex, "batch \(position) out of range 0..<\(endIndex)")
      let start = position * pipeline.batchSize
      // `start + batchSize` could overflow for a huge batch size; `order.count - start` cannot.
      let end = start + Swift.min(pipeline.batchSize, order.count - start)
      return pipeline.makeBatch(indices: Array(order[start..<end]), epoch: epoch)
    }
  }

  /// Converts (and, for training, augments) the given samples into a batch [indices.count, C, H, W].
  public func makeBatch(indices: [Int], epoch: Int) -> ImageBatch {
    let c = channels
    let h = height
    let w = width
    let imageSize = c * h * w
    // Per-channel affine map y = x * scale[c] + shift[c] covers all three scalings with one loop.
    var scale = [Float](repeating: 1, count: c)
    var shift = [Float](repeating: 0, count: c)
    switch scaling {
    case .raw:
      break
    case .unit:
      scale = [Float](repeating: 1 / 255, count: c)
    case .normalized(let mean, let std):
      for ch in 0..<c {
        scale[ch] = 1 / (255 * std[ch])
        shift[ch] = -mean[ch] / std[ch]
      }
    }
    var out = [Float](repeating: 0, count: indices.count * imageSize)
    var labelsOut: [Int] = []
    labelsOut.reserveCapacity(indices.count)
    var scratch = [UInt8](repeating: 0, count: imageSize)
    for (b, index) in indices.enumerated() {
      precondition(index >= 0 && index < count, "DataPipeline: sample index \(index) out of range 0..<\(count)")
      labelsOut.append(Int(labels[index]))
      let choice = augmentationChoice(epoch: epoch, index: index)
      images.withUnsafeBufferPointer { all in
        let source = UnsafeBufferPointer(rebasing: all[(index * imageSize)..<((index + 1) * imageSize)])
        scratch.withUnsafeMutableBufferPointer { dst in
          DataPipeline.cropAndFlip(
            source, into: dst, channels: c, height: h, width: w, padding: augmentation.padding, choice: choice)
        }
      }
      out.withUnsafeMutableBufferPointer { o in
        scratch.withUnsafeBufferPointer { src in
          for ch in 0..<c {
            let s = scale[ch]
            let t = shift[ch]
            let base = ch * h * w
            for i in 0..<(h * w) {
              o[b * imageSize + base + i] = Float(src[base + i]) * s + t
            }
          }
        }
      }
    }
    return ImageBatch(
      images: Tensor(shape: [indices.count, c, h, w], data: out), labels: labelsOut, indices: indices)
  }

  /// Crops and flips one CHW image: `out[c, y, x] = padded[c, y + offsetY, x' + offsetX]` with
  /// `x' = flip ? W - 1 - x : x`, where `padded` is the image with `padding` zero pixels on every side, i.e.
  /// `padded[c, py, px] = image[c, py - padding, px - padding]` inside the image and 0 outside.
  /// Shapes: `image` and the result are [C, H, W] (flattened). Preconditions: sizes match, offsets in 0...2*padding.
  public static func cropAndFlip(
    _ image: [UInt8], channels: Int, height: Int, width: Int, padding: Int, choice: AugmentationChoice
  ) -> [UInt8] {
    precondition(
      image.count == channels * height * width,
      "cropAndFlip: image has \(image.count) bytes but [C, H, W] = [\(channels), \(height), \(width)]")
    var out = [UInt8](repeating: 0, count: image.count)
    image.withUnsafeBufferPointer { src in
      out.withUnsafeMutableBufferPointer { dst in
        cropAndFlip(src, into: dst, channels: channels, height: height, width: width, padding: padding, choice: choice)
      }
    }
    return out
  }

  private static func cropAndFlip(
    _ src: UnsafeBufferPointer<UInt8>, into dst: UnsafeMutableBufferPointer<UInt8>,
    channels: Int, height: Int, width: Int, padding: Int, choice: AugmentationChoice
  ) {
    precondition(
      (0...(2 * padding)).contains(choice.offsetY) && (0...(2 * padding)).contains(choice.offsetX),
      "cropAndFlip: offsets (\(choice.offsetY), \(choice.offsetX)) must be in 0...\(2 * padding)")
    // Shift of the source relative to the output, in image coordinates.
    let dy = choice.offsetY - padding
    let dx = choice.offsetX - padding
    for c in 0..<channels {
      let plane = c * height * width
      for y in 0..<height {
        let sy = y + dy
        let rowInside = sy >= 0 && sy < height
        for x in 0..<width {
          let sx = (choice.flip ? width - 1 - x : x) + dx
          dst[plane + y * width + x] = rowInside && sx >= 0 && sx < width ? src[plane + sy * width + sx] : 0
        }
      }
    }
  }
}
