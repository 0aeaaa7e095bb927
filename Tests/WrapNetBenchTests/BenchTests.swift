import Foundation
import Testing
import WrapNetBench
import WrapNetEngine

/// A JSON number as a Double (JSONSerialization may return integral values as Int).
private func number(_ value: Any?) -> Double? {
  switch value {
  case let n as NSNumber: return n.doubleValue
  case let d as Double: return d
  case let i as Int: return Double(i)
  default: return nil
  }
}

/// The settings of `wrapnet bench --model <models> --seconds <seconds> --model-seconds 0.01 --batches <batches>
/// --threads 1` (tiny times: these tests check what is reported, never how fast).
private func benchmark(_ models: [String], seconds: Double, batches: [Int], weightBits: Int = 1) -> ZooBenchmark {
  ZooBenchmark(
    models: models, batches: batches, threads: [1], batch: 1, weightBits: weightBits, activationBits: 2,
    accumulatorWidth: AccumulatorWidth(bits: 8), seconds: seconds, modelSeconds: 0.01, clock: .threadCPU, referenceOnEveryShape: false,
    peakGOPS: 401, peakGOPS32: 200)
}

/// The zoo benchmark's reports: the JSON contract and the tables.
@Suite(.serialized) struct BenchTests {
  /// The statistic behind every reported rate: odd counts give the middle value, even counts the mean of the two.
  @Test func medianOfRuns() {
    #expect(KernelBenchmark.median([3]) == 3)
    #expect(KernelBenchmark.median([5, 1, 4]) == 4)
    #expect(KernelBenchmark.median([9, 1, 4, 2]) == 3)
  }

  /// The `models` contract of `benchmarks/peers/peers.py` (model, batch, threads, images_per_second), kernel
  /// entries with positive GOPS on every available path, and the packed bytes of the real file.
  @Test func mlpJSONHasTheDocumentedKeys() throws {
    let out = try benchmark(["mlp"], seconds: 0.01, batches: [1]).run(progress: { _ in }).json()
    let doc = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any], "\(out)")
    let models = try #require(doc["models"] as? [[String: Any]])
    #expect(models.count == 1)
    let m = try #require(models.first)
    #expect(m["model"] as? String == "mlp")
    #expect(m["batch"] as? Int == 1)
    #expect(m["threads"] as? Int == 1)
    #expect((number(m["images_per_second"]) ?? 0) > 0)
    // images/s come from the median run.
    let median = try #require(number(m["median_run_seconds"]))
    #expect(abs((number(m["images_per_second"]) ?? 0) - 1 / median) < 1e-6 / median)

    let kernels = try #require(doc["kernels"] as? [[String: Any]])
    #expect(!kernels.isEmpty)
    for k in kernels {
      #expect((number(k["gops"]) ?? 0) > 0, "\(k)")
      #expect(k["model"] as? String == "mlp")
    }
    // The three 1024×1024 low-bit layers at batch 1.
    #expect(Set(kernels.compactMap { $0["layer"] as? String }) == ["fc2", "fc3", "fc4"])
    #expect(kernels.allSatisfy { $0["m"] as? Int == 1024 && $0["n"] as? Int == 1 && $0["k"] as? Int == 1024 })
    var expectedPaths: Set<String> = ["reference", "portable"]
    if KernelPath.isAVX2Available { expectedPaths.insert("avx2") }
    #expect(Set(kernels.compactMap { $0["path"] as? String }) == expectedPaths)
    #expect(Set(kernels.compactMap { $0["lanes"] as? Int }) == [8, 16, 32])
    #expect(!((doc["kernel_totals"] as? [Any]) ?? []).isEmpty)

    let bytes = try #require((doc["model_bytes"] as? [[String: Any]])?.first)
    #expect(bytes["computed"] as? Bool == false)
    let packed = try #require(bytes["packed_bytes"] as? Int)
    let float32 = try #require(bytes["float32_bytes"] as? Int)
    #expect(packed > 0 && float32 > 4 * packed, "packed \(packed), float32 \(float32)")

    #expect(number(doc["peak_gops"]) == 401)
    #expect(doc["clock"] as? String == "thread-cpu")
    let cpu = try #require(doc["cpu"] as? [String: Any])
    #expect(cpu["avx2"] as? Bool == KernelPath.isAVX2Available)
  }

  /// resnet20 runs in the engine: kernels, whole-model images/s and the real packed bytes; in JSON it has a
  /// `models` entry per batch and thread count.
  @Test func resnet20ReportsKernelsWholeModelAndBytes() throws {
    let out = try benchmark(["resnet20"], seconds: 0.005, batches: [2]).run(progress: { _ in }).text()
    #expect(out.contains("stage3.block3.conv2"), "\(out)")
    #expect(out.contains("total (MAC-weighted)"), "\(out)")
    // Binary weights x 2-bit codes (the defaults): the lookup kernel the engine runs has its own row per layer
    // (and a total).
    let lookupRows = out.split(separator: "\n").filter { $0.contains("avx2 lut") && !$0.contains("avx2 lut =") }
    #expect(lookupRows.count == (KernelPath.isAVX2Available ? 18 + 1 : 0), "\(out)")
    #expect(out.contains("images/s") && !out.contains("not supported"), "\(out)")
    #expect(out.contains("model bytes:") && out.contains("packed file:"), "\(out)")

    let jsonOut = try benchmark(["resnet20"], seconds: 0.005, batches: [2], weightBits: 2).run(progress: { _ in }).json()
    let doc = try #require(try JSONSerialization.jsonObject(with: Data(jsonOut.utf8)) as? [String: Any])
    let models = try #require(doc["models"] as? [[String: Any]])
    #expect(models.count == 1 && models[0]["model"] as? String == "resnet20" && (number(models[0]["images_per_second"]) ?? 0) > 0)
    #expect((doc["whole_model_unsupported"] as? [Any])?.isEmpty == true)
    // The register-only ceilings: one per primitive where the CPU has AVX2, none elsewhere.
    let ceilings = try #require(doc["ceilings"] as? [[String: Any]])
    #expect(ceilings.count == (KernelPath.isAVX2Available ? 4 : 0))
    #expect(ceilings.allSatisfy { (number($0["gops"]) ?? 0) > 0 && [8, 16, 32].contains($0["lanes"] as? Int ?? 0) })
    let kernels = try #require(doc["kernels"] as? [[String: Any]])
    #expect(Set(kernels.compactMap { $0["layer"] as? String }).count == 18)
    #expect(kernels.allSatisfy { (number($0["gops"]) ?? 0) > 0 })
    // Ternary weights x 2-bit codes: the byte kernels, and the lookup kernel on every layer where AVX2 exists.
    let lookupLayers = Set(kernels.filter { $0["kernel"] as? String == "lookup" }.compactMap { $0["layer"] as? String })
    #expect(lookupLayers.count == (KernelPath.isAVX2Available ? 18 : 0))
    let bytes = try #require((doc["model_bytes"] as? [[String: Any]])?.first)
    #expect(bytes["computed"] as? Bool == false)
    #expect(((bytes["packed_bytes"] as? Int) ?? 0) > 0)
  }
}
