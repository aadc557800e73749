// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "relay",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Relay", targets: ["Relay"]),
        .executable(name: "relay", targets: ["RelayCLI"]),
        .executable(name: "relay-bench", targets: ["RelayBench"]),
    ],
    dependencies: [
        .package(path: "../protocol-spec"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .target(name: "Relay", dependencies: [
            .product(name: "PharosSpec", package: "protocol-spec"),
            .product(name: "PharosTLS", package: "protocol-spec"),
            .product(name: "PharosRuntime", package: "protocol-spec"),
            .product(name: "PharosLifecycle", package: "protocol-spec"),
            .product(name: "PharosConfig", package: "protocol-spec"),
            .product(name: "PharosProto", package: "protocol-spec"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOTLS", package: "swift-nio"),
            .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            .product(name: "NIOHPACK", package: "swift-nio-http2"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "RelayCLI", dependencies: [
            "Relay",
            .product(name: "PharosRuntime", package: "protocol-spec"),
            .product(name: "PharosConfig", package: "protocol-spec"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // A raw-bytes gRPC echo service that stands in for the controller in tests and the benchmark.
        .target(name: "EchoFixture", dependencies: [.product(name: "GRPCCore", package: "grpc-swift-2")]),
        // `make bench`: direct vs relay vs nginx grpc_pass; 10,000 open streams; idle connections.
        .executableTarget(name: "RelayBench", dependencies: [
            "Relay", "EchoFixture",
            .product(name: "PharosSpec", package: "protocol-spec"),
            .product(name: "PharosTLS", package: "protocol-spec"),
            .product(name: "PharosTestSupport", package: "protocol-spec"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "RelayCLITests", dependencies: ["RelayCLI", "Relay", .product(name: "PharosSpec", package: "protocol-spec")]),
        .testTarget(name: "RelayTests", dependencies: [
            "Relay", "EchoFixture",
            .product(name: "PharosSpec", package: "protocol-spec"),
            .product(name: "PharosConfig", package: "protocol-spec"),
            .product(name: "PharosTLS", package: "protocol-spec"),
            .product(name: "PharosTestSupport", package: "protocol-spec"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHPACK", package: "swift-nio-http2"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        ]),
    ]
)
