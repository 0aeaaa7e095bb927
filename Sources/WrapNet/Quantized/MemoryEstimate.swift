import Foundation

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

extension ModelConfig {
  /// Float values of the zoo network this configuration builds (every weight and bias, and per batch-norm channel
  /// its scale, shift, running mean and variance),
  /// computed from the configuration alone, so a model can be judged before anything is allocated. Saturates at
  /// `Int.max` instead of overflowing. `ModelZoo.build` is the definition; a test checks that the two agree.
  public var parameterCount: Int {
    let c = inputChannels, k = classes
    var total = 0
    func add(_ terms: Int...) { total = saturatingSum([total] + terms) }
    func product(_ factors: Int...) -> Int { saturatingProduct(factors) }
    // A hidden layer: weights plus its batch norm's gamma and beta (running statistics are buffers, 2 more).
    func hidden(_ weights: Int, _ channels: Int) { add(weights, product(4, channels)) }
    func conv(_ i: Int, _ o: Int) { hidden(product(i, o, 9), o) }
    let wide = saturatingHiddenWidth
    switch architecture {
    case "mlp":
      let width = wide(1024)
      hidden(product(c, inputHeight, inputWidth, width), width)
      for _ in 0..<3 { hidden(product(width, width), width) }
      add(product(width, k), k)
    case "cnn":
      conv(c, wide(16))
      conv(wide(16), wide(32))
      conv(wide(32), wide(64))
      conv(wide(64), wide(64))
      add(product(wide(64), 49, k), k)
    case "vgg-small":
      conv(c, wide(128))
      for (i, o) in [(128, 128), (128, 256), (256, 256), (256, 512), (512, 512)] { conv(wide(i), wide(o)) }
      add(product(wide(512), ModelZoo.vggPlane(inputHeight), ModelZoo.vggPlane(inputWidth), k), k)
    default:  // resnet20
      conv(c, wide(16))
      var inC = wide(16)
      for width in [wide(16), wide(32), wide(64)] {
        for _ in 0..<3 {
          conv(inC, width)
          conv(width, width)
          inC = width
        }
      }
      add(product(wide(64), k), k)
    }
    return total
  }

  /// `hiddenWidth(base)`, or `Int.max` when base · widthMultiplier overflows.
  private func saturatingHiddenWidth(_ base: Int) -> Int {
    base.multipliedReportingOverflow(by: widthMultiplier).overflow ? Int.max : hiddenWidth(base)
  }

  /// Float values one image produces in the hidden layers (every low-bit and first layer's output plane,
  /// C·H'·W'), from the configuration alone; saturates at `Int.max`. Training keeps about three tensors of this
  /// size per image for the backward pass (the layer's sums, the batch norm's normalized values, the activation
  /// codes), evaluation about two (a layer's input and output).
  public var activationValuesPerImage: Int {
    var total = 0
    func add(_ channels: Int, _ h: Int, _ w: Int, times: Int = 1) {
      total = saturatingSum([total, saturatingProduct([channels, h, w, times])])
    }
    let h = inputHeight, w = inputWidth
    let wide = saturatingHiddenWidth
    switch architecture {
    case "mlp":
      add(wide(1024), 1, 1, times: 4)
    case "cnn":
      add(wide(16), h, w)
      add(wide(32), h / 2, w / 2)
      add(wide(64), h / 2, w / 2)
      add(wide(64), h / 4, w / 4)
    case "vgg-small":
      add(wide(128), h, w, times: 2)
      add(wide(256), h / 2, w / 2, times: 2)
      add(wide(512), h / 4, w / 4, times: 2)
    default:  // resnet20: the stem, then six convolutions per stage
      add(wide(16), h, w, times: 7)
      add(wide(32), h / 2, w / 2, times: 6)
      add(wide(64), h / 4, w / 4, times: 6)
    }
    return total
  }

  /// Bytes a model of this configuration needs at least: 4-byte Floats, `copies` per value of `parameterCount`
  /// (a built model holds weights and gradients: 2; training adds the optimizer's state and the quantized weights:
  /// 3 more), plus `activationCopies` per value of `activationValuesPerImage` for each of `batchSize` images.
  /// Saturates at `Int.max`.
  public func estimatedBytes(copies: Int, batchSize: Int = 0, activationCopies: Int = 0) -> Int {
    saturatingSum([
      saturatingProduct([parameterCount, 4, copies]),
      saturatingProduct([activationValuesPerImage, 4, activationCopies, batchSize]),
    ])
  }

  /// Throws a `ConfigError` with the estimate and the memory available when a model of this configuration cannot
  /// fit (`estimatedBytes` above `availableMemoryBytes()`); does nothing when the memory is unknown.
  public func checkMemory(copies: Int, batchSize: Int = 0, activationCopies: Int = 0, purpose: String) throws {
    guard let available = availableMemoryBytes() else { return }
    let needed = estimatedBytes(copies: copies, batchSize: batchSize, activationCopies: activationCopies)
    guard needed > available else { return }
    func gib(_ b: Int) -> String { b == Int.max ? "more than 8 EiB" : String(format: "%.1f GiB", Double(b) / 1_073_741_824) }
    let parameters = parameterCount == Int.max ? "too many" : String(parameterCount)
    var terms = "\(parameters) parameters × \(copies) copies × 4 bytes"
    var advice = "use a smaller --width-multiplier, a --width-divisor or a smaller model"
    if batchSize > 0 && activationCopies > 0 {
      let values = activationValuesPerImage == Int.max ? "too many" : String(activationValuesPerImage)
      terms += " + \(batchSize) images × \(values) activations × \(activationCopies) copies × 4 bytes"
      advice = "use a smaller --batch-size, " + advice
    }
    throw ConfigError(
      message: "\(purpose) a '\(displayName)' model with \(classes) classes needs at least \(gib(needed)) (\(terms)) but only \(gib(available)) of memory is available; \(advice)")
  }
}

/// Memory this process can still allocate: the smaller of the system's available memory (`MemAvailable` in
/// /proc/meminfo) and what the address-space limit (`ulimit -v`) leaves above the current size; nil when neither
/// is known (non-Linux systems without a limit).
public func availableMemoryBytes() -> Int? {
  var limits: [Int] = []
  if let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8), let kib = procValue(text, "MemAvailable:") {
    limits.append(kib * 1024)
  }
  var limit = rlimit()
  #if canImport(Glibc)
    let resource = __rlimit_resource_t(RLIMIT_AS.rawValue)
  #else
    let resource = RLIMIT_AS
  #endif
  // RLIM_INFINITY (no limit) is the largest value, above Int.max.
  if getrlimit(resource, &limit) == 0, limit.rlim_cur < UInt64(Int.max) {
    var used = 0
    if let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8), let kib = procValue(text, "VmSize:") {
      used = kib * 1024
    }
    limits.append(max(0, Int(limit.rlim_cur) - used))
  }
  return limits.min()
}

/// The number (kB) after `key` in a /proc file.
private func procValue(_ text: String, _ key: String) -> Int? {
  guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return nil }
  return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
}

/// The product of non-negative `factors`, or `Int.max` when it overflows (the estimates saturate instead of
/// trapping on a corrupt or absurd configuration).
private func saturatingProduct(_ factors: [Int]) -> Int {
  var p = 1
  for f in factors {
    let (q, overflow) = p.multipliedReportingOverflow(by: f)
    if overflow { return Int.max }
    p = q
  }
  return p
}

/// The sum of non-negative `terms`, or `Int.max` when it overflows.
private func saturatingSum(_ terms: [Int]) -> Int {
  var total = 0
  for t in terms {
    let (sum, overflow) = total.addingReportingOverflow(t)
    if overflow { return Int.max }
    total = sum
  }
  return total
}
