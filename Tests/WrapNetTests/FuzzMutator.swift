import Foundation
import WrapNet

/// Seeded mutations of valid input files, for the loaders' fuzz tests: every mutant is a pure function of
/// (seed, index), so a failure names the mutant to replay.
///
/// Strategies (one to three per mutant): bit flips, truncation, appended or duplicated bytes, a new safetensors
/// header length, an edited number or string in the safetensors JSON header or inside a JSON metadata value
/// (with the checkpoint's `config_md5` recomputed half of the time, so the checks behind it are reached), NaN or
/// infinity written over a Float of the data section, and edited IDX magic and dimensions.
struct FuzzMutator {
  /// What the bytes are, so structure-aware strategies apply. `gzipIDX`: the input is an uncompressed IDX file;
  /// half of the mutants are its IDX mutants gzip-compressed (valid streams with broken contents), the other half
  /// raw mutations of the compressed bytes (broken streams, CRCs, lengths).
  enum Format { case safetensors, idx, raw, gzipIDX }

  var generator: SeededGenerator

  init(seed: UInt64, index: Int) {
    generator = SeededGenerator(seed: seed, keys: UInt64(index))
  }

  /// Values that break arithmetic: sign, zero, 32- and 64-bit edges, fractions, huge Doubles.
  static let interestingNumbers: [Double] = [
    -1, 0, 1, 2, 3, 7, 255, 256, 65_535, 2_147_483_647, 2_147_483_648, 4_294_967_296, 1e15, 4.6e18, 9.3e18,
    -9.2e18, -2_147_483_648, 0.5, -0.5, 1e308, -1e308,
  ]
  static let interestingStrings = ["", "x", "mnist", "cifar10", "exact", "wrap", "table", "conv", "-1", "NaN", "1e999"]

  mutating func int(_ n: Int) -> Int { generator.int(below: max(n, 1)) }

  mutating func mutate(_ input: [UInt8], format: Format) -> [UInt8] {
    if format == .gzipIDX {
      return int(2) == 0 ? Gzip.compress(mutate(input, format: .idx)) : mutate(Gzip.compress(input), format: .raw)
    }
    var bytes = input
    for _ in 0...int(3) {
      switch int(format == .raw ? 4 : 9) {
      case 0:  // bit flips
        for _ in 0...int(8) where !bytes.isEmpty { bytes[int(bytes.count)] ^= 1 << UInt8(int(8)) }
      case 1:  // truncation
        bytes = Array(bytes.prefix(int(bytes.count + 1)))
      case 2:  // appended bytes
        bytes += (0..<(1 + int(64))).map { _ in UInt8(truncatingIfNeeded: int(256)) }
      case 3:  // a duplicated range
        if !bytes.isEmpty {
          let start = int(bytes.count), end = start + int(bytes.count - start)
          bytes.insert(contentsOf: bytes[start..<end], at: int(bytes.count))
        }
      default:
        switch format {
        case .safetensors: bytes = mutateSafeTensors(bytes)
        case .idx: bytes = mutateIDX(bytes)
        case .raw, .gzipIDX: break
        }
      }
    }
    return bytes
  }

  /// A new header length, an edited header, or NaN/Inf in the data.
  mutating func mutateSafeTensors(_ bytes: [UInt8]) -> [UInt8] {
    guard bytes.count >= 8 else { return bytes }
    var n = 0
    for i in 0..<8 { n |= Int(bytes[i]) << (8 * i) }
    guard n >= 0, n <= bytes.count - 8 else { return bytes }
    var out = bytes
    switch int(4) {
    case 0:
      let lengths: [UInt64] = [0, 1, UInt64(max(n - 1, 0)), UInt64(n + 1), UInt64(bytes.count), 1 << 40, UInt64.max, UInt64(Int.max)]
      let value = lengths[int(lengths.count)]
      for i in 0..<8 { out[i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    case 1:
      // NaN or infinity over a 4-byte-aligned Float in the data section.
      let data = bytes.count - 8 - n
      guard data >= 4 else { return bytes }
      let at = 8 + n + 4 * int(data / 4)
      let bits: [UInt32] = [0x7fc0_0000, 0x7f80_0000, 0xff80_0000, 0x7f7f_ffff]
      let value = bits[int(bits.count)]
      for i in 0..<4 { out[at + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
    default:
      guard let header = try? JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as? [String: Any] else {
        return bytes
      }
      let edited = editSafeTensorsHeader(header)
      guard let json = try? JSONSerialization.data(withJSONObject: edited, options: [.sortedKeys]) else { return bytes }
      out = []
      for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: json.count >> (8 * i))) }
      out += [UInt8](json) + bytes[(8 + n)...]
    }
    return out
  }

  /// One number or string edited: in a tensor entry (dtype, shape, offsets) or inside a metadata value, which is
  /// itself often JSON (a checkpoint's `config` and `training`, a packed model's `layers`).
  mutating func editSafeTensorsHeader(_ header: [String: Any]) -> [String: Any] {
    var header = header
    let keys = header.keys.sorted()
    guard !keys.isEmpty else { return header }
    var meta = header["__metadata__"] as? [String: String] ?? [:]
    if !meta.isEmpty && int(2) == 0 {
      let metaKeys = meta.keys.sorted()
      let key = metaKeys[int(metaKeys.count)]
      let text = meta[key]!
      if let nested = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]),
        let data = try? JSONSerialization.data(withJSONObject: editJSON(nested), options: [.sortedKeys, .fragmentsAllowed])
      {
        meta[key] = String(decoding: data, as: UTF8.self)
      } else {
        meta[key] = Self.interestingStrings[int(Self.interestingStrings.count)]
      }
      if key == "config", int(2) == 0, let config = meta["config"] {
        meta["config_md5"] = MD5.digest(Array(config.utf8)).hexString
      }
      header["__metadata__"] = meta
      return header
    }
    let key = keys[int(keys.count)]
    header[key] = editJSON(header[key]!)
    return header
  }

  /// `value` with one leaf (number or string) replaced, or one array element removed or repeated.
  mutating func editJSON(_ value: Any) -> Any {
    switch value {
    case var object as [String: Any]:
      let keys = object.keys.sorted()
      guard !keys.isEmpty else { return object }
      let key = keys[int(keys.count)]
      if int(8) == 0 { object[key] = nil } else { object[key] = editJSON(object[key]!) }
      return object
    case var array as [Any]:
      guard !array.isEmpty else { return [Self.interestingNumbers[int(Self.interestingNumbers.count)]] }
      let i = int(array.count)
      switch int(6) {
      case 0: array.remove(at: i)
      case 1: array.append(array[i])
      default: array[i] = editJSON(array[i])
      }
      return array
    case is String:
      return int(3) == 0 ? Self.interestingNumbers[int(Self.interestingNumbers.count)] as Any
        : Self.interestingStrings[int(Self.interestingStrings.count)]
    default:
      return Self.interestingNumbers[int(Self.interestingNumbers.count)]
    }
  }

  /// An edited magic or dimension (big-endian UInt32 words after the magic).
  mutating func mutateIDX(_ bytes: [UInt8]) -> [UInt8] {
    guard bytes.count >= 8 else { return bytes }
    var out = bytes
    let rank = Int(bytes[3])
    let word = int(1 + min(rank, (bytes.count - 4) / 4))
    let values: [UInt32] = [0, 1, 2, 27, 29, 10_000, 0x7fff_ffff, 0xffff_ffff, 0x0000_0803, 0x0000_0801, 0x0000_08ff]
    let value = values[int(values.count)]
    for i in 0..<4 { out[4 * word + i] = UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt32(i))) }
    return out
  }
}

/// The number of mutants per loader: `$WRAPNET_FUZZ_MUTANTS` (the long mode of scripts/fuzz.sh), else `ci`.
func fuzzMutantCount(ci: Int) -> Int {
  ProcessInfo.processInfo.environment["WRAPNET_FUZZ_MUTANTS"].flatMap { Int($0) } ?? ci
}

/// Where to write every mutant as a file for the command-line pass of scripts/fuzz.sh (nil: do not write).
let fuzzOutputDirectory = ProcessInfo.processInfo.environment["WRAPNET_FUZZ_WRITE"].flatMap { $0.isEmpty ? nil : $0 }
