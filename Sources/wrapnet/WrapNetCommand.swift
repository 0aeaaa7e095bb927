import ArgumentParser
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
      """,
    version: WrapNetEngineInfo.version,
    subcommands: [DataCommand.self, TrainCommand.self, EvalCommand.self]
  )
}
