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
            let want = trainer(z)
            let got = Int(layer.code(forAccumulator: layer.accumulatorValue(exactSum: z), channel: c, shortcut: s))
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
}
