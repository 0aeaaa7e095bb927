import Foundation
import Testing
import WrapNet
import WrapNetTestSupport

/// Loads the real datasets from the default data directory when `wrapnet data fetch` has put them there.
@Suite(.tags(.realData))
struct DatasetRealDataTests {
  static func present(_ name: DatasetName) -> Bool {
    let dir = name.directory(in: defaultDataDirectory())
    return DatasetName.idxFileNames.allSatisfy { FileManager.default.fileExists(atPath: dir + "/" + $0) }
  }

  @Test(.enabled(if: present(.mnist), "run `wrapnet data fetch mnist` first"))
  func mnist() throws {
    let splits = try DatasetSplits.load(.mnist)
    #expect(splits.train.count == 60000 && splits.test.count == 10000)
    #expect(splits.train.shape == [1, 28, 28] && splits.train.images.count == 60000 * 784)
    #expect(splits.train.classHistogram() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    #expect(splits.test.classHistogram() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    // The first training image is a 5; the first test image is a 7.
    #expect(splits.train.labels[0] == 5 && splits.test.labels[0] == 7)
  }

  @Test(.enabled(if: present(.fashionMNIST), "run `wrapnet data fetch fashion-mnist` first"))
  func fashionMNIST() throws {
    let splits = try DatasetSplits.load(.fashionMNIST)
    #expect(splits.train.count == 60000 && splits.test.count == 10000)
    #expect(splits.train.classHistogram() == Array(repeating: 6000, count: 10))
    #expect(splits.test.classHistogram() == Array(repeating: 1000, count: 10))
  }

  /// Decoding all 70000 MNIST images: well under a second in release (debug builds get a loose bound).
  @Test(.enabled(if: present(.mnist)))
  func mnistLoadsQuickly() throws {
    let clock = ContinuousClock()
    let elapsed = try clock.measure { _ = try DatasetSplits.load(.mnist) }
    #if DEBUG
      #expect(elapsed < .seconds(10))
    #else
      #expect(elapsed < .seconds(1))
    #endif
  }
}
