import Foundation

extension InferenceModel {
  /// Loads and validates the packed model at `path`. Throws `InferenceModelError` naming the file for a missing,
  /// unreadable, truncated or corrupt file, another format or version, or inconsistent layers.
  public init(contentsOf path: String) throws {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
      throw InferenceModelError(path: path, reason: "no such file (expected a packed model written by `wrapnet convert`)")
    }
    guard !isDirectory.boolValue else {
      throw InferenceModelError(path: path, reason: "this is a directory; pass the packed model file (written by `wrapnet convert`)")
    }
    let data: Data
    do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
      throw InferenceModelError(path: path, reason: "the file cannot be read (permission denied or an I/O error); check its permissions")
    }
    try self.init(bytes: [UInt8](data), source: path)
  }

  /// Parses and validates packed-model bytes; `source` names them in errors.
  public init(bytes: [UInt8], source: String = "<memory>") throws {
    let file: SafeTensorsFile
    do { file = try SafeTensorsFile(bytes: bytes, source: source) } catch let error as SafeTensorsError {
      throw InferenceModelError(path: source, reason: "not a valid packed model file: \(error.reason)")
    }
    func fail(_ reason: String) -> InferenceModelError { InferenceModelError(path: source, reason: reason) }
    let meta = file.metadata
    guard meta["format"] == PackedModelFormat.name else {
      throw fail(
        "not a packed WrapNet engine model (metadata 'format' is \(meta["format"].map { "'\($0)'" } ?? "missing"), expected '\(PackedModelFormat.name)'); create one with `wrapnet convert RUN/model.safetensors --out MODEL`")
    }
    guard let version = meta["format_version"], PackedModelFormat.readableVersions.contains(version) else {
      throw fail(
        "packed model format version \(meta["format_version"].map { "'\($0)'" } ?? "missing") is not supported (this engine reads versions \(PackedModelFormat.readableVersions.sorted().joined(separator: ", "))); convert the checkpoint again with this wrapnet")
    }
    guard let arch = meta["architecture"] else { throw fail("metadata has no 'architecture'") }
    guard let shapeText = meta["input_shape"], let shape = Self.intArray(shapeText), shape.count == 3,
      shape.allSatisfy({ $0 > 0 && $0 <= 4096 })
    else { throw fail("metadata 'input_shape' must be a JSON array [C, H, W] of positive integers") }
    guard let classText = meta["classes"], let classes = Int(classText), classes > 0 else {
      throw fail("metadata 'classes' must be a positive integer")
    }
    guard let layersText = meta["layers"] else { throw fail("metadata has no 'layers'") }
    let descriptors: [PackedLayerDescriptor]
    do { descriptors = try JSONDecoder().decode([PackedLayerDescriptor].self, from: Data(layersText.utf8)) } catch {
      throw fail("metadata 'layers' is not a valid layer list: \(error)")
    }
    var used = Set<String>()
    var ops: [InferenceOperation] = []
    // The activation shape as it flows: (h, w, c); after flatten (1, 1, features).
    var (h, w, c) = (shape[1], shape[2], shape[0])
    var maxCode = 255  // raw pixels
    var sawLogits = false
    // The block input a `shortcut` saved and not yet consumed: its shape and largest code.
    var saved: (h: Int, w: Int, c: Int, maxCode: Int)? = nil
    for (index, d) in descriptors.enumerated() {
      let at = "layer \(index) ('\(d.name)')"
      guard !sawLogits else { throw fail("\(at) follows the logits layer, which must be last") }
      switch d.kind {
      case "flatten":
        (h, w, c) = (1, 1, h * w * c)
        ops.append(.flatten)
      case "maxpool":
        guard let k = d.kernel, let s = d.stride, k >= 1, s >= 1, h >= k, w >= k else {
          throw fail("\(at): maxpool needs kernel >= 1 and stride >= 1 no larger than the \(h)×\(w) input")
        }
        (h, w) = ((h - k) / s + 1, (w - k) / s + 1)
        ops.append(.maxPool(kernel: k, stride: s))
      case "shortcut":
        guard saved == nil else { throw fail("\(at): a shortcut is saved while the previous one is still unused") }
        saved = (h, w, c, maxCode)
        ops.append(.saveShortcut)
      case "recode":
        // A map from each incoming code (0 … maxCode) to a code of activation_bits bits.
        guard let a = d.activationBits, (1...8).contains(a) else { throw fail("\(at): a recode needs activation_bits in 1...8") }
        let name = "\(d.name).codes"
        guard let t = file.tensors[name] else { throw fail("\(at): tensor '\(name)' is missing") }
        guard t.dtype.rawValue == "U8", t.shape == [maxCode + 1] else {
          throw fail("\(at): tensor '\(name)' is \(t.dtype.rawValue) \(t.shape), expected U8 [\(maxCode + 1)] (one code per incoming code 0…\(maxCode))")
        }
        let top = (1 << a) - 1
        guard t.bytes.allSatisfy({ Int($0) <= top }) else {
          throw fail("\(at): tensor '\(name)' holds codes above \(top) (corrupt file)")
        }
        used.insert(name)
        ops.append(.recode(codes: t.bytes + [UInt8](repeating: 0, count: 256 - t.bytes.count)))
        maxCode = top
      case "sumpool":
        let sumMax = maxCode * h * w
        guard sumMax <= 255 else {
          throw fail("\(at): sums of \(h * w) codes up to \(maxCode) can reach \(sumMax), more than an 8-bit code holds")
        }
        (h, w, maxCode) = (1, 1, sumMax)
        ops.append(.sumPool)
      case "linear", "conv":
        let layer = try Self.denseLayer(
          d, at: at, file: file, used: &used, input: (h, w, c), inputMaxCode: maxCode, saved: &saved, fail: fail)
        switch layer.geometry {
        case .linear(_, let o): (h, w, c) = (1, 1, o)
        case .conv(_, let o, let k, let s, let p): (h, w, c) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1, o)
        }
        if case .logits = layer.output { sawLogits = true }
        maxCode = layer.maxOutputCode
        ops.append(.dense(layer))
      default:
        throw fail("\(at) has unknown kind '\(d.kind)' (expected linear, conv, maxpool, flatten, shortcut, recode or sumpool)")
      }
    }
    guard saved == nil else { throw fail("a saved shortcut is never used by a residual layer") }
    guard sawLogits else { throw fail("the layer list does not end with a logits layer") }
    guard h * w * c == classes else { throw fail("the logits layer has \(h * w * c) outputs but 'classes' is \(classes)") }
    let extra = Set(file.tensors.keys).subtracting(used)
    if let name = extra.sorted().first { throw fail("tensor '\(name)' belongs to no layer") }
    self.architecture = arch
    self.inputShape = shape
    self.classes = classes
    self.operations = ops
    self.metadata = meta
  }

  private static func intArray(_ text: String) -> [Int]? {
    guard let any = try? JSONSerialization.jsonObject(with: Data(text.utf8)), let array = any as? [Any] else {
      return nil
    }
    var out: [Int] = []
    for e in array {
      guard let n = e as? NSNumber, n.doubleValue == n.doubleValue.rounded() else { return nil }
      out.append(n.intValue)
    }
    return out
  }

  private static func codeKind(_ name: String?) -> PackedWeights.CodeKind? {
    switch name {
    case "binary": return .binary
    case "ternary": return .ternary
    case let s? where s.hasPrefix("int"):
      guard let k = Int(s.dropFirst(3)), (2...8).contains(k) else { return nil }
      return .symmetric(bits: k)
    default: return nil
    }
  }


  /// Threshold rows [rows, levels] (little-endian I64) with one direction per channel (`rowsPerChannel` rows each),
  /// checked: directions ±1, every row monotone in its channel's direction.
  private static func thresholdRows(
    _ raw: [UInt8], directions: [UInt8], rows: Int, rowsPerChannel: Int, levels: Int, name: String, at: String,
    fail: (String) -> InferenceModelError
  ) throws -> ([Int64], [Bool]) {
    let values = raw.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }.map { Int64(littleEndian: $0) }
    var descending = [Bool](repeating: false, count: directions.count)
    for ch in 0..<directions.count {
      let dir = Int8(bitPattern: directions[ch])
      guard dir == 1 || dir == -1 else {
        throw fail("\(at): tensor '\(name).direction' must hold +1 or -1, found \(dir) (corrupt file)")
      }
      descending[ch] = dir == -1
    }
    for r in 0..<rows {
      let ch = r / rowsPerChannel
      let row = values[(r * levels)..<((r + 1) * levels)]
      // Ascending channels start higher levels at larger sums; descending ones at smaller sums.
      let ordered = zip(row, row.dropFirst()).allSatisfy { descending[ch] ? $0 >= $1 : $0 <= $1 }
      guard ordered else { throw fail("\(at): thresholds of channel \(ch) are not monotone (corrupt file)") }
    }
    return (values, descending)
  }

  /// The shortcut a residual layer reads, checked against the saved block input and the layer's output shape.
  private static func residualShortcut(
    _ d: PackedLayerDescriptor, at: String, geometry: DenseGeometry, input: (h: Int, w: Int, c: Int),
    saved: (h: Int, w: Int, c: Int, maxCode: Int)?, fail: (String) -> InferenceModelError
  ) throws -> Shortcut {
    guard let saved else { throw fail("\(at): a residual output needs a preceding 'shortcut' layer") }
    guard case .conv(_, let o, let k, let st, let p) = geometry else {
      throw fail("\(at): residual outputs are supported on convolutions only")
    }
    guard let s = d.shortcutStride, let c = d.shortcutChannels, let pad = d.shortcutPadBefore, s >= 1, c >= 1,
      pad >= 0, pad + c <= o
    else {
      throw fail("\(at): needs shortcut_stride >= 1, shortcut_channels >= 1 and shortcut_pad_before >= 0 within the \(o) output channels")
    }
    guard c == saved.c else {
      throw fail("\(at): shortcut_channels is \(c) but the saved block input has \(saved.c) channels")
    }
    let (ho, wo) = ((input.h + 2 * p - k) / st + 1, (input.w + 2 * p - k) / st + 1)
    guard (saved.h + s - 1) / s == ho, (saved.w + s - 1) / s == wo else {
      throw fail("\(at): the shortcut subsamples the saved \(saved.h)×\(saved.w) input by \(s) but the layer's output is \(ho)×\(wo)")
    }
    return Shortcut(stride: s, channels: c, padBefore: pad, codes: saved.maxCode + 1)
  }

  private static func denseLayer(
    _ d: PackedLayerDescriptor, at: String, file: SafeTensorsFile, used: inout Set<String>,
    input: (h: Int, w: Int, c: Int), inputMaxCode: Int, saved: inout (h: Int, w: Int, c: Int, maxCode: Int)?,
    fail: (String) -> InferenceModelError
  ) throws -> DenseLayer {
    guard let outputs = d.outputs, outputs > 0, outputs <= 1 << 20, let inputs = d.inputs, inputs > 0 else {
      throw fail("\(at): needs positive 'inputs' and 'outputs'")
    }
    let geometry: DenseGeometry
    let fanIn: Int
    if d.kind == "linear" {
      guard inputs == input.h * input.w * input.c else {
        throw fail("\(at): expects \(inputs) input features but the previous layer gives \(input.h * input.w * input.c)")
      }
      geometry = .linear(inFeatures: inputs, outFeatures: outputs)
      fanIn = inputs
    } else {
      // Kernel and stride are bounded first (no image is near 2^16 pixels wide), so the sums below cannot overflow.
      guard let k = d.kernel, let s = d.stride, let p = d.padding, (1...(1 << 16)).contains(k),
        (1...(1 << 16)).contains(s), p >= 0, p < k, input.h + 2 * p >= k, input.w + 2 * p >= k
      else {
        throw fail("\(at): conv needs 1 <= kernel <= 65536, 1 <= stride <= 65536 and 0 <= padding < kernel fitting the \(input.h)×\(input.w) input (kernel \(d.kernel.map(String.init) ?? "missing"), stride \(d.stride.map(String.init) ?? "missing"), padding \(d.padding.map(String.init) ?? "missing"))")
      }
      guard inputs == input.c else {
        throw fail("\(at): expects \(inputs) input channels but the previous layer gives \(input.c)")
      }
      geometry = .conv(inChannels: inputs, outChannels: outputs, kernel: k, stride: s, padding: p)
      let (window, o1) = (k * k).multipliedReportingOverflow(by: inputs)
      guard !o1 else { throw fail("\(at): the fan-in \(inputs) × \(k) × \(k) is too large") }
      fanIn = window
    }
    // Every weight code must be in the file, so a real model is far below 2^40 codes.
    let (codeCount, o2) = outputs.multipliedReportingOverflow(by: fanIn)
    guard !o2, codeCount <= 1 << 40 else {
      throw fail("\(at): \(outputs) outputs × fan-in \(fanIn) weight codes are too many (at most 2^40)")
    }
    guard let kind = codeKind(d.weightFormat) else {
      throw fail("\(at): weight_format \(d.weightFormat.map { "'\($0)'" } ?? "missing") is not binary, ternary or int2...int8")
    }
    guard let rawBits = d.accumulatorBits else {
      throw fail("\(at): accumulator_bits is missing (an integer in \(AccumulatorWidth.supported))")
    }
    let width: AccumulatorWidth
    do { width = try AccumulatorWidth(validating: rawBits, field: "\(at): accumulator_bits") } catch { throw fail(error.description) }
    let bits = width.bits
    guard let modeName = d.accumulatorMode, let mode = EngineAccumulatorMode(rawValue: modeName) else {
      throw fail("\(at): accumulator_mode \(d.accumulatorMode.map { "'\($0)'" } ?? "missing") is not exact, wrap, cyclic or clamp")
    }
    let lowBit = mode != .exact && bits < 32
    // Exact sums must fit the 32-bit accumulator.
    let bound = Double(fanIn) * Double(inputMaxCode) * Double(kind.maxMagnitude)
    guard !(mode == .exact || mode == .clamp || bits == 32) || bound < 2_147_483_648 else {
      throw fail("\(at): exact sums can reach \(Int(bound)), beyond a 32-bit accumulator")
    }

    func tensor(_ suffix: String, _ dtype: String, _ shape: [Int]) throws -> [UInt8] {
      let name = "\(d.name).\(suffix)"
      guard let t = file.tensors[name] else { throw fail("\(at): tensor '\(name)' is missing") }
      guard t.dtype.rawValue == dtype, t.shape == shape else {
        throw fail("\(at): tensor '\(name)' is \(t.dtype.rawValue) \(t.shape), expected \(dtype) \(shape)")
      }
      used.insert(name)
      return t.bytes
    }
    let packedCount = WeightCodePacking.byteCount(codes: outputs * fanIn, kind: kind)
    let packed = try tensor("weight_codes", "U8", [packedCount])
    guard let codes = WeightCodePacking.unpack(packed, count: outputs * fanIn, kind: kind) else {
      throw fail("\(at): tensor '\(d.name).weight_codes' holds codes that are not valid \(kind) codes (corrupt file)")
    }
    let weights = PackedWeights(codes: codes, m: outputs, k: fanIn, kind: kind)

    let output: DenseOutput
    var maxOut = 0
    switch d.output {
    case "table":
      guard lowBit else { throw fail("\(at): a table output needs a low-bit (wrap, cyclic, clamp) accumulator") }
      guard let a = d.activationBits, (1...8).contains(a) else { throw fail("\(at): activation_bits must be in 1...8") }
      maxOut = (1 << a) - 1
      let table = try tensor("table", "U8", [outputs, 1 << bits])
      guard table.allSatisfy({ Int($0) <= maxOut }) else {
        throw fail("\(at): tensor '\(d.name).table' holds codes above \(maxOut) (corrupt file)")
      }
      output = .table(codes: table)
    case "thresholds":
      guard !lowBit else { throw fail("\(at): a thresholds output needs an exact (32-bit) accumulator") }
      guard let a = d.activationBits, (1...8).contains(a) else { throw fail("\(at): activation_bits must be in 1...8") }
      maxOut = (1 << a) - 1
      let raw = try tensor("thresholds", "I64", [outputs, maxOut])
      let directions = try tensor("direction", "I8", [outputs])
      let (values, descending) = try thresholdRows(
        raw, directions: directions, rows: outputs, rowsPerChannel: 1, levels: maxOut, name: d.name, at: at, fail: fail)
      output = .thresholds(thresholds: values, levels: maxOut, descending: descending)
    case "residual_table", "residual_thresholds":
      let shortcut = try residualShortcut(d, at: at, geometry: geometry, input: input, saved: saved, fail: fail)
      saved = nil
      guard let a = d.activationBits, (1...8).contains(a) else { throw fail("\(at): activation_bits must be in 1...8") }
      maxOut = (1 << a) - 1
      let s = shortcut.codes
      if d.output == "residual_table" {
        guard lowBit else { throw fail("\(at): a residual_table output needs a low-bit (wrap, cyclic, clamp) accumulator") }
        guard outputs * s << bits <= PackedModelFormat.maxResidualTableEntries else {
          throw fail("\(at): a residual table of \(outputs) × \(s) × 2^\(bits) entries is too large (at most \(PackedModelFormat.maxResidualTableEntries))")
        }
        let table = try tensor("table", "U8", [outputs, s, 1 << bits])
        guard table.allSatisfy({ Int($0) <= maxOut }) else {
          throw fail("\(at): tensor '\(d.name).table' holds codes above \(maxOut) (corrupt file)")
        }
        output = .residualTable(codes: table, shortcut: shortcut)
      } else {
        guard !lowBit else { throw fail("\(at): a residual_thresholds output needs an exact (32-bit) accumulator") }
        let raw = try tensor("thresholds", "I64", [outputs, s, maxOut])
        let directions = try tensor("direction", "I8", [outputs])
        let (values, descending) = try thresholdRows(
          raw, directions: directions, rows: outputs * s, rowsPerChannel: s, levels: maxOut, name: d.name, at: at,
          fail: fail)
        output = .residualThresholds(thresholds: values, levels: maxOut, descending: descending, shortcut: shortcut)
      }
    case "float", "residual_float":
      guard lowBit else { throw fail("\(at): a float output needs a low-bit (wrap, cyclic, clamp) accumulator") }
      guard let a = d.activationBits, (1...8).contains(a) else { throw fail("\(at): activation_bits must be in 1...8") }
      guard let clip = d.activationClip, clip.isFinite, clip > 0 else {
        throw fail("\(at): a float output needs a finite activation_clip > 0")
      }
      maxOut = (1 << a) - 1
      var cyclic: CyclicActivation? = nil
      if mode == .cyclic {
        guard let k = d.slope, k.isFinite, k > 0 else { throw fail("\(at): a cyclic float output needs a finite slope > 0") }
        cyclic = CyclicActivation(width: width, slope: k)
      }
      func floats(_ suffix: String) throws -> [Float] {
        let v = try tensor(suffix, "F32", [outputs]).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        guard v.allSatisfy({ $0.isFinite }) else {
          throw fail("\(at): tensor '\(d.name).\(suffix)' holds NaN or infinity (corrupt file)")
        }
        return v
      }
      var shortcut: Shortcut? = nil
      var shortcutScale: Float = 0
      if d.output == "residual_float" {
        shortcut = try residualShortcut(d, at: at, geometry: geometry, input: input, saved: saved, fail: fail)
        saved = nil
        guard let sc = d.shortcutScale, sc.isFinite else { throw fail("\(at): a residual float output needs a finite shortcut_scale") }
        shortcutScale = sc
      }
      output = .float(FloatOutput(
        cyclic: cyclic, scale: try floats("scale"), mean: try floats("bn_mean"), std: try floats("bn_std"),
        gamma: try floats("bn_gamma"), beta: try floats("bn_beta"), quantizer: UnsignedActivationQuantizer(bits: a, clip: clip),
        shortcut: shortcut, shortcutScale: shortcutScale))
    case "logits":
      guard mode == .exact || bits == 32 else {
        throw fail("\(at): the logits layer must have a 32-bit accumulator (low-bit last layers are not supported)")
      }
      let scale = try tensor("scale", "F32", [outputs]).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
      let bias = try tensor("bias", "F32", [outputs]).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
      guard scale.allSatisfy({ $0.isFinite }), bias.allSatisfy({ $0.isFinite }) else {
        throw fail("\(at): scale or bias holds NaN or infinity (corrupt file)")
      }
      output = .logits(scale: scale, bias: bias)
    default:
      throw fail("\(at): output \(d.output.map { "'\($0)'" } ?? "missing") is not table, thresholds or logits")
    }
    var layer = DenseLayer(
      name: d.name, geometry: geometry, weights: weights, accumulatorWidth: lowBit ? width : .wide,
      accumulatorMode: lowBit ? mode : .exact, output: output, maxOutputCode: maxOut)
    layer.kernel = LayerKernel.fastest(for: layer, inputMaxCode: inputMaxCode)
    return layer
  }
}
