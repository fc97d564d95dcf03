// swift-tools-version:6.0
//
// Plenum — a distributed in-memory object store over non-coherent
// disaggregated memory. See README.md and SPEC.md.
import PackageDescription

/// Release builds optimise across module boundaries so the generic ring code
/// (`RingProducer<Memory>`, `RingConsumer<Memory>`) specialises for the real
/// memory seam in the executable: the hot path has no witness-table calls.
/// Release builds also drop the dynamic exclusivity checks (a tenth of the
/// daemon's instructions per request, measured with callgrind in issue 12);
/// debug builds — every test run — keep them.
let optimise: [SwiftSetting] = [
    .unsafeFlags(["-cross-module-optimization", "-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "Plenum",
    products: [
        .executable(name: "plenum", targets: ["plenum"]),
        .library(name: "PlenumRing", targets: ["PlenumRing"]),
        .library(name: "PlenumRegion", targets: ["PlenumRegion"]),
        // For the gRPC baseline package (Baseline/), which adds transports.
        .library(name: "PlenumCLI", targets: ["PlenumCLI"]),
        .library(name: "PlenumDaemon", targets: ["PlenumDaemon"]),
        .library(name: "PlenumCluster", targets: ["PlenumCluster"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // Metrics (SPEC §10.9 "Metrics"): swift-prometheus's collectors and
        // text format (it builds on swift-metrics' CoreMetrics).
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C: only what Swift cannot reach (cache-line flushes, fences, cpuid,
        // CPU pinning macros, hardware CRC32C). Prefixed `plenum_`.
        .target(name: "CPlenumShim"),
        // libnuma through a system-library target (apt: libnuma-dev).
        .systemLibrary(name: "CNuma", providers: [.apt(["libnuma-dev"])]),
        // The memory-access seam: every load, store, flush and fence to
        // shared memory, with the real (mmap + CPU instruction) implementation.
        .target(
            name: "PlenumMemory",
            dependencies: [
                "CPlenumShim",
                .product(name: "Atomics", package: "swift-atomics"),
            ],
            swiftSettings: optimise
        ),
        // Shared regions: create / map by path, header, segment table, NUMA.
        .target(
            name: "PlenumRegion",
            dependencies: ["PlenumMemory", "CNuma", "CPlenumShim"],
            swiftSettings: optimise
        ),
        // The per-pair single-producer single-consumer ring.
        .target(
            name: "PlenumRing",
            dependencies: ["PlenumMemory", "PlenumRegion", "CPlenumShim"],
            swiftSettings: optimise
        ),
        // Benchmarks (not tests): ping-pong floor, ring RTT and throughput.
        .target(
            name: "PlenumBench",
            dependencies: [
                "PlenumMemory", "PlenumRegion", "PlenumRing", "CPlenumShim",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: optimise
        ),
        // The object store: allocator, object table, store core state machine.
        .target(name: "PlenumStore", dependencies: ["PlenumMemory"], swiftSettings: optimise),
        // The client ↔ store wire protocol (framing, bounds-checked codecs).
        .target(name: "PlenumWire", dependencies: ["PlenumStore"], swiftSettings: optimise),
        // Plasma 11's client protocol: bounds-checked FlatBuffers and the
        // message codec (SPEC §11); sans-I/O.
        .target(name: "PlenumPlasma", dependencies: ["PlenumStore"], swiftSettings: optimise),
        // The cluster protocol: a sans-I/O state machine beside StoreCore,
        // its peer messages, directory and cluster file (SPEC §10).
        .target(name: "PlenumCluster", dependencies: ["PlenumMemory", "PlenumStore", "PlenumWire"], swiftSettings: optimise),
        // liburing through a system-library target (apt: liburing-dev).
        .systemLibrary(name: "CURing", providers: [.apt(["liburing-dev"])]),
        // The store daemon: io_uring event loop around StoreCore.
        .target(
            name: "PlenumDaemon",
            dependencies: ["PlenumStore", "PlenumWire", "PlenumCluster", "PlenumPlasma", "PlenumRegion", "PlenumRing", "PlenumMemory", "CURing", "CPlenumShim",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "Prometheus", package: "swift-prometheus")],
            swiftSettings: optimise
        ),
        // The Swift client library: socket requests, zero-copy object views.
        .target(name: "PlenumClient", dependencies: ["PlenumStore", "PlenumWire", "PlenumMemory", "PlenumRing", "PlenumRegion", "PlenumCluster", "CPlenumShim"],
                swiftSettings: optimise),
        // The coherency-fault simulator: the production ring, store and
        // cluster cores on a model of non-coherent memory (SPEC §7).
        .target(
            name: "PlenumSimulator",
            dependencies: ["PlenumMemory", "PlenumRing", "PlenumStore", "PlenumWire", "PlenumCluster", "CPlenumShim"],
            path: "Simulator",
            exclude: ["README.md", "Regressions"],
            // Single-threaded by construction (one OS thread runs every
            // simulated node as a coroutine): dynamic exclusivity tracking
            // would cost ~15% of simulated operations and its access set
            // assumes accesses nest per thread, which coroutines break.
            swiftSettings: optimise + [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
        ),
        // Every `plenum` command; the executables are thin mains around it.
        .target(
            name: "PlenumCLI",
            dependencies: [
                "PlenumMemory", "PlenumRegion", "PlenumRing", "PlenumBench", "PlenumSimulator",
                "PlenumStore", "PlenumDaemon", "PlenumClient", "PlenumWire", "PlenumCluster", "PlenumPlasma", "CPlenumShim",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: optimise
        ),
        .executableTarget(name: "plenum", dependencies: ["PlenumCLI"], swiftSettings: optimise),
        .testTarget(name: "PlenumMemoryTests", dependencies: ["PlenumMemory", "PlenumRegion"]),
        .testTarget(name: "PlenumRegionTests", dependencies: ["PlenumRegion", "PlenumMemory"]),
        .testTarget(name: "PlenumRingTests", dependencies: ["PlenumRing", "PlenumRegion", "PlenumMemory"]),
        .testTarget(name: "PlenumStoreTests", dependencies: ["PlenumStore", "PlenumWire", "PlenumPlasma", "PlenumMemory"]),
        .testTarget(name: "PlenumClusterTests", dependencies: ["PlenumCluster", "PlenumStore", "PlenumWire", "PlenumMemory"]),
        .testTarget(name: "PlenumSimulatorTests", dependencies: ["PlenumSimulator", "PlenumMemory"]),
        // Multi-process tests drive the real `plenum` executable.
        .testTarget(
            name: "PlenumProcessTests",
            dependencies: ["plenum", "PlenumRing", "PlenumRegion", "PlenumMemory", "PlenumClient", "PlenumStore", "PlenumWire", "PlenumPlasma", "CPlenumShim"]
        ),
    ]
)
