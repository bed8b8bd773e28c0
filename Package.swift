// swift-tools-version:6.0
// postclassd: a streaming multimodal classifier daemon for Kafka.
import PackageDescription

let package = Package(
    name: "postclassd",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "postclassd", targets: ["postclassd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.70.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
    ],
    targets: [
        // System libraries, each behind a module map (Debian's -dev packages).
        .systemLibrary(name: "CRdKafka", path: "Sources/CRdKafka",
                       providers: [.apt(["librdkafka-dev"])]),
        .target(name: "CJPEG", path: "Sources/CJPEG", linkerSettings: [.linkedLibrary("jpeg")]),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS",
                       providers: [.apt(["libopenblas-dev"])]),
        // The C kernels (packed-weight product, depthwise rows, attention, GELU, softmax), each with
        // portable, AVX2 + FMA and (most) AVX-512 bodies picked at run time. Always optimised, so
        // that debug builds (where the tests run) are not dozens of times slower.
        .target(name: "CKernels", path: "Sources/CKernels", cSettings: [.unsafeFlags(["-O2"])]),

        // Kafka: a Swift API over librdkafka (consumer, producer, embedded mock broker).
        .target(name: "Kafka", dependencies: [
            "CRdKafka",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Model: tensors, encoders, task heads and bundles on OpenBLAS and libjpeg.
        .target(name: "Model", dependencies: ["COpenBLAS", "CJPEG", "CKernels"]),
        // Metrics: Prometheus exposition, health and readiness (module name avoids swift-metrics' `Metrics`).
        .target(name: "PostclassMetrics", dependencies: [
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ], path: "Sources/Metrics"),

        // The daemon executable and its subcommands.
        .executableTarget(name: "postclassd", dependencies: [
            "Kafka", "Model", "PostclassMetrics",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Yams", package: "Yams"),
        ], path: "Sources/Daemon"),

        // Benchmark drivers (bench/): not part of the daemon.
        .executableTarget(name: "kafka-bench", dependencies: [
            "Kafka",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], path: "bench/kafka-bench"),

        .testTarget(name: "KafkaTests", dependencies: ["Kafka"]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "TestSupport"], exclude: ["Fixtures"]),
        // Runs the real `postclassd` process against real brokers; a few pipeline parts (the
        // worker pool) are also tested in-process.
        .testTarget(name: "DaemonTests", dependencies: ["Kafka", "TestSupport", "postclassd"]),
        .testTarget(name: "MetricsTests", dependencies: ["PostclassMetrics", "TestSupport"]),
        // Helpers shared by the test targets: running binaries, raw HTTP, a notify socket.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
    ]
)
