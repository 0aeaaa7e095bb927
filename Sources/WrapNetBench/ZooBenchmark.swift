import WrapNet
import WrapNetEngine

/// Which clock times the kernel cases; the raw value is the name `wrapnet bench --clock` takes and the JSON prints.
public enum BenchClock: String, Sendable, CaseIterable {
  case threadCPU = "thread-cpu"
  case wall

  /// The kernel benchmark's clock of the same meaning.
  public var kernelClock: KernelBenchmark.Clock { self == .wall ? .wall : .threadCPU }
}

/// The zoo benchmark behind `wrapnet bench`: kernel GOPS on every low-bit layer's real GEMM shape, whole-model
/// images/s of the integer engine, and packed model bytes, for random-weight zoo models.
///
/// Entry point: `run(progress:)` measures and returns a `BenchReport`, whose `text()` is the table report and
/// `json()` the JSON document that `benchmarks/peers` reads. Every kernel case is checked against the reference
/// path before it is timed (a mismatch stops the program).
public struct ZooBenchmark: Sendable {
  /// Zoo architectures to run, in order (`ModelConfig.architectures` names).
  public var models: [String]
  /// Whole-model batch sizes.
  public var batches: [Int]
  /// Whole-model thread counts (kernels always run on one thread).
  public var threads: [Int]
  /// Images per kernel GEMM: n = output positions × `batch`.
  public var batch: Int
  /// Low-bit weights: 1 binary, 2 ternary, 3...8 symmetric k-bit.
  public var weightBits: Int
  /// Activation code bits a (codes 0 ... 2^a − 1).
  public var activationBits: Int
  /// Wrap-around accumulator width b of the low-bit layers, at most `widestBenchedWidth` bits.
  public var accumulatorWidth: AccumulatorWidth

  /// The widest accumulator the kernel benchmark times: its kernels run 8- and 16-bit wrap-around lanes against the
  /// 32-bit lanes they are compared with.
  public static let widestBenchedWidth = 16
  /// Minimum timed seconds per kernel case.
  public var seconds: Double
  /// Minimum timed seconds per whole-model case.
  public var modelSeconds: Double
  /// Clock of the kernel cases (whole models always use the wall clock).
  public var clock: BenchClock
  /// Whether the reference path is timed on every shape, not only on shapes up to `referenceMACLimit` MACs.
  public var referenceOnEveryShape: Bool
  /// Peak GOPS of one core with 8/16-bit lanes, and with 32-bit lanes (for the share of peak).
  public var peakGOPS: Double
  public var peakGOPS32: Double

  /// Largest shape (MACs) whose reference path is timed unless `referenceOnEveryShape`.
  public static let referenceMACLimit = 1 << 22

  /// A benchmark of `models`; the arguments are the fields above (the CLI rejects flags outside their ranges).
  ///
  /// - Precondition: `models` are zoo architectures; `weightBits`, `activationBits` in 1...8; `accumulatorWidth`
  ///   at most `widestBenchedWidth` bits; batch sizes, thread counts, `batch` and both time limits positive.
  public init(
    models: [String], batches: [Int], threads: [Int], batch: Int, weightBits: Int, activationBits: Int,
    accumulatorWidth: AccumulatorWidth, seconds: Double, modelSeconds: Double, clock: BenchClock, referenceOnEveryShape: Bool,
    peakGOPS: Double, peakGOPS32: Double
  ) {
    precondition(
      models.allSatisfy(ModelConfig.architectures.contains),
      "ZooBenchmark: models \(models) must be among \(ModelConfig.architectures)")
    precondition(
      (1...8).contains(weightBits) && (1...8).contains(activationBits)
        && accumulatorWidth.bits <= Self.widestBenchedWidth,
      "ZooBenchmark: weight bits \(weightBits), activation bits \(activationBits) must be in 1...8 and "
        + "accumulator width \(accumulatorWidth) at most \(Self.widestBenchedWidth) bits")
    precondition(
      (batches + threads + [batch]).allSatisfy { $0 >= 1 } && seconds > 0 && modelSeconds > 0,
      "ZooBenchmark: batches \(batches), threads \(threads), batch \(batch), seconds \(seconds), "
        + "model seconds \(modelSeconds) must be positive")
    self.models = models
    self.batches = batches
    self.threads = threads
    self.batch = batch
    self.weightBits = weightBits
    self.activationBits = activationBits
    self.accumulatorWidth = accumulatorWidth
    self.seconds = seconds
    self.modelSeconds = modelSeconds
    self.clock = clock
    self.referenceOnEveryShape = referenceOnEveryShape
    self.peakGOPS = peakGOPS
    self.peakGOPS32 = peakGOPS32
  }

  /// Peak GOPS for a lane width.
  public func peak(lanes: Int) -> Double { lanes == 32 ? peakGOPS32 : peakGOPS }

  /// The zoo configuration benchmarked for `name`: 28×28 grey (mlp, cnn) or 32×32 colour inputs, 10 classes,
  /// low-bit layers in cyclic mode with the benchmark's weight, activation and accumulator bits.
  public func config(for name: String) -> ModelConfig {
    let colour = name == "vgg-small" || name == "resnet20"
    return ModelConfig(
      architecture: name, inputChannels: colour ? 3 : 1, inputHeight: colour ? 32 : 28, inputWidth: colour ? 32 : 28,
      classes: 10, weightBits: weightBits, activationBits: activationBits, accumulatorBits: accumulatorWidth.bits,
      accumulatorMode: .cyclic)
  }

  var weightKind: PackedWeights.CodeKind {
    switch weightBits {
    case 1: return .binary
    case 2: return .ternary
    default: return .symmetric(bits: weightBits)
    }
  }

  /// Measures every model: register-only ceilings, then per model the kernels, the whole model and its bytes.
  /// `progress` receives one line before each measurement (the CLI prints them to stderr).
  ///
  /// - Throws: what building, exporting or loading a zoo model throws (never expected for valid settings).
  public func run(progress: (String) -> Void) throws -> BenchReport {
    let cpu = BenchCPU.current
    let paths = KernelPath.allCases.filter { $0 != .reference && $0.isAvailable }
    let laneList = AccumulatorWidth.laneWidths.filter { $0 >= accumulatorWidth.bits }
    // 0. What this core can do at all with each primitive (register-only loops).
    var ceilings: [(KernelBenchmark.CeilingPrimitive, Double)] = []
    for p in KernelBenchmark.CeilingPrimitive.allCases {
      progress("bench: register-only ceiling of \(p.rawValue)")
      if let g = KernelBenchmark.measureCeilingGOPS(p, seconds: seconds) { ceilings.append((p, g)) }
    }
    var results: [ModelBench] = []
    for name in models {
      var trainer = try WrapModel(config: config(for: name), seed: 1)
      var r = ModelBench(name: name)
      // 1. Kernels on the model's low-bit GEMM shapes; identical shapes are measured once.
      let shapes = trainer.lowBitGEMMShapes(batch: batch)
      var measured: [String: Double] = [:]
      for (index, shape) in shapes.enumerated() {
        progress(
          "bench \(name): kernels \(index + 1)/\(shapes.count) \(shape.layer) (m \(shape.m), n \(shape.n), k \(shape.k))"
        )
        var cases: [(KernelPath, Int)] = paths.flatMap { p in laneList.map { (p, $0) } }
        if referenceOnEveryShape || shape.macs <= Self.referenceMACLimit { cases.insert((.reference, 32), at: 0) }
        for (path, lanes) in cases {
          let key = "\(shape.m),\(shape.n),\(shape.k),\(path),\(lanes)"
          let gops =
            measured[key]
            ?? KernelBenchmark.measureGOPS(
              m: shape.m, n: shape.n, k: shape.k, weights: weightKind, activationBits: activationBits,
              bits: accumulatorWidth.bits, lanes: lanes, path: path, seconds: seconds, clock: clock.kernelClock)
          measured[key] = gops
          r.kernels.append(KernelResult(shape: shape, path: path, lanes: path == .reference ? nil : lanes, gops: gops))
        }
        // The lookup kernel: what the engine's avx2 path runs with 8-bit lanes for binary and ternary weights.
        if (weightKind == .binary || weightKind == .ternary) && accumulatorWidth.bits <= 8 {
          let key = "\(shape.m),\(shape.n),\(shape.k),lookup"
          if let gops = measured[key]
            ?? KernelBenchmark.measureLookupGOPS(
              m: shape.m, n: shape.n, k: shape.k, weights: weightKind, activationBits: activationBits,
              bits: accumulatorWidth.bits, seconds: seconds, clock: clock.kernelClock)
          {
            measured[key] = gops
            r.kernels.append(KernelResult(shape: shape, path: .avx2, lanes: 8, gops: gops, kernel: .lookup))
          }
        }
      }
      // 2. Whole model, if the engine can run it.
      let packedFile: SafeTensorsFile?
      do { packedFile = try EngineExport.packedFile(for: trainer) } catch let e as EngineExportError {
        packedFile = nil
        r.unsupportedReason = e.message
      }
      var packedBytes: [UInt8]? = nil
      if let packedFile {
        let bytes = packedFile.serialized()
        packedBytes = bytes
        let engine = try InferenceModel(bytes: bytes, source: "random-weight \(name)")
        for b in batches {
          for t in threads {
            progress("bench \(name): whole model, batch \(b), \(t) thread(s)")
            r.wholeModel.append(try measureWholeModel(engine, batch: b, threads: t))
          }
        }
      }
      // 3. Bytes: the real packed file where there is one, else computed from the shapes.
      let estimate = trainer.packedSizeEstimate()
      r.bytes = ModelBytes(
        packed: packedBytes?.count ?? estimate.totalBytes, computed: packedBytes == nil,
        tensors: packedFile.map { file in file.tensors.values.reduce(0) { sum, t in sum + t.bytes.count } }
          ?? estimate.totalBytes,
        estimate: estimate, float32: trainer.float32ParameterBytes())
      results.append(r)
    }
    return BenchReport(benchmark: self, models: results, cpu: cpu, ceilings: ceilings)
  }

  /// Times `InferenceRunner.run` on `batch` random images: one warm-up run, then at least `modelSeconds` and 3
  /// runs, wall clock (threads matter here).
  func measureWholeModel(_ engine: InferenceModel, batch: Int, threads: Int) throws -> WholeModelResult {
    var rng = SeededGenerator(seed: 0xBE4C_0000 &+ UInt64(batch))
    let size = engine.inputShape.reduce(1, *) * batch
    let pixels = (0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    let runner = try InferenceRunner(model: engine, options: InferenceOptions(path: .fastest, threads: threads))
    _ = runner.run(pixels: pixels, count: batch)
    // The median run, as for the kernels (and the peer benchmark's median of repeats); wall clock.
    let timing = KernelBenchmark.repeatFor(seconds: modelSeconds, clock: .wall) {
      _ = runner.run(pixels: pixels, count: batch)
    }
    return WholeModelResult(
      batch: batch, threads: threads, imagesPerSecond: Double(batch) / timing.median, seconds: timing.seconds,
      runs: timing.runs, medianSeconds: timing.median)
  }
}
