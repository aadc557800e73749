// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "caravel-core",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "CaravelCore", targets: ["CaravelCore"]),
    ],
    dependencies: [
        .package(path: "../protocol-spec"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
    ],
    targets: [
        .target(name: "CaravelCore", dependencies: [
            .product(name: "PharosSpec", package: "protocol-spec"),
            .product(name: "PharosProto", package: "protocol-spec"),
            .product(name: "PharosTLS", package: "protocol-spec"),
            .product(name: "PharosWireGuard", package: "protocol-spec"),
            .product(name: "PharosRuntime", package: "protocol-spec"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        ]),
        .testTarget(name: "CaravelCoreTests", dependencies: [
            "CaravelCore",
            .product(name: "PharosSpec", package: "protocol-spec"),
            .product(name: "PharosWireGuard", package: "protocol-spec"),
            .product(name: "PharosTestSupport", package: "protocol-spec"),
            .product(name: "PharosTLS", package: "protocol-spec"),
            .product(name: "PharosProto", package: "protocol-spec"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "X509", package: "swift-certificates"),
        ]),
    ]
)
