import ArgumentParser
import Foundation
import WrapNet
import WrapNetEngine

/// The `wrapnet` command-line tool: datasets, training, evaluation and benchmarks for WrapNet models.
@main
struct WrapNetCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "wrapnet",
    abstract: "Neural networks with ultra-low-resolution (b-bit, wrap-around) accumulators.",
    discussion: """
      WrapNet trains quantized networks to tolerate 8-bit accumulators that wrap around on overflow, and runs \
      them with real b-bit integer arithmetic.

      Start with:
        wrapnet data fetch mnist       # download and verify MNIST into ~/.cache/wrapnet (or $WRAPNET_DATA)
        wrapnet data info --dataset mnist
        wrapnet train --model mlp --acc-mode exact --epochs 10 --out runs/mlp-exact      # 32-bit baseline
        wrapnet train --model mlp --acc-bits 8 --acc-mode cyclic --penalty 0.001 \\
            --init runs/mlp-exact/model.safetensors --epochs 1 --lr 1e-3 --out runs/mlp-cyclic8
        wrapnet eval runs/mlp-exact/model.safetensors --acc-mode wrap --acc-bits 8      # no adaptation
        wrapnet sweep --model cnn --bits 6,7,8,10,12 --epochs 1 --out sweeps/mnist-cnn   # accuracy vs bits, plots
        wrapnet bench --model cnn                 # kernel GOPS per path and lane width, images/s, model bytes
      """,
    version: WrapNetEngineInfo.version,
    subcommands: [
      DataCommand.self, TrainCommand.self, EvalCommand.self, SweepCommand.self, ConvertCommand.self, BenchCommand.self,
      RTLCommand.self,
    ]
  )

  /// Runs the command line. Every mistake exits with status 1 and a message on standard error, whether a flag
  /// (argument-parser's usage errors, status 64 by default) or a file or a setting found wrong later; `--help` and
  /// `--version` exit 0. A crash would be a signal (status above 128), which the fuzz harness looks for. Freed
  /// buffers are kept for reuse (`ProcessMemory`): a training step frees and reallocates the same large tensors.
  static func main() {
    ProcessMemory.keepFreedMemory()
    do {
      var command = try parseAsRoot()
      try command.run()
    } catch {
      let code = exitCode(for: error)
      guard code == .validationFailure else { exit(withError: error) }
      FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
      Foundation.exit(1)
    }
  }
}
