import ArgumentParser
import Foundation
import WrapNet
import WrapNetBench
import WrapNetEngine

extension BenchClock: ExpressibleByArgument {}

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

  @OptionGroup var codes: CodeBitsOptions

  @Option(
    help: "Wrap-around accumulator bits b of the low-bit layers, 2...16 (8-bit lanes need b <= 8).",
    transform: AccumulatorWidth.argument("--acc-bits"))
  var accBits = AccumulatorWidth(bits: 8)

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

  func validate() throws {
    _ = try modelNames()
    _ = try batchValues()
    if let t = threads, !(1...256).contains(t) { throw ValidationError("--threads must be in 1...256, got \(t)") }
    guard (1...4096).contains(batch) else { throw ValidationError("--batch must be in 1...4096, got \(batch)") }
    guard accBits.bits <= ZooBenchmark.widestBenchedWidth else {
      throw ValidationError(
        "--acc-bits must be at most \(ZooBenchmark.widestBenchedWidth) here (the benchmark times 8- and 16-bit wrap-around lanes), got \(accBits.bits)")
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

  mutating func run() throws {
    let benchmark = ZooBenchmark(
      models: try modelNames(), batches: try batchValues(), threads: threads.map { [$0] } ?? [1, 2], batch: batch,
      weightBits: codes.weightBits, activationBits: codes.actBits, accumulatorWidth: accBits, seconds: seconds,
      modelSeconds: modelSeconds, clock: clock, referenceOnEveryShape: reference, peakGOPS: peakGops,
      peakGOPS32: peakGops32)
    let report = try benchmark.run(progress: stderrLine)
    print(json ? try report.json() : report.text())
  }
}
