import ArgumentParser

/// `wrapnet data`: fetch and inspect datasets.
struct DataCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "data",
    abstract: "Fetch and inspect datasets (MNIST, Fashion-MNIST, CIFAR-10).",
    subcommands: [DataFetchCommand.self, DataInfoCommand.self]
  )
}
