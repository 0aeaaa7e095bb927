import Foundation
import Testing
import WrapNet
import WrapNetEngine

/// A fresh empty directory under the system temporary directory.
private func makeTemporaryDirectory() throws -> String {
  let path = FileManager.default.temporaryDirectory.appendingPathComponent("wrapnet-test-\(UUID().uuidString)").path
  try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

/// Whether `python3` with the `safetensors` and `numpy` packages is available (interop tests run only then).
private func pythonHasSafeTensors() -> Bool {
  (try? runPython("import safetensors.numpy, numpy").status) == 0
}

/// Runs `python3 -c script`, returning exit status and standard output.
private func runPython(_ script: String) throws -> (status: Int32, output: String) {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  process.arguments = ["python3", "-c", script]
  let pipe = Pipe()
  process.standardOutput = pipe
  process.standardError = FileHandle.nullDevice
  try process.run()
  let data = pipe.fileHandleForReading.readDataToEndOfFile()
  process.waitUntilExit()
  return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

@Suite struct SafeTensorsTests {
  /// A file from a literal header (padded with spaces to a multiple of 8) and data bytes.
  private func rawFile(header: String, data: [UInt8]) -> [UInt8] {
    var json = Array(header.utf8)
    while json.count % 8 != 0 { json.append(0x20) }
    return withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) } + json + data
  }

  private func expectError(
    _ kind: SafeTensorsError.Kind, _ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation
  ) {
    do {
      _ = try SafeTensorsFile(bytes: bytes, source: "bad.safetensors")
      Issue.record("expected \(kind) but the file was accepted", sourceLocation: sourceLocation)
    } catch let error as SafeTensorsError {
      #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
      #expect(error.description.hasPrefix("bad.safetensors: "), sourceLocation: sourceLocation)
    } catch {
      Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
    }
  }

  @Test func byteLayoutOfTinyFile() {
    let file = SafeTensorsFile(tensors: ["a": SafeTensor(shape: [1], values: [Float(1)])])
    let header = #"{"a":{"data_offsets":[0,4],"dtype":"F32","shape":[1]}}"#  // 54 bytes, padded to 56
    let expected: [UInt8] = [56, 0, 0, 0, 0, 0, 0, 0] + Array(header.utf8) + [0x20, 0x20] + [0x00, 0x00, 0x80, 0x3F]
    #expect(file.serialized() == expected)
  }

  @Test func roundTripAllDTypesAndMetadata() throws {
    let file = SafeTensorsFile(
      tensors: [
        "f32": SafeTensor(Tensor(shape: [2, 3], data: [1, -2, 3.5, 0, .infinity, -0.25])),
        "f64": SafeTensor(shape: [2], values: [Double.pi, -1e300]),
        "i8": SafeTensor(shape: [3], values: [Int8.min, 0, Int8.max]),
        "u8": SafeTensor(shape: [1, 2], values: [UInt8(0), 255]),
        "i16": SafeTensor(shape: [2], values: [Int16.min, 12345]),
        "i32": SafeTensor(shape: [], values: [Int32(-7)]),
        "i64": SafeTensor(shape: [2], values: [Int64.min, Int64.max]),
        "empty": SafeTensor(shape: [0, 4], values: [Float]()),
        "dir/with/slash": SafeTensor(shape: [1], values: [Float(2)]),
      ],
      metadata: ["config": #"{"bits": 8, "path": "a/b"}"#, "format": "pt"])
    let dir = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/model.safetensors"
    try file.write(to: path)
    let back = try SafeTensorsFile.read(from: path)
    #expect(back == file)
    #expect(back.tensors["i64"]?.values(as: Int64.self) == [Int64.min, Int64.max])
    #expect(back.tensors["f32"]?.floatTensor == Tensor(shape: [2, 3], data: [1, -2, 3.5, 0, .infinity, -0.25]))
    #expect(back.tensors["i8"]?.values(as: Float.self) == nil, "no silent conversion")
    // Deterministic: the same content serializes to the same bytes.
    #expect(back.serialized() == file.serialized())
    #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(file.serialized()))
  }

  @Test func corruptFilesAreRejectedWithTheirKind() {
    let f32 = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
    let four: [UInt8] = [0, 0, 128, 63]
    // Sanity: the well-formed base case is accepted.
    #expect((try? SafeTensorsFile(bytes: rawFile(header: f32, data: four))) != nil)

    expectError(.tooShort, [])
    expectError(.tooShort, [1, 0, 0])
    expectError(.headerBeyondFile, [200, 0, 0, 0, 0, 0, 0, 0] + Array(repeating: 0x20, count: 16))
    expectError(.headerBeyondFile, [255, 255, 255, 255, 255, 255, 255, 255, 0x7B, 0x7D])
    expectError(.invalidHeader, rawFile(header: #"{"a": {"dtype": "F32""#, data: four))
    expectError(.invalidHeader, rawFile(header: "[1, 2]", data: []))
    expectError(.invalidHeader, rawFile(header: #"{"a": 3}"#, data: []))
    expectError(.invalidHeader, rawFile(header: #"{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}"#, data: four))
    expectError(.invalidHeader, rawFile(header: #"{"a":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}"#, data: four))
    expectError(.invalidHeader, rawFile(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, data: four))
    expectError(.invalidHeader, rawFile(header: #"{"__metadata__":{"k":1}}"#, data: []))
    expectError(.unknownDType, rawFile(header: #"{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}}"#, data: four))
    expectError(.badOffsets, rawFile(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}"#, data: four))
    expectError(.badOffsets, rawFile(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, data: four))
    expectError(.badOffsets, rawFile(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#, data: four))
    expectError(.badOffsets, rawFile(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: four))
    expectError(
      .badOffsets,
      rawFile(
        header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"I16","shape":[2],"data_offsets":[2,6]}}"#,
        data: four + [0, 0]))
    expectError(.uncoveredData, rawFile(header: f32, data: four + [1, 2, 3, 4]))
    expectError(
      .uncoveredData,
      rawFile(
        header: #"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}"#,
        data: [1, 2, 3]))
    expectError(.uncoveredData, rawFile(header: "{}", data: [9]))
  }

  @Test func readErrorsNameTheFile() throws {
    let dir = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/truncated.safetensors"
    try AtomicFile.write([1, 2, 3], to: path)
    #expect {
      try SafeTensorsFile.read(from: path)
    } throws: { error in
      (error as? SafeTensorsError)?.description.contains(path) == true
    }
    #expect(throws: SafeTensorsError.self) { try SafeTensorsFile.read(from: dir + "/missing.safetensors") }
  }

  @Test(.enabled(if: pythonHasSafeTensors(), "python3 with safetensors and numpy not installed"))
  func pythonReadsOurFilesAndWeReadPythons() throws {
    let dir = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let ours = dir + "/ours.safetensors"
    try SafeTensorsFile(
      tensors: [
        "w": SafeTensor(Tensor(shape: [2, 2], data: [1, 2, 3, -4.5])),
        "q": SafeTensor(shape: [3], values: [Int8(-128), 5, 127]),
        "n": SafeTensor(shape: [1], values: [Int64(1) << 40]),
      ],
      metadata: ["bits": "8"]
    ).write(to: ours)
    let read = try runPython(
      """
      from safetensors import safe_open
      with safe_open('\(ours)', framework='numpy') as f:
          print(f.metadata()['bits'], f.get_tensor('w').dtype, f.get_tensor('w').tolist(), \
      f.get_tensor('q').tolist(), f.get_tensor('n').tolist())
      """)
    #expect(read.status == 0)
    #expect(read.output == "8 float32 [[1.0, 2.0], [3.0, -4.5]] [-128, 5, 127] [1099511627776]\n")

    let theirs = dir + "/theirs.safetensors"
    let written = try runPython(
      """
      import numpy as np
      from safetensors.numpy import save_file
      save_file({'b': np.arange(6, dtype=np.float64).reshape(2, 3), 'a': np.array([7, -8], dtype=np.int32), \
      'c': np.array([1, 2, 3], dtype=np.uint8)}, '\(theirs)', metadata={'k': 'v'})
      """)
    #expect(written.status == 0)
    let file = try SafeTensorsFile.read(from: theirs)
    #expect(file.metadata == ["k": "v"])
    #expect(file.tensors["b"]?.shape == [2, 3])
    #expect(file.tensors["b"]?.values(as: Double.self) == [0, 1, 2, 3, 4, 5])
    #expect(file.tensors["a"]?.values(as: Int32.self) == [7, -8])
    #expect(file.tensors["c"]?.values(as: UInt8.self) == [1, 2, 3])
  }
}

@Suite struct FileWritingTests {
  @Test func atomicWriteCreatesReplacesAndLeavesNoTemporaries() throws {
    let dir = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/out.bin"
    try AtomicFile.write([1, 2, 3], to: path)
    #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data([1, 2, 3]))
    try AtomicFile.write(Data([9]), to: path)
    #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data([9]))
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["out.bin"])
  }

  @Test func atomicWriteIntoMissingDirectoryThrowsNamingThePath() {
    let path = "/nonexistent-wrapnet-dir/x/out.bin"
    #expect {
      try AtomicFile.write([1], to: path)
    } throws: { error in
      (error as? FileError)?.description.hasPrefix(path) == true
    }
  }

  private struct Summary: Codable, Equatable {
    var zeta: Int
    var alpha: String
    var nested: [String: Double]
  }

  @Test func jsonFileIsPrettySortedAndRoundTrips() throws {
    let dir = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/summary.json"
    let summary = Summary(zeta: 1, alpha: "runs/a", nested: ["b": 0.5, "a": 2])
    try JSONFile.write(summary, to: path)
    let text = try String(contentsOfFile: path, encoding: .utf8)
    #expect(text.hasSuffix("}\n"))
    #expect(text.contains("\n  \""), "pretty-printed")
    #expect(text.contains("runs/a"), "slashes not escaped")
    let keys = ["\"alpha\"", "\"nested\"", "\"a\"", "\"b\"", "\"zeta\""].map { text.range(of: $0)!.lowerBound }
    #expect(keys == keys.sorted(), "keys sorted")
    #expect(try JSONFile.read(Summary.self, from: path) == summary)
    #expect(try JSONFile.encode(summary) == Data(contentsOf: URL(fileURLWithPath: path)))

    try JSONFile.write(jsonObject: ["b": [1, 2], "a": "x"], to: path)
    let object = try String(contentsOfFile: path, encoding: .utf8)
    #expect(object.range(of: "\"a\"")!.lowerBound < object.range(of: "\"b\"")!.lowerBound)
    #expect(throws: FileError.self) { try JSONFile.write(Summary(zeta: 0, alpha: "", nested: ["x": .nan]), to: path) }
    #expect(throws: FileError.self) { try JSONFile.read(Summary.self, from: dir + "/missing.json") }
  }
}
