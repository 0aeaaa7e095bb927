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
      dependencies: ["WrapNetEngine", "CZlib", blasDependency]
    ),
    // Verilog generation for WrapNet layers and PEs, test vectors from the engine, simulation with Icarus Verilog.
    .target(name: "WrapNetHardware", dependencies: ["WrapNetEngine"]),
    .executableTarget(
      name: "wrapnet",
      dependencies: [
        "WrapNet", "WrapNetEngine", "WrapNetHardware",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),

    // MARK: - Implementation details (system libraries)
    // AVX2 integer micro-kernels for the engine. Each function carries its own target("avx2") attribute (no global
    // -mavx2: library targets cannot use unsafe flags), is chosen at run time, and the file compiles on any CPU.
    .target(name: "CWrapNetKernels"),
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
    .testTarget(name: "WrapNetTests", dependencies: ["WrapNet", "WrapNetEngine"]),
    .testTarget(name: "WrapNetHardwareTests", dependencies: ["WrapNetHardware", "WrapNetEngine", "WrapNet"]),
  ],
  swiftLanguageModes: [.v6]
)
