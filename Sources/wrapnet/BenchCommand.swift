import ArgumentParser
import Foundation
import WrapNet
import WrapNetEngine

/// Which clock times the kernel cases (`--clock`).
enum BenchClock: String, ExpressibleByArgument, CaseIterable {
  case threadCPU = "thread-cpu"
  case wall

  var kernelClock: KernelBenchmark.Clock { self == .wall ? .wall : .threadCPU }
}

/// `wrapnet bench`: kernel GOPS on the zoo models' real layer shapes, whole-model images/s, model bytes.
struct BenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract: "Kernel GOPS on the zoo models' layer shapes, whole-model images/s, and packed model bytes.",
    discussion: """
      Builds each zoo model with random weights (speed does not depend on trained values) and measures:

      0. Ceiling. Register-only loops (no loads, eight independent accumulators) of each kernel's inner step: \
      sign+add8 (binary/ternary, 8-bit lanes), maddubs+add16, madd+add32 (32-bit lanes), "shuffle+add8 lut" (the \
      lookup kernel's step: one vpshufb picks 32 table entries of 4 products each, 128 MACs per pair), in GOPS on \
      one thread (AVX2 CPUs only). No kernel built from a step can \
      beat its ceiling on this core, so it is the honest yardstick for the kernel GOPS below.

      1. Kernels. For every low-bit layer (all but the wide first and last layers), the engine's wrap-around GEMM \
      W [m, k] x X [n, k] with m = output channels, k = fan-in, n = output positions x --batch (n = Ho·Wo·batch \
      for convolutions), weight codes of --weight-bits, activation codes of --act-bits, a b = --acc-bits \
      wrap-around accumulator. Every kernel path this CPU has (portable; avx2 when available; reference only for \
      shapes up to 4 M MACs, or all with --reference) x lane width 8, 16, 32, and for binary or ternary weights \
      the row "avx2 lut": the lookup kernel that the engine's avx2 path runs on those layers (16-entry tables \
      of the signed sums of every 4 codes, one vpshufb + vpaddb per 128 products, weights as table indices, 8-bit \
      lanes; the tables are built beforehand, as the engine builds them once per input pixel, and not timed; its \
      8/32 is over the avx2 32-bit-lane kernel). Single thread. Each case is first \
      checked against the reference path (a mismatch stops the program), then timed for at least --seconds and \
      3 runs. GOPS = 2·m·n·k / seconds of the median run (1 MAC = 2 ops; the median, as the peer benchmark \
      reports, so a neighbour's busy spell on a shared machine moves it little). "% peak" is the share of --peak-gops (8/16-bit \
      lanes) or --peak-gops-32 (32-bit lanes); the defaults are one Zen 3 core: about 401 GOPS for ternary x int8 \
      with 8/16-bit accumulators, 200 GOPS with 32-bit. "8/32" is the 8-bit-lane over the 32-bit-lane GOPS. \
      "total" is MAC-weighted over the model's low-bit layers: all their MACs over the sum of their times. \
      --clock thread-cpu (default) counts only the CPU time of the benchmark thread, so a busy machine slows it \
      little; wall counts waiting too.

      2. Whole model. The model (low-bit layers in cyclic mode) is converted with the engine exporter and run by \
      the integer engine from uint8 pixels (random 0...255) to logits, fastest kernel path, narrowest lanes, for \
      every --batches x --threads (default 1 and 2 threads; binary and ternary layers on the lookup kernel): one \
      warm-up run, then at least --model-seconds and \
      3 runs, wall clock; images/s = batch / the median run. Every zoo model runs (resnet20's residual adds and sum pooling included); a model \
      the exporter rejects would print "not supported" with the reason. With other jobs on the machine the \
      2-thread numbers mean little; the load average is printed.

      On CPUs with AVX-512 VNNI (the cpu line says so) the avx2 path's 32-bit-lane kernel (so the 32-bit-lane \
      rows, and the exact int8 first and last layers) and the first layer's direct convolution use vpdpbusd: \
      the 32-bit baseline is the best this CPU has. WRAPNET_NO_AVX512=1 in the environment keeps everything to \
      AVX2, to compare (same integers). The --peak-gops defaults are a Zen 3 core without VNNI.

      3. Model bytes. The packed engine model's byte count (weight codes at 1/2/k bits, tables, thresholds, \
      header) against the Float32 size of the same parameters; computed from the layer shapes for models the \
      engine cannot convert (and marked so).

      --json prints one JSON object: "models" (model, batch, threads, images_per_second per measurement), \
      "kernels" and "kernel_totals" (each with "path", "lanes" and "kernel": "bytes" or "lookup"), "model_bytes", \
      "peak_gops", "clock", "cpu", ... Progress goes to stderr.

      Examples:
        wrapnet bench --model cnn                        # all three parts, cnn
        wrapnet bench --model resnet20 --weight-bits 2   # ternary kernels
        wrapnet bench --model mlp --threads 1 --batches 64 --json
        wrapnet bench --seconds 1 --clock wall           # all models, idle machine
      """)

  @Option(help: "Model: mlp, cnn, vgg-small, resnet20 or all.")
  var model: String = "all"

  @Option(help: "Whole-model threads: one value (default: 1 and 2). Kernels always run on one thread.")
  var threads: Int?

  @Option(help: "Whole-model batch sizes, comma-separated.")
  var batches: String = "1,64"

  @Option(help: "Images per kernel GEMM (n = output positions x batch).")
  var batch: Int = 1

  @Option(help: "Low-bit weights: 1 binary (as the zoo), 2 ternary, 3...8 symmetric k-bit.")
  var weightBits: Int = 1

  @Option(help: "Activation code bits a (codes 0 ... 2^a-1).")
  var actBits: Int = 2

  @Option(help: "Wrap-around accumulator bits b of the low-bit layers, 2...16 (8-bit lanes need b <= 8).")
  var accBits: Int = 8

  @Option(help: "Minimum timed seconds per kernel case.")
  var seconds: Double = 0.3

  @Option(help: "Minimum timed seconds per whole-model case.")
  var modelSeconds: Double = 1

  @Option(help: "Kernel clock: thread-cpu (CPU time of the thread) or wall.")
  var clock: BenchClock = .threadCPU

  @Flag(help: "Time the reference path on every shape (slow), not only on shapes up to 4 M MACs.")
  var reference = false

  @Option(help: "Peak GOPS of one core with 8/16-bit lanes (for the share of peak).")
  var peakGops: Double = 401

  @Option(name: .customLong("peak-gops-32"), help: "Peak GOPS of one core with 32-bit lanes.")
  var peakGops32: Double = 200

  @Flag(help: "Print one JSON object instead of tables.")
  var json = false

  /// Largest shape (MACs) whose reference path is timed without --reference.
  static let referenceMACLimit = 1 << 22

  func validate() throws {
    _ = try modelNames()
    _ = try batchValues()
    if let t = threads, !(1...256).contains(t) { throw ValidationError("--threads must be in 1...256, got \(t)") }
    guard (1...4096).contains(batch) else { throw ValidationError("--batch must be in 1...4096, got \(batch)") }
    guard (1...8).contains(weightBits) else {
      throw ValidationError("--weight-bits must be 1 (binary), 2 (ternary) or 3...8, got \(weightBits)")
    }
    guard (1...8).contains(actBits) else { throw ValidationError("--act-bits must be in 1...8, got \(actBits)") }
    guard (2...16).contains(accBits) else {
      throw ValidationError("--acc-bits must be in 2...16 (wrap-around accumulators of the low-bit layers), got \(accBits)")
    }
    guard seconds > 0, seconds <= 600 else { throw ValidationError("--seconds must be in (0, 600], got \(seconds)") }
    guard modelSeconds > 0, modelSeconds <= 600 else {
      throw ValidationError("--model-seconds must be in (0, 600], got \(modelSeconds)")
    }
    guard peakGops > 0, peakGops.isFinite else { throw ValidationError("--peak-gops must be > 0, got \(peakGops)") }
    guard peakGops32 > 0, peakGops32.isFinite else {
      throw ValidationError("--peak-gops-32 must be > 0, got \(peakGops32)")
    }
  }

  /// The models named by --model.
  func modelNames() throws -> [String] {
    if model == "all" { return ModelConfig.architectures }
    guard ModelConfig.architectures.contains(model) else {
      throw ValidationError(
        "unknown --model '\(model)'; choose \(ModelConfig.architectures.joined(separator: ", ")) or all")
    }
    return [model]
  }

  /// The batch sizes of --batches.
  func batchValues() throws -> [Int] {
    var out: [Int] = []
    for part in batches.split(separator: ",", omittingEmptySubsequences: false) {
      let s = part.trimmingCharacters(in: .whitespaces)
      guard let v = Int(s), (1...65536).contains(v) else {
        throw ValidationError(
          "--batches: cannot read '\(s)' in '\(batches)'; give image counts 1...65536 separated by commas, e.g. 1,64")
      }
      guard !out.contains(v) else { throw ValidationError("--batches: \(v) appears twice in '\(batches)'") }
      out.append(v)
    }
    return out
  }

  /// The zoo configuration benchmarked for `name`: 28×28 grey (mlp, cnn) or 32×32 colour inputs, 10 classes,
  /// low-bit layers in cyclic mode with the flags' weight, activation and accumulator bits.
  func config(for name: String) -> ModelConfig {
    let colour = name == "vgg-small" || name == "resnet20"
    return ModelConfig(
      architecture: name, inputChannels: colour ? 3 : 1, inputHeight: colour ? 32 : 28, inputWidth: colour ? 32 : 28,
      classes: 10, weightBits: weightBits, activationBits: actBits, accumulatorBits: accBits, accumulatorMode: .cyclic)
  }

  var weightKind: PackedWeights.CodeKind {
    switch weightBits {
    case 1: return .binary
    case 2: return .ternary
    default: return .symmetric(bits: weightBits)
    }
  }

  mutating func run() throws {
    let names = try modelNames()
    let batchList = try batchValues()
    let threadList = threads.map { [$0] } ?? [1, 2]
    let cpu = BenchCPU.current
    let paths = KernelPath.allCases.filter { $0 != .reference && $0.isAvailable }
    let laneList = [8, 16, 32].filter { $0 >= accBits }
    // 0. What this core can do at all with each primitive (register-only loops).
    var ceilings: [(KernelBenchmark.CeilingPrimitive, Double)] = []
    for p in KernelBenchmark.CeilingPrimitive.allCases {
      stderrLine("bench: register-only ceiling of \(p.rawValue)")
      if let g = KernelBenchmark.measureCeilingGOPS(p, seconds: seconds) { ceilings.append((p, g)) }
    }
    var results: [ModelBench] = []
    for name in names {
      var trainer = try WrapModel(config: config(for: name), seed: 1)
      var r = ModelBench(name: name)
      // 1. Kernels on the model's low-bit GEMM shapes; identical shapes are measured once.
      let shapes = trainer.lowBitGEMMShapes(batch: batch)
      var measured: [String: Double] = [:]
      for (index, shape) in shapes.enumerated() {
        stderrLine(
          "bench \(name): kernels \(index + 1)/\(shapes.count) \(shape.layer) (m \(shape.m), n \(shape.n), k \(shape.k))"
        )
        var cases: [(KernelPath, Int)] = paths.flatMap { p in laneList.map { (p, $0) } }
        if reference || shape.macs <= Self.referenceMACLimit { cases.insert((.reference, 32), at: 0) }
        for (path, lanes) in cases {
          let key = "\(shape.m),\(shape.n),\(shape.k),\(path),\(lanes)"
          let gops =
            measured[key]
            ?? KernelBenchmark.measureGOPS(
              m: shape.m, n: shape.n, k: shape.k, weights: weightKind, activationBits: actBits, bits: accBits,
              lanes: lanes, path: path, seconds: seconds, clock: clock.kernelClock)
          measured[key] = gops
          r.kernels.append(KernelResult(shape: shape, path: path, lanes: path == .reference ? nil : lanes, gops: gops))
        }
        // The lookup kernel: what the engine's avx2 path runs with 8-bit lanes for binary and ternary weights.
        if (weightKind == .binary || weightKind == .ternary) && accBits <= 8 {
          let key = "\(shape.m),\(shape.n),\(shape.k),lookup"
          if let gops = measured[key]
            ?? KernelBenchmark.measureLookupGOPS(
              m: shape.m, n: shape.n, k: shape.k, weights: weightKind, activationBits: actBits, bits: accBits,
              seconds: seconds, clock: clock.kernelClock)
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
        for b in batchList {
          for t in threadList {
            stderrLine("bench \(name): whole model, batch \(b), \(t) thread(s)")
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
    if json {
      try printJSON(results, cpu: cpu, ceilings: ceilings)
    } else {
      printText(results, cpu: cpu, threadList: threadList, ceilings: ceilings)
    }
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

  /// Peak GOPS for a lane width.
  func peak(lanes: Int) -> Double { lanes == 32 ? peakGops32 : peakGops }
}

// MARK: - Results

/// One timed kernel case.
struct KernelResult {
  var shape: LayerGEMMShape
  var path: KernelPath
  /// nil for the reference path (exact Int64 sum wrapped once: lanes do not apply).
  var lanes: Int?
  var gops: Double
  /// The byte kernels of `wrapGEMM(weights:...)`, or one of the binary/ternary kernels (avx2, 8-bit lanes).
  var kernel = EngineKernel.bytes

  /// Row label: the path, "avx2 lut" for the lookup kernel.
  var label: String { kernel.label ?? path.rawValue }
}

/// Which GEMM a kernel row times.
enum EngineKernel: String {
  /// `wrapGEMM(weights:...)` on byte codes (every path and lane width).
  case bytes
  /// The lookup kernel: 16-entry tables of 4 codes, weights as table indices (the engine's avx2 kernel).
  case lookup

  /// The row label of an avx2 binary/ternary kernel, nil for the byte kernels (labelled by path).
  var label: String? {
    switch self {
    case .bytes: return nil
    case .lookup: return "avx2 lut"
    }
  }
}

/// One whole-model measurement.
struct WholeModelResult {
  var batch: Int
  var threads: Int
  var imagesPerSecond: Double
  var seconds: Double
  var runs: Int
  /// Seconds of the median run (images/s = batch / this).
  var medianSeconds: Double
}

/// Packed and Float32 bytes of one model.
struct ModelBytes {
  /// Packed file bytes (or the computed tensor bytes when `computed`).
  var packed: Int
  var computed: Bool
  /// Bytes of the packed file's tensors (the rest is header and JSON metadata).
  var tensors: Int
  var estimate: PackedSizeEstimate
  var float32: Int
}

/// Everything measured for one model.
struct ModelBench {
  var name: String
  var kernels: [KernelResult] = []
  var wholeModel: [WholeModelResult] = []
  /// Why the engine cannot run the model (nil when it can).
  var unsupportedReason: String? = nil
  /// Packed and Float32 bytes (set once measured).
  var bytes: ModelBytes? = nil

  /// Layer shapes in order, each once.
  var shapes: [LayerGEMMShape] {
    var seen = Set<String>()
    return kernels.compactMap { seen.insert($0.shape.layer).inserted ? $0.shape : nil }
  }

  /// GOPS of `layer` on `path` with `lanes` (nil lanes: reference) and `kernel`.
  func gops(_ layer: String, _ path: KernelPath, _ lanes: Int?, kernel: EngineKernel = .bytes) -> Double? {
    kernels.first { $0.shape.layer == layer && $0.path == path && $0.lanes == lanes && $0.kernel == kernel }?.gops
  }

  /// MAC-weighted GOPS over all low-bit layers: Σ MACs / Σ (MACs / GOPS); nil unless every layer has the case.
  func totalGOPS(_ path: KernelPath, _ lanes: Int?, kernel: EngineKernel = .bytes) -> Double? {
    var macs = 0.0, time = 0.0
    for s in shapes {
      guard let g = gops(s.layer, path, lanes, kernel: kernel) else { return nil }
      macs += Double(s.macs)
      time += Double(s.macs) / g
    }
    return time > 0 ? macs / time : nil
  }
}

/// What the CPU offers, for the report.
struct BenchCPU {
  var avx2: Bool
  /// Whether the engine's avx2 path also uses AVX-512 VNNI (the first layer's direct convolution).
  var vnni: Bool
  var cores: Int
  var model: String
  /// "family F model M" from /proc/cpuinfo (tells CPU generations apart where the model name does not), or "".
  var familyModel: String
  /// 1-, 5- and 15-minute load averages (empty where /proc/loadavg does not exist).
  var loadAverage: [Double]

  static var current: BenchCPU {
    let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let name =
      cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
      .flatMap { $0.split(separator: ":", maxSplits: 1).last }
      .map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
    func field(_ key: String) -> String? {
      cpuinfo.split(separator: "\n").first { $0.split(separator: ":").first?.trimmingCharacters(in: .whitespaces) == key }
        .flatMap { $0.split(separator: ":", maxSplits: 1).last }
        .map { $0.trimmingCharacters(in: .whitespaces) }
    }
    let familyModel = field("cpu family").flatMap { f in field("model").map { "family \(f) model \($0)" } } ?? ""
    let load = ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "")
      .split(separator: " ").prefix(3).compactMap { Double($0) }
    return BenchCPU(
      avx2: KernelPath.isAVX2Available, vnni: KernelPath.isVNNIAvailable,
      cores: ProcessInfo.processInfo.activeProcessorCount, model: name, familyModel: familyModel, loadAverage: load)
  }

  var loadText: String {
    loadAverage.isEmpty ? "unavailable" : loadAverage.map { String(format: "%.2f", $0) }.joined(separator: " ")
  }
}

// MARK: - Output

extension BenchCommand {
  static let unsupportedLine = "whole-model: not supported by the engine"

  func printJSON(
    _ results: [ModelBench], cpu: BenchCPU, ceilings: [(KernelBenchmark.CeilingPrimitive, Double)]
  ) throws {
    var models: [[String: Any]] = []
    var unsupported: [[String: Any]] = []
    var kernels: [[String: Any]] = []
    var totals: [[String: Any]] = []
    var bytes: [[String: Any]] = []
    for r in results {
      for w in r.wholeModel {
        models.append([
          "model": r.name, "batch": w.batch, "threads": w.threads, "images_per_second": w.imagesPerSecond,
          "seconds": w.seconds, "runs": w.runs, "median_run_seconds": w.medianSeconds, "kernel": KernelPath.fastest.rawValue, "supported": true,
        ])
      }
      if let reason = r.unsupportedReason {
        unsupported.append(["model": r.name, "supported": false, "reason": reason])
      }
      for k in r.kernels {
        var e: [String: Any] = [
          "model": r.name, "layer": k.shape.layer, "m": k.shape.m, "n": k.shape.n, "k": k.shape.k,
          "macs": k.shape.macs, "path": k.path.rawValue, "gops": k.gops, "kernel": k.kernel.rawValue,
        ]
        e["lanes"] = k.lanes.map { $0 as Any } ?? NSNull()
        e["share_of_peak"] = k.lanes.map { k.gops / peak(lanes: $0) as Any } ?? NSNull()
        if k.lanes == 8, let g32 = r.gops(k.shape.layer, k.path, 32) { e["ratio_8_vs_32"] = k.gops / g32 }
        kernels.append(e)
      }
      for path in KernelPath.allCases {
        for lanes in [nil, 8, 16, 32] as [Int?] where (path == .reference) == (lanes == nil) {
          guard let g = r.totalGOPS(path, lanes) else { continue }
          var e: [String: Any] = [
            "model": r.name, "path": path.rawValue, "gops": g, "macs": r.shapes.reduce(0) { $0 + $1.macs },
          ]
          e["lanes"] = lanes.map { $0 as Any } ?? NSNull()
          e["share_of_peak"] = lanes.map { g / peak(lanes: $0) as Any } ?? NSNull()
          if lanes == 8, let g32 = r.totalGOPS(path, 32) { e["ratio_8_vs_32"] = g / g32 }
          e["kernel"] = "bytes"
          totals.append(e)
        }
      }
      if let g = r.totalGOPS(.avx2, 8, kernel: .lookup) {
        var e: [String: Any] = [
          "model": r.name, "path": KernelPath.avx2.rawValue, "kernel": EngineKernel.lookup.rawValue, "lanes": 8, "gops": g,
          "macs": r.shapes.reduce(0) { $0 + $1.macs }, "share_of_peak": g / peak(lanes: 8),
        ]
        if let g32 = r.totalGOPS(.avx2, 32) { e["ratio_8_vs_32"] = g / g32 }
        totals.append(e)
      }
      guard let b = r.bytes else { continue }
      bytes.append([
        "model": r.name, "packed_bytes": b.packed, "computed": b.computed, "tensor_bytes": b.tensors,
        "weight_code_bytes": b.estimate.weightCodeBytes, "table_bytes": b.estimate.tableBytes,
        "threshold_bytes": b.estimate.thresholdBytes, "logits_bytes": b.estimate.logitsBytes,
        "float32_bytes": b.float32, "float32_over_packed": Double(b.float32) / Double(max(b.packed, 1)),
      ])
    }
    let object: [String: Any] = [
      "models": models, "whole_model_unsupported": unsupported, "kernels": kernels, "kernel_totals": totals,
      "model_bytes": bytes,
      "ceilings": ceilings.map { ["primitive": $0.0.rawValue, "lanes": $0.0.lanes, "gops": $0.1] as [String: Any] },
      "peak_gops": peakGops, "peak_gops_32": peakGops32, "clock": clock.rawValue,
      "whole_model_clock": "wall", "seconds": seconds, "model_seconds": modelSeconds, "batch": batch,
      "weight_bits": weightBits, "activation_bits": actBits, "accumulator_bits": accBits,
      "accumulator_mode": "cyclic", "kernel_threads": 1,
      "cpu": [
        "avx2": cpu.avx2, "avx512_vnni": cpu.vnni, "cores": cpu.cores, "model": cpu.model,
        "family_model": cpu.familyModel, "load_average": cpu.loadAverage,
      ] as [String: Any],
    ]
    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    print(String(decoding: data, as: UTF8.self))
  }

  func printText(
    _ results: [ModelBench], cpu: BenchCPU, threadList: [Int], ceilings: [(KernelBenchmark.CeilingPrimitive, Double)]
  ) {
    let weights = WeightFormat(bits: weightBits).name
    print(
      "wrapnet bench: random-weight zoo models; \(weights) weights x \(actBits)-bit activation codes, \(accBits)-bit wrap-around accumulators (cyclic)"
    )
    print(
      "cpu: \(cpu.model)\(cpu.familyModel.isEmpty ? "" : " (\(cpu.familyModel))"), avx2 \(cpu.avx2 ? "yes" : "no"), "
        + "avx512-vnni \(cpu.vnni ? "yes (32-bit lanes, int8 layers, first-layer convolution)" : "no"), \(cpu.cores) cores; "
        + "load average \(cpu.loadText) (1, 5, 15 min)"
    )
    print(
      "kernels: wrapGEMM on each low-bit layer's shape (m = output channels, n = output positions x batch \(batch), k = fan-in), 1 thread,"
    )
    print(
      "  \(clock.rawValue) clock, at least \(seconds) s and 3 runs per case, GOPS of the median run, each case checked against the reference first; identical shapes measured once."
    )
    print(
      "  GOPS = 2·m·n·k / s (1 MAC = 2 ops); % = share of peak (\(Self.number(peakGops)) GOPS with 8/16-bit lanes, \(Self.number(peakGops32)) with 32-bit);"
    )
    print(
      "  8/32 = GOPS with 8-bit lanes over 32-bit lanes; total = MAC-weighted over the low-bit layers (all MACs / all time)."
    )
    if weightBits <= 2 && accBits <= 8 && KernelPath.isAVX2Available {
      print(
        "  avx2 lut = the lookup kernel the engine runs on these layers: 16-entry tables of every 4 codes' signed sums "
          + "(built per input pixel, not timed here), weights as table indices, 8-bit lanes.")
    }
    if !ceilings.isEmpty {
      print(
        "ceiling: register-only loops of the kernels' inner steps (no loads, 1 thread): "
          + ceilings.map { "\($0.0.rawValue) \(String(format: "%.1f", $0.1))" }.joined(separator: ", ")
          + " GOPS;")
      print("  no kernel built from that step can beat its ceiling on this core (loads, reductions and stores only add).")
    }
    print(
      "whole model: engine from uint8 pixels to logits, \(KernelPath.fastest.rawValue) path, narrowest lanes (lookup kernel on binary/ternary layers), wall clock, warm-up then at least \(modelSeconds) s and 3 runs, images/s of the median run."
    )
    if threadList.contains(where: { $0 > 1 }) {
      print(
        "  note: 2-thread numbers are not meaningful while other jobs run on this machine (load average \(cpu.loadText) on \(cpu.cores) cores)."
      )
    }
    for r in results {
      print("")
      let shapes = r.shapes
      let macs = shapes.reduce(0) { $0 + $1.macs }
      print("== \(r.name): \(shapes.count) low-bit layers, \(Self.megaMACs(macs)) MACs at batch \(batch) ==")
      printKernelTable(r)
      print("")
      if let reason = r.unsupportedReason {
        print(Self.unsupportedLine)
        print("  (exporter: \(reason))")
      } else {
        print("whole model:")
        print("  batch  threads    images/s   ms/batch   runs")
        for w in r.wholeModel {
          print(
            "  " + Self.pad(String(w.batch), 5) + "  " + Self.pad(String(w.threads), 7) + "  "
              + Self.pad(String(format: "%.1f", w.imagesPerSecond), 10) + "  "
              + Self.pad(String(format: "%.3f", 1000 * w.medianSeconds), 9) + "  "
              + Self.pad(String(w.runs), 5))
        }
      }
      guard let b = r.bytes else { continue }
      let e = b.estimate
      let parts =
        "weight codes \(Self.grouped(e.weightCodeBytes)), tables \(Self.grouped(e.tableBytes)), thresholds \(Self.grouped(e.thresholdBytes)), logits scale/bias \(Self.grouped(e.logitsBytes))"
      let source =
        b.computed
        ? "computed from the layer shapes, no file header: \(parts)"
        : "packed file: \(parts), header \(Self.grouped(b.packed - b.tensors))"
      print(
        "model bytes: packed \(Self.grouped(b.packed)) B vs Float32 \(Self.grouped(b.float32)) B (weights, biases, batch norm): \(String(format: "%.1f", Double(b.float32) / Double(max(b.packed, 1))))x smaller"
      )
      print("  (\(source))")
    }
  }

  /// The per-layer kernel table of one model: one row per layer and path, GOPS and % of peak per lane width.
  func printKernelTable(_ r: ModelBench) {
    let shapes = r.shapes
    let nameWidth = max(8, (shapes.map(\.layer.count) + ["total (MAC-weighted)".count]).max()!)
    let laneList = [8, 16, 32]
    var header =
      Self.left("layer", nameWidth) + "  " + Self.left("path", 9) + Self.pad("m", 6) + Self.pad("n", 8)
      + Self.pad("k", 7) + Self.pad("MACs", 10)
    for l in laneList { header += Self.pad("\(l)-bit lanes", 17) }
    header += Self.pad("8/32", 7)
    print(header)
    // `over32`: the 32-bit-lane GOPS for the 8/32 column when the row has none of its own (the lookup rows,
    // whose 8/32 is over the avx2 32-bit-lane kernel).
    func row(
      _ name: String, _ shape: LayerGEMMShape?, _ path: KernelPath, kernel: EngineKernel = .bytes,
      over32: Double? = nil, _ gops: (Int?) -> Double?
    ) -> String? {
      var line = Self.left(name, nameWidth) + "  " + Self.left(kernel.label ?? path.rawValue, 9)
      if let s = shape {
        line +=
          Self.pad(String(s.m), 6) + Self.pad(String(s.n), 8) + Self.pad(String(s.k), 7)
          + Self.pad(Self.megaMACs(s.macs), 10)
      } else {
        line +=
          String(repeating: " ", count: 21)
          + Self.pad(Self.megaMACs(r.shapes.reduce(0) { $0 + $1.macs }), 10)
      }
      if path == .reference {
        guard let g = gops(nil) else { return nil }
        return line + Self.pad(String(format: "%8.2f", g), 10)
          + "        (exact Int64 sum wrapped once; lanes do not apply)"
      }
      for l in laneList {
        if let g = gops(l) {
          line += Self.pad(String(format: "%8.2f %5.1f%%", g, 100 * g / peak(lanes: l)), 17)
        } else {
          line += Self.pad("-", 17)
        }
      }
      if let g8 = gops(8), let g32 = gops(32) ?? over32 { line += Self.pad(String(format: "%.2f", g8 / g32), 7) }
      return line
    }
    for s in shapes {
      for path in KernelPath.allCases {
        if let line = row(s.layer, s, path, { r.gops(s.layer, path, $0) }) { print(line) }
      }
      if let g = r.gops(s.layer, .avx2, 8, kernel: .lookup),
        let line = row(s.layer, s, .avx2, kernel: .lookup, over32: r.gops(s.layer, .avx2, 32), { $0 == 8 ? g : nil })
      {
        print(line)
      }
    }
    for path in KernelPath.allCases {
      if let line = row("total (MAC-weighted)", nil, path, { r.totalGOPS(path, $0) }),
        path == .reference || r.totalGOPS(path, 32) != nil || r.totalGOPS(path, 16) != nil
      {
        print(line)
      }
    }
    if let g = r.totalGOPS(.avx2, 8, kernel: .lookup),
      let line = row(
        "total (MAC-weighted)", nil, .avx2, kernel: .lookup, over32: r.totalGOPS(.avx2, 32), { $0 == 8 ? g : nil })
    {
      print(line)
    }
  }

  static func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? " " + s : String(repeating: " ", count: width - s.count) + s
  }

  static func left(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
  }

  static func megaMACs(_ n: Int) -> String {
    n >= 1_000_000 ? String(format: "%.2f M", Double(n) / 1e6) : String(format: "%.1f K", Double(n) / 1e3)
  }

  static func number(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : String(x) }

  /// 1234567 → "1,234,567".
  static func grouped(_ n: Int) -> String {
    let digits = String(abs(n))
    var out = ""
    for (i, ch) in digits.enumerated() {
      if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
      out.append(ch)
    }
    return n < 0 ? "-" + out : out
  }
}
