import Testing
import WrapNet
import WrapNetTestSupport

@Suite struct DatasetIDXTests {
  @Test func encodedLayout() {
    let a = IDXArray(dimensions: [2, 3], bytes: [1, 2, 3, 4, 5, 6])
    #expect(a.magic == 0x0000_0802)
    #expect(a.encoded() == [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6])
  }

  @Test(arguments: [false, true])
  func roundTripRawAndGzip(gzip: Bool) throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let images = idxImages(count: 5)
    let labels = idxLabels([0, 9, 3, 3, 7])
    let suffix = gzip ? ".gz" : ""
    let ip = try dir.write(gzip ? Gzip.compress(images.encoded()) : images.encoded(), to: "img" + suffix)
    let lp = try dir.write(gzip ? Gzip.compress(labels.encoded()) : labels.encoded(), to: "lab" + suffix)
    #expect(try IDXReader.readImages(path: ip, height: 28, width: 28) == images)
    #expect(try IDXReader.readLabels(path: lp, classCount: 10) == labels.bytes)
    let pair = try DatasetSplits.loadIDXPair(images: ip, labels: lp)
    #expect(pair.count == 5 && pair.shape == [1, 28, 28] && pair.classCount == 10)
    #expect(pair.images == images.bytes && pair.labels == labels.bytes)
  }

  /// gzip is detected by the magic, so a compressed file without `.gz` in its name reads too.
  @Test func gzipDetectedByMagic() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let a = IDXArray(dimensions: [2, 3, 4], bytes: testBytes(count: 24))
    let p = try dir.write(Gzip.compress(a.encoded()), to: "noext")
    #expect(try IDXReader.read(path: p) == a)
  }

  /// The generic reader returns any dimensions; the MNIST check is only in `readImages(height:width:)`.
  @Test func genericReaderReturnsDimensions() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let a = IDXArray(dimensions: [3, 5, 7, 2], bytes: testBytes(count: 210))
    let p = try dir.write(a.encoded(), to: "four.idx")
    let read = try IDXReader.read(path: p)
    #expect(read.dimensions == [3, 5, 7, 2] && read.magic == 0x0000_0804 && read.bytes == a.bytes)
    let img = try dir.write(idxImages(count: 2, height: 5, width: 6).encoded(), to: "small")
    #expect(try IDXReader.readImages(path: img).dimensions == [2, 5, 6])
  }

  @Test func wrongMagic() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let labels = try dir.write(idxLabels([1, 2]).encoded(), to: "labels")
    #expect(throws: DatasetError.wrongMagic(path: labels, expected: 0x0000_0803, found: 0x0000_0801)) {
      try IDXReader.readImages(path: labels)
    }
    let images = try dir.write(idxImages(count: 1).encoded(), to: "images")
    #expect(throws: DatasetError.wrongMagic(path: images, expected: 0x0000_0801, found: 0x0000_0803)) {
      try IDXReader.readLabels(path: images, classCount: 10)
    }
    // Not an unsigned-byte IDX file at all (type 0x0D = float).
    let floats = try dir.write([0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0], to: "floats")
    #expect(throws: DatasetError.wrongMagic(path: floats, expected: 0x0000_0801, found: 0x0000_0d01)) {
      try IDXReader.read(path: floats)
    }
    let error = DatasetError.wrongMagic(path: "/d/f", expected: 0x803, found: 0x801)
    #expect("\(error)" == "/d/f: wrong IDX magic number: expected 0x00000803, found 0x00000801")
  }

  @Test func wrongDimensions() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let p = try dir.write(Gzip.compress(idxImages(count: 3, height: 27, width: 28).encoded()), to: "img.gz")
    #expect(throws: DatasetError.wrongDimensions(path: p, expected: "Nx28x28 images", found: [3, 27, 28])) {
      try IDXReader.readImages(path: p, height: 28, width: 28)
    }
    #expect(
      "\(DatasetError.wrongDimensions(path: p, expected: "Nx28x28 images", found: [3, 27, 28]))".hasSuffix(
        "wrong dimensions: expected Nx28x28 images, found 3x27x28"))
  }

  @Test func truncatedFile() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let full = idxImages(count: 4).encoded()
    let body = try dir.write(Array(full.dropLast(100)), to: "body")
    #expect(throws: DatasetError.truncated(path: body, expectedBytes: full.count, foundBytes: full.count - 100)) {
      try IDXReader.readImages(path: body, height: 28, width: 28)
    }
    let header = try dir.write(Array(full[0..<10]), to: "header")
    #expect(throws: DatasetError.truncated(path: header, expectedBytes: 16, foundBytes: 10)) {
      try IDXReader.readImages(path: header)
    }
    let tiny = try dir.write([0, 0], to: "tiny")
    #expect(throws: DatasetError.truncated(path: tiny, expectedBytes: 4, foundBytes: 2)) {
      try IDXReader.read(path: tiny)
    }
    // Truncated inside the gzip layer: the decompressor reports it, not the IDX parser.
    let gz = Gzip.compress(full)
    let cut = try dir.write(Array(gz[0..<(gz.count / 2)]), to: "cut.gz")
    #expect {
      try IDXReader.readImages(path: cut)
    } throws: { error in
      if case DatasetError.truncatedGzip(cut, _) = error { return true }
      return false
    }
  }

  @Test func countMismatch() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let ip = try dir.write(Gzip.compress(idxImages(count: 3).encoded()), to: "i.gz")
    let lp = try dir.write(Gzip.compress(idxLabels([1, 2]).encoded()), to: "l.gz")
    let expected = DatasetError.countMismatch(imagesPath: ip, imageCount: 3, labelsPath: lp, labelCount: 2)
    #expect(throws: expected) { try DatasetSplits.loadIDXPair(images: ip, labels: lp) }
    #expect("\(expected)".contains("holds 3 images but \(lp) holds 2 labels"))
  }

  @Test func labelOutOfRange() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let lp = try dir.write(idxLabels([0, 9, 10, 255]).encoded(), to: "l")
    let expected = DatasetError.labelOutOfRange(path: lp, index: 2, label: 10, classCount: 10)
    #expect(throws: expected) { try IDXReader.readLabels(path: lp, classCount: 10) }
    #expect("\(expected)".hasSuffix("label out of range at item 2: expected 0..<10, found 10"))
  }

  /// A `.gz` name holding neither gzip nor raw IDX bytes (a half-written or mislabeled download) is refused.
  @Test func notGzipDespiteName() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let p = try dir.write([0x3c, 0x68, 0x74, 0x6d, 0x6c], to: "labels.gz")
    #expect(throws: DatasetError.notGzip(path: p, found: [0x3c, 0x68])) { try IDXReader.read(path: p) }
    #expect("\(DatasetError.notGzip(path: p, found: [0, 0]))".hasSuffix("expected the gzip magic 1f 8b, found 00 00"))
  }

  /// Raw (not gzipped) IDX bytes are read under a `.gz` name too, as torchvision and most loaders do.
  @Test func rawIDXUnderGzipName() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let p = try dir.write(idxLabels([1, 7]).encoded(), to: "labels.gz")
    #expect(try IDXReader.readLabels(path: p, classCount: 10) == [1, 7])
  }

  /// Bytes after the declared data are refused (raw and gzip), naming both sizes.
  @Test(arguments: [false, true])
  func trailingBytesAreRefused(gzip: Bool) throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let raw = idxLabels([1, 2, 3]).encoded() + [9, 9]
    let p = try dir.write(gzip ? Gzip.compress(raw) : raw, to: gzip ? "l.gz" : "l")
    #expect(throws: DatasetError.trailingBytes(path: p, expectedBytes: 11, foundBytes: 13)) {
      try IDXReader.readLabels(path: p, classCount: 10)
    }
  }

  @Test func missingFile() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let p = dir.file("nope.gz")
    #expect(throws: DatasetError.fileNotFound(path: p)) { try IDXReader.read(path: p) }
    // A directory is not a file either.
    #expect(throws: DatasetError.fileNotFound(path: dir.path)) { try IDXReader.read(path: dir.path) }
  }
}
