import WrapNetEngine

extension EngineExport {
  /// The trainer's post-processing of one layer that produces activation codes: `code(c, s)(z)` is the next code
  /// of channel c with shortcut code s (0 for plain layers) for the exact sum z, |z| <= `reach`.
  struct LayerCheck {
    var name: String
    var channels: Int
    var shortcutCodes: Int
    var reach: Int64
    var code: (Int, Int) -> (Int64) -> Int
  }

  /// How many sums of each (channel, shortcut code) `verify` samples besides the edges and thresholds.
  static let sampledSums = 48

  /// Loads `file` with the engine's own loader and checks, for every layer in `checks`, that the engine's
  /// accumulator and post-processing give the trainer's code on sampled sums: for every channel c and shortcut
  /// code s, the sums 0, ±1, ±reach, each threshold t and t ± 1 (within ±reach) and `sampledSums` seeded random
  /// sums in [-reach, reach]. Throws `EngineExportError` naming the first layer, channel and sum that disagree,
  /// so a model the engine would run differently from the trainer is never written.
  static func verify(_ file: SafeTensorsFile, against checks: [LayerCheck]) throws {
    let engine: InferenceModel
    do { engine = try InferenceModel(bytes: file.serialized(), source: "the converted model") } catch {
      throw EngineExportError(message: "the engine refuses the converted model: \(error)")
    }
    let byName = Dictionary(checks.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    var generator = SeededGenerator(seed: 0x5EED, keys: 7)
    for layer in engine.denseLayers {
      guard let check = byName[layer.name] else { continue }
      guard layer.outChannels == check.channels else {
        throw EngineExportError(
          message: "layer '\(layer.name)': the engine model has \(layer.outChannels) output channels, the trainer \(check.channels)")
      }
      let reach = check.reach
      for c in 0..<check.channels {
        for s in 0..<check.shortcutCodes {
          let trainer = check.code(c, s)
          var sums: [Int64] = [0, 1, -1, reach, -reach]
          for t in layer.thresholdRow(channel: c, shortcut: s) { sums += [t - 1, t, t + 1] }
          for _ in 0..<sampledSums { sums.append(Int64(generator.int(below: Int(2 * reach + 1))) - reach) }
          for z in sums where z >= -reach && z <= reach {
            let want = trainer(z), got = layer.engineCode(exactSum: z, channel: c, shortcut: s)
            guard want == got else {
              throw EngineExportError(
                message: "layer '\(layer.name)', channel \(c)\(check.shortcutCodes > 1 ? ", shortcut code \(s)" : ""): for the sum \(z) the engine gives code \(got) but the trainer \(want); the model was not written (please report this model)")
            }
          }
        }
      }
    }
  }
}

extension DenseLayer {
  /// The thresholds of channel c (and shortcut code s) for threshold outputs; empty for other outputs.
  func thresholdRow(channel c: Int, shortcut s: Int) -> [Int64] {
    switch output {
    case .thresholds(let t, let levels, _): return Array(t[(c * levels)..<((c + 1) * levels)])
    case .residualThresholds(let t, let levels, _, let sc):
      let row = c * sc.codes + s
      return Array(t[(row * levels)..<((row + 1) * levels)])
    default: return []
    }
  }

  /// The code the engine computes for exact sum z in channel c with shortcut code s, following the documented
  /// semantics of `DenseLayer` and `DenseOutput`: v = wrap_b(z) (wrap, cyclic), clamp_b(z) (clamp) or z (exact),
  /// then the table entry, the number of thresholds passed, or the Float post-processing. -1 for logits.
  func engineCode(exactSum z: Int64, channel c: Int, shortcut s: Int) -> Int {
    let b = accumulatorBits
    let v: Int64
    switch accumulatorMode {
    case .exact: v = z
    case .wrap, .cyclic: v = b < 32 ? z.wrapped(toBits: b) : Int64(Int32(truncatingIfNeeded: z))
    case .clamp: v = Swift.min(Swift.max(z, -(Int64(1) << (b - 1))), (Int64(1) << (b - 1)) - 1)
    }
    let offset = b < 32 ? Int(v) + (1 << (b - 1)) : 0
    func passed(_ t: [Int64], descending: Bool) -> Int {
      t.filter { descending ? v <= $0 : v >= $0 }.count
    }
    switch output {
    case .table(let codes): return Int(codes[(c << b) + offset])
    case .residualTable(let codes, let sc): return Int(codes[((c * sc.codes + s) << b) + offset])
    case .thresholds(_, _, let descending), .residualThresholds(_, _, let descending, _):
      return passed(thresholdRow(channel: c, shortcut: s), descending: descending[c])
    case .float(let f): return Int(f.code(Int32(truncatingIfNeeded: v), channel: c, shortcut: s))
    case .logits: return -1
    }
  }
}
