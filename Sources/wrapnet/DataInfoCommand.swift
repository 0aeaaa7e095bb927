import ArgumentParser
import Foundation
import WrapNet

extension DatasetName: ExpressibleByArgument {}

/// `wrapnet data info --dataset NAME [--data-dir DIR] [--json]`: counts, shape, class histograms, pixel range.
struct DataInfoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "info",
    abstract: "Load a dataset and print its counts, image shape, class histograms and pixel statistics.")

  @Option(help: ArgumentHelp("The dataset to load.", valueName: "name"))
  var dataset: DatasetName

  @OptionGroup var dataDir: DataDirOptions

  @Flag(help: "Print one JSON object (keys dataset, shape, train, test; each split has count, class_counts).")
  var json = false

  func run() throws {
    let splits: DatasetSplits
    do {
      splits = try DatasetSplits.load(dataset, dataDirectory: dataDir.resolved)
    } catch {
      FileHandle.standardError.write(Data("error: \(error)\n".utf8))
      throw ExitCode.failure
    }
    let summary = DatasetSummary(name: dataset, splits: splits)
    print(json ? try summary.jsonString() : summary.text)
  }
}
