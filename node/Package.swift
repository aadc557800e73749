// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "node",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "NodeAgent", targets: ["NodeAgent"]),
        .executable(name: "node", targets: ["NodeCLI"]),
        .executable(name: "node-bench", targets: ["NodeBench"]),
    ],
    dependencies: [
        .package(path: "../protocol-spec"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .target(name: "NodeAgent", dependencies: [
            .product(name: "PharosSpec", package: "protocol-spec"),
            .product(name: "PharosProto", package: "protocol-spec"),
            .product(name: "PharosTLS", package: "protocol-spec"),
            .product(name: "PharosRuntime", package: "protocol-spec"),
            .product(name: "PharosWireGuard", package: "protocol-spec"),
            .product(name: "PharosConfig", package: "protocol-spec"),
            .product(name: "PharosProtoMapping", package: "protocol-spec"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "NodeCLI", dependencies: [
            "NodeAgent",
            .product(name: "PharosRuntime", package: "protocol-spec"),
            .product(name: "PharosConfig", package: "protocol-spec"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // `make bench`; needs root and wireguard-go for the real data plane.
        .executableTarget(name: "NodeBench", dependencies: [
            "NodeAgent",
            .product(name: "PharosSpec", package: "protocol-spec"),
            .product(name: "PharosProto", package: "protocol-spec"),
            .product(name: "PharosTestSupport", package: "protocol-spec"),
            .product(name: "PharosRuntime", package: "protocol-spec"),
            .product(name: "PharosWireGuard", package: "protocol-spec"),
            .product(name: "PharosConfig", package: "protocol-spec"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "NodeCLITests", dependencies: ["NodeCLI", "NodeAgent", .product(name: "PharosSpec", package: "protocol-spec")]),
        .testTarget(name: "NodeAgentTests", dependencies: [
            "NodeAgent",
            .product(name: "PharosWireGuard", package: "protocol-spec"),
            .product(name: "PharosConfig", package: "protocol-spec"),
            .product(name: "PharosSpec", package: "protocol-spec"),
            .product(name: "PharosProto", package: "protocol-spec"),
            .product(name: "PharosTLS", package: "protocol-spec"),
            .product(name: "PharosTestSupport", package: "protocol-spec"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
        ]),
    ]
)
