import ArgumentParser
import WrapNet

/// `--data-dir DIR`, shared by every command that reads or writes datasets.
struct DataDirOptions: ParsableArguments {
  @Option(
    name: .customLong("data-dir"),
    help: ArgumentHelp(
      "Directory that holds the datasets (default: $WRAPNET_DATA, else ~/.cache/wrapnet).",
      valueName: "dir"))
  var dataDir: String?

  /// The directory to use: `--data-dir` if given, else `defaultDataDirectory()`.
  var resolved: String {
    if let dataDir, !dataDir.isEmpty { return dataDir }
    return defaultDataDirectory()
  }

  func validate() throws {
    if let dataDir, dataDir.isEmpty {
      throw ValidationError("--data-dir needs a directory; omit it to use $WRAPNET_DATA or ~/.cache/wrapnet.")
    }
  }
}
