import Testing
import WrapNet

@Suite struct RandomTests {
  @Test func sameSeedSameStreamDifferentKeysDifferentStream() {
    var a = SeededGenerator(seed: 42)
    var b = SeededGenerator(seed: 42)
    var c = SeededGenerator(seed: 43)
    let xa = (0..<8).map { _ in a.next() }
    #expect(xa == (0..<8).map { _ in b.next() })
    #expect(xa != (0..<8).map { _ in c.next() })
    var k1 = SeededGenerator(seed: 42, keys: 1, 0)
    var k2 = SeededGenerator(seed: 42, keys: 0, 1)
    #expect(k1.next() != k2.next())
  }

  @Test func xoshiroMatchesReferenceStateUpdate() {
    // SplitMix64 from seed 0 gives 0xE220A8397B1DCDAF as its first output (reference value of the algorithm),
    // so the first xoshiro256** output is rotl(s1 * 5, 7) * 9 with s1 the second SplitMix64 output.
    var sm: UInt64 = 0
    func splitMix() -> UInt64 {
      sm &+= 0x9E37_79B9_7F4A_7C15
      var z = sm
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    let s0 = splitMix()
    #expect(s0 == 0xE220_A839_7B1D_CDAF)
    let s1 = splitMix()
    let x = s1 &* 5
    let expected = ((x << 7) | (x >> 57)) &* 9
    var g = SeededGenerator(seed: 0)
    #expect(g.next() == expected)
  }

  @Test func uniformAndNormalMoments() {
    var g = SeededGenerator(seed: 7)
    let n = 20_000
    let u = g.uniformArray(count: n, low: -1, high: 3)
    #expect(u.allSatisfy { $0 >= -1 && $0 < 3 })
    let uMean = u.reduce(0, +) / Float(n)
    #expect(abs(uMean - 1) < 0.05)
    let z = g.normalArray(count: n, mean: 2, standardDeviation: 0.5)
    let zMean = z.reduce(0, +) / Float(n)
    let zVar = z.map { ($0 - zMean) * ($0 - zMean) }.reduce(0, +) / Float(n)
    #expect(abs(zMean - 2) < 0.02)
    #expect(abs(zVar.squareRoot() - 0.5) < 0.02)
    #expect(z.allSatisfy { $0.isFinite })
  }

  @Test func intBelowCoversRangeUniformly() {
    var g = SeededGenerator(seed: 3)
    var counts = [Int](repeating: 0, count: 9)
    for _ in 0..<9000 { counts[g.int(below: 9)] += 1 }
    #expect(counts.allSatisfy { $0 > 850 && $0 < 1150 }, "counts \(counts)")
  }
}

@Suite struct DataPipelineTests {
  /// N images of [C, H, W] whose pixel bytes are (n * 31 + i) mod 256 and label n mod 10.
  private func pipeline(
    count: Int, channels: Int = 1, height: Int = 2, width: Int = 2, batchSize: Int, shuffle: Bool = true,
    dropLast: Bool = false, seed: UInt64 = 1, scaling: PixelScaling = .raw, augmentation: Augmentation = .none
  ) -> DataPipeline {
    let size = channels * height * width
    let images = (0..<(count * size)).map { UInt8(($0 / size * 31 + $0 % size) % 256) }
    let labels = (0..<count).map { UInt8($0 % 10) }
    return DataPipeline(
      images: images, labels: labels, count: count, channels: channels, height: height, width: width,
      batchSize: batchSize, shuffle: shuffle, dropLast: dropLast, seed: seed, scaling: scaling,
      augmentation: augmentation)
  }

  @Test func sameSeedSameOrderOtherEpochOtherOrder() {
    let p = pipeline(count: 100, batchSize: 10)
    let q = pipeline(count: 100, batchSize: 10)
    #expect(p.order(epoch: 0) == q.order(epoch: 0))
    #expect(p.order(epoch: 0) != p.order(epoch: 1))
    #expect(p.order(epoch: 0) != pipeline(count: 100, batchSize: 10, seed: 2).order(epoch: 0))
    #expect(p.order(epoch: 0) != Array(0..<100))
    #expect(pipeline(count: 5, batchSize: 2, shuffle: false).order(epoch: 3) == [0, 1, 2, 3, 4])
  }

  @Test func everyIndexExactlyOncePerEpoch() {
    let p = pipeline(count: 23, batchSize: 5)
    for e in 0..<4 {
      let epoch = p.epoch(e)
      #expect(epoch.count == 5)
      let seen = epoch.flatMap(\.indices)
      #expect(seen.sorted() == Array(0..<23), "epoch \(e)")
      #expect(epoch.map(\.labels.count) == [5, 5, 5, 5, 3])
      for batch in epoch { #expect(batch.labels == batch.indices.map { $0 % 10 }) }
    }
  }

  @Test func dropLastDropsThePartialBatch() {
    let p = pipeline(count: 23, batchSize: 5, dropLast: true)
    #expect(p.batchesPerEpoch == 4)
    #expect(p.epoch(0).map(\.images.shape) == Array(repeating: [5, 1, 2, 2], count: 4))
  }

  /// A last partial batch smaller than `minimumLastBatch` is dropped (training drops a batch of one image, which
  /// batch norm cannot normalize); larger ones are kept.
  @Test func lastBatchBelowTheMinimumIsDropped() {
    var p = pipeline(count: 21, batchSize: 5)
    p.minimumLastBatch = 2
    #expect(p.batchesPerEpoch == 4)
    #expect(p.epoch(0).map(\.labels.count) == [5, 5, 5, 5])
    p = pipeline(count: 22, batchSize: 5)
    p.minimumLastBatch = 2
    #expect(p.epoch(0).map(\.labels.count) == [5, 5, 5, 5, 2])
  }

  /// Any positive batch size works, `Int.max` included: one batch of the whole dataset, no overflow.
  @Test func hugeBatchSizeGivesOneBatch() {
    let p = pipeline(count: 7, batchSize: Int.max)
    #expect(p.batchesPerEpoch == 1)
    #expect(p.epoch(0).map(\.labels.count) == [7])
  }

  @Test func batchesAreIndependentOfAccessOrder() {
    let p = pipeline(count: 40, channels: 3, height: 8, width: 8, batchSize: 8, augmentation: .cifar)
    let epoch = p.epoch(2)
    let forward = epoch.map { $0 }
    let backward = epoch.indices.reversed().map { epoch[$0] }
    #expect(forward == backward.reversed())
  }

  @Test func conversionRawUnitAndNormalized() {
    // Image 0 has bytes [0, 1, 2, 3] in channel 0 and [4, 5, 6, 7] in channel 1 (1x2 spatial).
    let raw = pipeline(count: 1, channels: 2, height: 1, width: 2, batchSize: 1, shuffle: false).epoch(0)[0]
    #expect(raw.images.shape == [1, 2, 1, 2])
    #expect(raw.images.data == [0, 1, 2, 3])
    let unit = pipeline(count: 1, channels: 2, height: 1, width: 2, batchSize: 1, shuffle: false, scaling: .unit)
    #expect(unit.epoch(0)[0].images.data.elementsEqual([0, 1 / 255, 2 / 255, 3 / 255] as [Float]) { abs($0 - $1) < 1e-7 })
    let normalized = pipeline(
      count: 1, channels: 2, height: 1, width: 2, batchSize: 1, shuffle: false,
      scaling: .normalized(mean: [0.5, 0], std: [0.25, 2]))
    // (x/255 - mean)/std: channel 0 (x = 0, 1), channel 1 (x = 2, 3).
    let expected: [Float] = [(0 - 0.5) / 0.25, (1 / 255 - 0.5) / 0.25, (2 / 255) / 2, (3 / 255) / 2]
    #expect(normalized.epoch(0)[0].images.data.elementsEqual(expected) { abs($0 - $1) < 1e-5 })
  }

  @Test func cropAndFlipOnTinyImage() {
    // 1 channel, 3x3 image:
    //   1 2 3
    //   4 5 6
    //   7 8 9
    let image: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
    func crop(_ oy: Int, _ ox: Int, _ flip: Bool) -> [UInt8] {
      DataPipeline.cropAndFlip(
        image, channels: 1, height: 3, width: 3, padding: 1,
        choice: AugmentationChoice(offsetY: oy, offsetX: ox, flip: flip))
    }
    #expect(crop(1, 1, false) == image, "centre crop is the identity")
    // Window at the padded image's top-left: shifted down-right, zeros enter at top and left.
    #expect(crop(0, 0, false) == [0, 0, 0, 0, 1, 2, 0, 4, 5])
    // Window at the bottom-right: shifted up-left.
    #expect(crop(2, 2, false) == [5, 6, 0, 8, 9, 0, 0, 0, 0])
    #expect(crop(1, 1, true) == [3, 2, 1, 6, 5, 4, 9, 8, 7])
    // Crop then flip: crop(0, 0) mirrored row by row.
    #expect(crop(0, 0, true) == [0, 0, 0, 2, 1, 0, 5, 4, 0])
    // Two channels are cropped alike.
    let two = DataPipeline.cropAndFlip(
      image + image.map { $0 + 10 }, channels: 2, height: 3, width: 3, padding: 1,
      choice: AugmentationChoice(offsetY: 2, offsetX: 0, flip: false))
    #expect(two == [0, 4, 5, 0, 7, 8, 0, 0, 0, 0, 14, 15, 0, 17, 18, 0, 0, 0])
  }

  @Test func augmentedBatchUsesTheReportedChoice() {
    let p = pipeline(count: 6, channels: 3, height: 5, width: 4, batchSize: 3, augmentation: .cifar)
    var offsets = Set<Int>()
    var flips = Set<Bool>()
    for e in 0..<20 {
      for batch in p.epoch(e) {
        for (b, index) in batch.indices.enumerated() {
          let choice = p.augmentationChoice(epoch: e, index: index)
          #expect((0...8).contains(choice.offsetY) && (0...8).contains(choice.offsetX))
          offsets.insert(choice.offsetX)
          flips.insert(choice.flip)
          let source = Array(p.images[(index * 60)..<((index + 1) * 60)])
          let expected = DataPipeline.cropAndFlip(
            source, channels: 3, height: 5, width: 4, padding: 4, choice: choice)
          #expect(Array(batch.images.data[(b * 60)..<((b + 1) * 60)]) == expected.map(Float.init))
        }
      }
    }
    #expect(offsets.count == 9, "all 9 horizontal offsets occur over 120 draws")
    #expect(flips == [false, true])
    // The choice depends on (seed, epoch, index) only.
    #expect(p.augmentationChoice(epoch: 3, index: 2) == p.augmentationChoice(epoch: 3, index: 2))
    #expect(pipeline(count: 6, batchSize: 2).augmentationChoice(epoch: 0, index: 0)
      == AugmentationChoice(offsetY: 0, offsetX: 0, flip: false))
  }
}
