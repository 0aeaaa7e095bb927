import Foundation
import Testing
import WrapNet
import WrapNetEngine

/// The packed file: bit-packing layout, round trip through a file, and rejection of damaged files.
@Suite struct EngineFormatTests {
  /// Bit layout of each code kind, and pack/unpack round trips over every code.
  @Test func codePackingLayout() {
    // ternary: 2-bit two's complement, LSB first: +1 = 01, -1 = 11, 0 = 00, +1 = 01 → 0b01_00_11_01.
    #expect(WeightCodePacking.pack([1, -1, 0, 1], kind: .ternary) == [0x4D])
    // binary: +1 → 1, -1 → 0; nine codes need two bytes.
    #expect(WeightCodePacking.pack([1, -1, -1, 1, 1, 1, -1, -1, 1], kind: .binary) == [0b0011_1001, 0b1])
    // int4: -7 = 1001, 3 = 0011 → 0x39.
    #expect(WeightCodePacking.pack([-7, 3], kind: .symmetric(bits: 4)) == [0x39])
    // int3 codes straddle bytes.
    let kinds: [PackedWeights.CodeKind] = [.binary, .ternary] + (2...8).map { .symmetric(bits: $0) }
    for kind in kinds {
      let valid = (-128...127).map { Int8($0) }.filter { kind.contains($0) }
      let codes = (0..<203).map { valid[($0 * 7 + 3) % valid.count] }
      let packed = WeightCodePacking.pack(codes, kind: kind)
      #expect(packed.count == (203 * WeightCodePacking.bitsPerCode(kind) + 7) / 8)
      #expect(WeightCodePacking.unpack(packed, count: codes.count, kind: kind) == codes, "\(kind)")
    }
    // Invalid fields: ternary 10, int4 -8, and non-zero padding bits.
    #expect(WeightCodePacking.unpack([0b10], count: 1, kind: .ternary) == nil)
    #expect(WeightCodePacking.unpack([0x08], count: 1, kind: .symmetric(bits: 4)) == nil)
    #expect(WeightCodePacking.unpack([0x10], count: 2, kind: .ternary) == nil)
  }

  static func cnnFile() throws -> (WrapModel, SafeTensorsFile) {
    let model = try EngineFixture.trained("cnn", mode: .cyclic, bits: 8, weightBits: 2, steps: 1)
    return (model, try EngineExport.packedFile(for: model))
  }

  /// Written atomically, read back: the same model as from the bytes, with the documented metadata.
  @Test func fileRoundTrip() throws {
    let (_, file) = try Self.cnnFile()
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("engine-format-\(UInt32.random(in: 0...UInt32.max))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("engine.safetensors").path
    try file.write(to: path)
    let loaded = try InferenceModel(contentsOf: path)
    #expect(loaded == (try InferenceModel(bytes: file.serialized())))
    #expect(loaded.architecture == "cnn")
    #expect(loaded.inputShape == [1, 28, 28])
    #expect(loaded.classes == 10)
    #expect(loaded.metadata["format"] == "wrapnet.engine" && loaded.metadata["format_version"] == "2")
    let kinds = loaded.operations.map { op -> String in
      switch op {
      case .dense(let d): return d.name
      case .maxPool: return "pool"
      case .flatten: return "flatten"
      case .saveShortcut: return "shortcut"
      case .sumPool: return "sumpool"
      case .recode: return "recode"
      }
    }
    #expect(kinds == ["input", "pool", "conv2", "conv3", "pool", "conv4", "flatten", "logits"])
    // Ternary low-bit weights take 2 bits each in the file.
    let ternaryBytes: Int = 32 * 16 * 9 * 2 / 8
    let conv2Bytes: Int = file.tensors["conv2.weight_codes"]?.bytes.count ?? -1
    #expect(conv2Bytes == ternaryBytes)
    // The file re-read by the trainer's own safetensors reader is the same container.
    #expect(try SafeTensorsFile.read(from: path) == file)
  }

  /// Truncated, corrupt, wrong-format and wrong-version files are rejected with errors naming the file.
  @Test func damagedFilesAreRejected() throws {
    let (_, file) = try Self.cnnFile()
    let bytes = file.serialized()
    func rejects(_ b: [UInt8], _ needle: String, _ comment: Comment) {
      do {
        _ = try InferenceModel(bytes: b, source: "bad.safetensors")
        Issue.record("accepted: \(comment)")
      } catch {
        let text = "\(error)"
        #expect(text.hasPrefix("bad.safetensors: "), "\(comment): \(text)")
        #expect(text.contains(needle), "\(comment): \(text)")
      }
    }
    rejects(Array(bytes.prefix(5)), "fewer than the 8-byte header", "5 bytes")
    rejects(Array(bytes.prefix(bytes.count / 2)), "truncated", "half a file")
    rejects(Array(bytes.dropLast()), "truncated", "one byte short")
    var header = bytes
    header[8] = UInt8(ascii: "x")
    rejects(header, "JSON", "broken header")

    var wrongVersion = file
    wrongVersion.metadata["format_version"] = "4"
    rejects(wrongVersion.serialized(), "version '4' is not supported", "version 4")
    var wrongFormat = file
    wrongFormat.metadata["format"] = "wrapnet.checkpoint"
    rejects(wrongFormat.serialized(), "not a packed WrapNet engine model", "a checkpoint")

    // A ternary field 10 is no code.
    var badCodes = file
    var codes = badCodes.tensors["conv2.weight_codes"]!
    codes.bytes[0] = 0b10
    badCodes.tensors["conv2.weight_codes"] = codes
    rejects(badCodes.serialized(), "not valid ternary codes", "bad weight code")
    // A table code above the activation's largest code.
    var badTable = file
    var table = badTable.tensors["conv3.table"]!
    table.bytes[7] = 4
    badTable.tensors["conv3.table"] = table
    rejects(badTable.serialized(), "codes above 3", "bad table")
    // A missing tensor and a mis-shaped one.
    var missing = file
    missing.tensors["logits.bias"] = nil
    rejects(missing.serialized(), "'logits.bias' is missing", "missing bias")
    var shaped = file
    shaped.tensors["logits.scale"] = SafeTensor(shape: [11], values: [Float](repeating: 1, count: 11))
    rejects(shaped.serialized(), "expected F32 [10]", "mis-shaped scale")

    // A file that does not exist, and a directory.
    #expect {
      _ = try InferenceModel(contentsOf: "/nonexistent/engine.safetensors")
    } throws: { "\($0)".hasPrefix("/nonexistent/engine.safetensors: no such file") }
    #expect {
      _ = try InferenceModel(contentsOf: NSTemporaryDirectory())
    } throws: { "\($0)".contains("this is a directory") }
  }

  /// A resnet20 file: shortcut / residual / sumpool layers in order, and damaged residual metadata rejected with
  /// messages that name the problem.
  /// A layer's `accumulator_bits` outside `AccumulatorWidth.supported`, or missing, is refused with the layer, the
  /// field, the range and the value found.
  @Test func accumulatorWidthsOutsideTheRangeAreRejected() throws {
    let (_, file) = try Self.cnnFile()
    for (bits, needle) in [
      (40, "accumulator_bits must be in 2...32, got 40"), (1, "accumulator_bits must be in 2...32, got 1"),
      (nil, "accumulator_bits is missing (an integer in 2...32)"),
    ] as [(Int?, String)] {
      var f = file
      var layers = try JSONDecoder().decode([PackedLayerDescriptor].self, from: Data(f.metadata["layers"]!.utf8))
      let i = try #require(layers.firstIndex { $0.name == "conv2" })
      layers[i].accumulatorBits = bits
      f.metadata["layers"] = String(decoding: try JSONEncoder().encode(layers), as: UTF8.self)
      #expect {
        _ = try InferenceModel(bytes: f.serialized(), source: "w.safetensors")
      } throws: { "\($0)".contains("w.safetensors") && "\($0)".contains("conv2") && "\($0)".contains(needle) }
    }
  }

  @Test func residualLayersAndTheirErrors() throws {
    let model = try EngineFixture.trained("resnet20", mode: .cyclic, bits: 8, weightBits: 1, steps: 1)
    let file = try EngineExport.packedFile(for: model)
    let loaded = try InferenceModel(bytes: file.serialized())
    var shortcuts = 0, residuals = 0, sumPools = 0
    for op in loaded.operations {
      switch op {
      case .saveShortcut: shortcuts += 1
      case .sumPool: sumPools += 1
      case .dense(let d):
        if case .residualTable(let codes, let sc) = d.output {
          residuals += 1
          // [C, S, 2^b] with S = 4 codes of 2-bit activations.
          #expect(sc.codes == 4 && codes.count == d.outChannels * 4 * 256, "\(d.name)")
        }
      default: break
      }
    }
    #expect(shortcuts == 9 && residuals == 9 && sumPools == 1)

    func edited(_ change: (inout [PackedLayerDescriptor]) -> Void) throws -> [UInt8] {
      var f = file
      var layers = try JSONDecoder().decode([PackedLayerDescriptor].self, from: Data(f.metadata["layers"]!.utf8))
      change(&layers)
      f.metadata["layers"] = String(decoding: try JSONEncoder().encode(layers), as: UTF8.self)
      return f.serialized()
    }
    func rejects(_ bytes: [UInt8], _ needle: String) {
      #expect {
        _ = try InferenceModel(bytes: bytes, source: "r.safetensors")
      } throws: { "\($0)".contains(needle) }
    }
    rejects(try edited { $0.removeAll { $0.kind == "shortcut" } }, "needs a preceding 'shortcut' layer")
    rejects(
      try edited { l in
        if let i = l.firstIndex(where: { $0.output == "residual_table" }) { l[i].shortcutChannels = 8 }
      }, "shortcut_channels is 8 but the saved block input has 16 channels")
    rejects(
      try edited { l in
        if let i = l.firstIndex(where: { $0.output == "residual_table" }) { l[i].shortcutStride = 2 }
      }, "subsamples the saved 32×32 input by 2 but the layer's output is 32×32")
    rejects(
      try edited { l in
        if let i = l.firstIndex(where: { $0.kind == "sumpool" }) { l.insert(l[i], at: 0) }
      }, "more than an 8-bit code holds")
    var badTable = file
    var table = badTable.tensors["stage1.block1.conv2.table"]!
    table.bytes[5] = 9
    badTable.tensors["stage1.block1.conv2.table"] = table
    rejects(badTable.serialized(), "codes above 3")
  }

  /// Accumulators wider than a table (b > 12) get `float` outputs: their parameters are checked on load.
  @Test func floatOutputsAndTheirErrors() throws {
    let model = try EngineFixture.trained("cnn", mode: .cyclic, bits: 14, weightBits: 8, activationBits: 4, steps: 1)
    let file = try EngineExport.packedFile(for: model)
    let loaded = try InferenceModel(bytes: file.serialized())
    let floats = loaded.denseLayers.compactMap { d -> FloatOutput? in
      if case .float(let f) = d.output { return f } else { return nil }
    }
    #expect(floats.count == 3)
    #expect(floats.allSatisfy { $0.cyclic?.bits == 14 && $0.quantizer.bits == 4 && $0.shortcut == nil })
    func rejects(_ bytes: [UInt8], _ needle: String) {
      #expect {
        _ = try InferenceModel(bytes: bytes, source: "f.safetensors")
      } throws: { "\($0)".contains(needle) }
    }
    var nan = file
    nan.tensors["conv3.bn_std"] = SafeTensor(shape: [64], values: [Float](repeating: .nan, count: 64))
    rejects(nan.serialized(), "'conv3.bn_std' holds NaN")
    var missing = file
    missing.tensors["conv2.bn_gamma"] = nil
    rejects(missing.serialized(), "'conv2.bn_gamma' is missing")
    var noClip = file
    var layers = try JSONDecoder().decode([PackedLayerDescriptor].self, from: Data(noClip.metadata["layers"]!.utf8))
    if let i = layers.firstIndex(where: { $0.output == "float" }) { layers[i].activationClip = nil }
    noClip.metadata["layers"] = String(decoding: try JSONEncoder().encode(layers), as: UTF8.self)
    rejects(noClip.serialized(), "needs a finite activation_clip")
  }
}
