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
    ],
    targets: [
        // System libraries, each behind a module map (Debian's -dev packages).
        .systemLibrary(name: "CRdKafka", path: "Sources/CRdKafka",
                       providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG",
                       providers: [.apt(["libjpeg-dev"])]),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS",
                       providers: [.apt(["libopenblas-dev"])]),

        // Kafka: a Swift API over librdkafka (consumer, producer, embedded mock broker).
        .target(name: "Kafka", dependencies: [
            "CRdKafka",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Model: tensors, encoders, task heads and bundles on OpenBLAS and libjpeg.
        .target(name: "Model", dependencies: ["COpenBLAS", "CJPEG"]),
        // Metrics: Prometheus exposition, health and readiness (module name avoids swift-metrics' `Metrics`).
        .target(name: "PostclassMetrics", path: "Sources/Metrics"),

        // The daemon executable and its subcommands.
        .executableTarget(name: "postclassd", dependencies: [
            "Kafka", "Model", "PostclassMetrics",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], path: "Sources/Daemon"),

        .testTarget(name: "KafkaTests", dependencies: ["Kafka"]),
        .testTarget(name: "ModelTests", dependencies: ["Model"]),
    ]
)
