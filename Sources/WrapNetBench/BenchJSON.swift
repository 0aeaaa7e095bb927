import Foundation
import WrapNetEngine

extension BenchReport {
  /// The JSON document of `wrapnet bench --json`, pretty-printed with sorted keys: "models" (model, batch,
  /// threads, images_per_second per whole-model measurement: the contract of `benchmarks/peers`),
  /// "whole_model_unsupported", "kernels" and "kernel_totals" (each with "path", "lanes" and "kernel": "bytes" or
  /// "lookup"), "model_bytes", "ceilings", the settings ("peak_gops", "clock", ...) and "cpu".
  public func json() throws -> String {
    var wholeModels: [[String: Any]] = []
    var unsupported: [[String: Any]] = []
    var kernels: [[String: Any]] = []
    var totals: [[String: Any]] = []
    var bytes: [[String: Any]] = []
    for r in models {
      for w in r.wholeModel {
        wholeModels.append([
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
        e["share_of_peak"] = k.lanes.map { k.gops / benchmark.peak(lanes: $0) as Any } ?? NSNull()
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
          e["share_of_peak"] = lanes.map { g / benchmark.peak(lanes: $0) as Any } ?? NSNull()
          if lanes == 8, let g32 = r.totalGOPS(path, 32) { e["ratio_8_vs_32"] = g / g32 }
          e["kernel"] = "bytes"
          totals.append(e)
        }
      }
      if let g = r.totalGOPS(.avx2, 8, kernel: .lookup) {
        var e: [String: Any] = [
          "model": r.name, "path": KernelPath.avx2.rawValue, "kernel": EngineKernel.lookup.rawValue, "lanes": 8, "gops": g,
          "macs": r.shapes.reduce(0) { $0 + $1.macs }, "share_of_peak": g / benchmark.peak(lanes: 8),
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
      "models": wholeModels, "whole_model_unsupported": unsupported, "kernels": kernels, "kernel_totals": totals,
      "model_bytes": bytes,
      "ceilings": ceilings.map { ["primitive": $0.0.rawValue, "lanes": $0.0.lanes, "gops": $0.1] as [String: Any] },
      "peak_gops": benchmark.peakGOPS, "peak_gops_32": benchmark.peakGOPS32, "clock": benchmark.clock.rawValue,
      "whole_model_clock": "wall", "seconds": benchmark.seconds, "model_seconds": benchmark.modelSeconds,
      "batch": benchmark.batch,
      "weight_bits": benchmark.weightBits, "activation_bits": benchmark.activationBits,
      "accumulator_bits": benchmark.accumulatorWidth.bits,
      "accumulator_mode": "cyclic", "kernel_threads": 1,
      "cpu": [
        "avx2": cpu.avx2, "avx512_vnni": cpu.vnni, "cores": cpu.cores, "model": cpu.model,
        "family_model": cpu.familyModel, "load_average": cpu.loadAverage,
      ] as [String: Any],
    ]
    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    return String(decoding: data, as: UTF8.self)
  }
}
