// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "coxswain",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Coxswain", targets: ["Coxswain"]),
        .executable(name: "cox", targets: ["CoxCLI"]),
        .executable(name: "cox-bench", targets: ["CoxBench"]),
    ],
    dependencies: [
        .package(path: "../protocol-spec"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .target(name: "Coxswain", dependencies: [
            .product(name: "PharosSpec", package: "protocol-spec"),
            .product(name: "PharosProto", package: "protocol-spec"),
            .product(name: "PharosTLS", package: "protocol-spec"),
            .product(name: "PharosRuntime", package: "protocol-spec"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Yams", package: "Yams"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "CoxCLI", dependencies: [
            "Coxswain",
            .product(name: "PharosRuntime", package: "protocol-spec"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // `make bench`: drives node-bench's simulated fleet (built by the node package).
        .executableTarget(name: "CoxBench", dependencies: [
            "Coxswain",
            .product(name: "PharosSpec", package: "protocol-spec"),
            .product(name: "PharosTestSupport", package: "protocol-spec"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "CoxCLITests", dependencies: ["CoxCLI", "Coxswain", .product(name: "PharosSpec", package: "protocol-spec")]),
        .testTarget(name: "CoxswainTests", dependencies: [
            "Coxswain",
            .product(name: "PharosSpec", package: "protocol-spec"),
            .product(name: "PharosProto", package: "protocol-spec"),
            .product(name: "PharosTLS", package: "protocol-spec"),
            .product(name: "PharosTestSupport", package: "protocol-spec"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "Logging", package: "swift-log"),
        ]),
    ]
)
