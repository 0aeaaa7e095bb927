import Foundation
import WrapNet
import WrapNetEngine

/// Everything one `ZooBenchmark.run` measured: print it with `text()` or `json()`.
public struct BenchReport {
  /// The settings it ran with.
  public var benchmark: ZooBenchmark
  /// One entry per model, in the order of `benchmark.models`.
  public var models: [ModelBench]
  /// The CPU it ran on.
  public var cpu: BenchCPU
  /// GOPS of each register-only ceiling loop (empty without AVX2).
  public var ceilings: [(KernelBenchmark.CeilingPrimitive, Double)]
}

/// One timed kernel case.
public struct KernelResult: Sendable {
  public var shape: LayerGEMMShape
  public var path: KernelPath
  /// nil for the reference path (exact Int64 sum wrapped once: lanes do not apply).
  public var lanes: Int?
  public var gops: Double
  /// The byte kernels of `wrapGEMM(weights:...)`, or one of the binary/ternary kernels (avx2, 8-bit lanes).
  public var kernel = EngineKernel.bytes

  /// Row label: the path, "avx2 lut" for the lookup kernel.
  public var label: String { kernel.label ?? path.rawValue }
}

/// Which GEMM a kernel row times.
public enum EngineKernel: String, Sendable {
  /// `wrapGEMM(weights:...)` on byte codes (every path and lane width).
  case bytes
  /// The lookup kernel: 16-entry tables of 4 codes, weights as table indices (the engine's avx2 kernel).
  case lookup

  /// The row label of an avx2 binary/ternary kernel, nil for the byte kernels (labelled by path).
  public var label: String? {
    switch self {
    case .bytes: return nil
    case .lookup: return "avx2 lut"
    }
  }
}

/// One whole-model measurement.
public struct WholeModelResult: Sendable {
  public var batch: Int
  public var threads: Int
  public var imagesPerSecond: Double
  public var seconds: Double
  public var runs: Int
  /// Seconds of the median run (images/s = batch / this).
  public var medianSeconds: Double
}

/// Packed and Float32 bytes of one model.
public struct ModelBytes: Sendable {
  /// Packed file bytes (or the computed tensor bytes when `computed`).
  public var packed: Int
  public var computed: Bool
  /// Bytes of the packed file's tensors (the rest is header and JSON metadata).
  public var tensors: Int
  public var estimate: PackedSizeEstimate
  public var float32: Int
}

/// Everything measured for one model.
public struct ModelBench: Sendable {
  public var name: String
  public var kernels: [KernelResult] = []
  public var wholeModel: [WholeModelResult] = []
  /// Why the engine cannot run the model (nil when it can).
  public var unsupportedReason: String? = nil
  /// Packed and Float32 bytes (set once measured).
  public var bytes: ModelBytes? = nil

  /// Layer shapes in order, each once.
  public var shapes: [LayerGEMMShape] {
    var seen = Set<String>()
    return kernels.compactMap { seen.insert($0.shape.layer).inserted ? $0.shape : nil }
  }

  /// GOPS of `layer` on `path` with `lanes` (nil lanes: reference) and `kernel`.
  public func gops(_ layer: String, _ path: KernelPath, _ lanes: Int?, kernel: EngineKernel = .bytes) -> Double? {
    kernels.first { $0.shape.layer == layer && $0.path == path && $0.lanes == lanes && $0.kernel == kernel }?.gops
  }

  /// MAC-weighted GOPS over all low-bit layers: Σ MACs / Σ (MACs / GOPS); nil unless every layer has the case.
  public func totalGOPS(_ path: KernelPath, _ lanes: Int?, kernel: EngineKernel = .bytes) -> Double? {
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
public struct BenchCPU: Sendable {
  public var avx2: Bool
  /// Whether the engine's avx2 path also uses AVX-512 VNNI (the first layer's direct convolution).
  public var vnni: Bool
  public var cores: Int
  public var model: String
  /// "family F model M" from /proc/cpuinfo (tells CPU generations apart where the model name does not), or "".
  public var familyModel: String
  /// 1-, 5- and 15-minute load averages (empty where /proc/loadavg does not exist).
  public var loadAverage: [Double]

  /// This machine, read from /proc/cpuinfo and /proc/loadavg ("unknown" model and no load where they are absent).
  public static var current: BenchCPU {
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

  /// The load averages with two decimals, or "unavailable".
  public var loadText: String {
    loadAverage.isEmpty ? "unavailable" : loadAverage.map { String(format: "%.2f", $0) }.joined(separator: " ")
  }
}
