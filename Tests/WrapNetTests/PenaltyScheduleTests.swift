import Foundation
import Testing
import WrapNet

/// The overflow penalty's schedules: warm-up over a share of the run, and per-layer scaling by fan-in.
@Suite struct PenaltyScheduleTests {
  static func trainer(
    architecture: String = "mlp", warmup: Double? = nil, scaling: String? = nil, steps: Int = 6
  ) throws -> Trainer {
    let data = syntheticDataset(count: 16 * steps, seed: 5)
    let config = ModelConfig(architecture: architecture, accumulatorBits: 8, accumulatorMode: .cyclic, penalty: 0.01)
    var options = TrainingOptions()
    options.epochs = 1
    options.batchSize = 16
    options.seed = 2
    options.penaltyWarmup = warmup
    options.penaltyScaling = scaling
    return try Trainer(model: try WrapModel(config: config, seed: 2), options: options, train: data)
  }

  /// Each low-bit layer's λ follows λ · min(1, (step + 1) / (W · T)); the penalty of the first step (same weights,
  /// same batch) is the unscheduled one times that factor.
  @Test func warmupRampsEveryLayersPenalty() throws {
    var plain = try Self.trainer()
    var warm = try Self.trainer(warmup: 0.5)
    let total = warm.totalSteps
    #expect(total == 6)
    for (s, (a, b)) in zip(plain.pipeline.epoch(0), warm.pipeline.epoch(0)).enumerated() {
      let p = plain.trainStep(a).penalty
      let q = warm.trainStep(b).penalty
      let factor = min(1, Double(s + 1) / (0.5 * Double(total)))
      #expect(warm.penaltyFactor(atStep: s) == Float(factor))
      var model = warm.model
      model.network.visitWrapLayers { layer in
        let full: Float = warm.model.isLowBitLayer(layer.name) ? 0.01 : 0
        #expect(layer.penaltyWeight == full * Float(factor), "step \(s), \(layer.name)")
      }
      if s == 0 {
        #expect(p > 0, "the synthetic batch must overflow 8 bits for this test to mean anything")
        #expect(abs(q - p * factor) <= 1e-6 * p, "first-step penalty \(q), expected \(p) × \(factor)")
      }
    }
    // The smaller early penalty changes the run.
    let a = Checkpoint.tensors(of: &plain.model), b = Checkpoint.tensors(of: &warm.model)
    #expect(a.contains { name, t in t != b[name] })
  }

  /// Under fan-in scaling λ_l · F_l is the same for every low-bit layer, the λ_l average to λ weighted by 1/F_l, and
  /// wide layers keep 0.
  @Test func fanInScalingOnTheCNN() throws {
    var t = try Self.trainer(architecture: "cnn", scaling: "fan-in", steps: 2)
    var fanIns: [String: Int] = [:]
    var probe = t.model
    probe.network.visitWrapLayers { fanIns[$0.name] = $0.geometry.fanIn }
    let lowBit = fanIns.keys.filter { t.model.isLowBitLayer($0) }
    #expect(Set(lowBit.map { fanIns[$0]! }).count > 1, "the cnn's low-bit layers must differ in fan-in")
    let mean = Double(lowBit.map { fanIns[$0]! }.reduce(0, +)) / Double(lowBit.count)
    for (name, f) in fanIns {
      let expected = t.model.isLowBitLayer(name) ? Float(0.01 * mean / Double(f)) : 0
      #expect(t.layerPenalties[name] == expected, "\(name): λ_l \(t.layerPenalties[name]!), expected \(expected)")
    }
    let batch = t.pipeline.epoch(0)[0]
    _ = t.trainStep(batch)
    var model = t.model
    let penalties = t.layerPenalties
    model.network.visitWrapLayers { layer in
      #expect(layer.penaltyWeight == penalties[layer.name], "\(layer.name)")
    }
  }

  /// The mlp's low-bit layers all have fan-in 1024, so fan-in scaling is uniform λ: the same weights, bit for bit.
  @Test func fanInScalingIsUniformForEqualFanIns() throws {
    var a = try Self.trainer(steps: 3)
    var b = try Self.trainer(scaling: "fan-in", steps: 3)
    _ = try a.trainEpoch()
    _ = try b.trainEpoch()
    let ta = Checkpoint.tensors(of: &a.model), tb = Checkpoint.tensors(of: &b.model)
    for (name, t) in ta {
      let same = t == tb[name]
      #expect(same, "\(name) differs")
    }
  }

  /// Under overflow scaling each step's λ_l is λ · r_l / r̄ from the overflow counts before that step (uniform while
  /// nothing has overflowed), and the layers do get different weights.
  @Test func overflowScalingFollowsTheRates() throws {
    var t = try Self.trainer(architecture: "cnn", scaling: "overflow", steps: 4)
    var differed = false
    for batch in t.pipeline.epoch(0) {
      var rates: [String: Double] = [:]
      var probe = t.model
      probe.network.visitWrapLayers { l in
        if t.model.isLowBitLayer(l.name) { rates[l.name] = Double(l.overflowsSeen) / Double(max(l.outputsSeen, 1)) }
      }
      let mean = rates.values.reduce(0, +) / Double(rates.count)
      _ = t.trainStep(batch)
      var model = t.model
      let penalties = t.layerPenalties
      model.network.visitWrapLayers { l in
        let share = mean > 0 ? rates[l.name].map { Float($0 / mean) } ?? 1 : 1
        #expect(l.penaltyWeight == penalties[l.name]! * share, "\(l.name)")
        if share != 1 { differed = true }
      }
    }
    #expect(differed, "the cnn's layers must overflow at different rates for this test to mean anything")
  }

  @Test(arguments: [0, -0.1, 1.5, Double.nan, Double.infinity])
  func badWarmupIsRefused(w: Double) {
    var o = TrainingOptions()
    o.penaltyWarmup = w
    #expect(throws: ConfigError.self) { try o.validate() }
  }

  @Test func badScalingIsRefusedAndUnsetFieldsAreNotWritten() throws {
    var o = TrainingOptions()
    o.penaltyScaling = "per-layer"
    #expect(throws: ConfigError.self) { try o.validate() }
    // Options without a schedule encode as before, so stored sweeps and checkpoints keep their settings.
    let text = String(decoding: try JSONEncoder().encode(TrainingOptions()), as: UTF8.self)
    #expect(!text.contains("penalty"))
    var s = TrainingOptions()
    s.penaltyWarmup = 0.25
    s.penaltyScaling = "fan-in"
    let back = try JSONDecoder().decode(TrainingOptions.self, from: JSONEncoder().encode(s))
    #expect(back == s)
  }
}
