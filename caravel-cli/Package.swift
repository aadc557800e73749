// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "caravel-cli",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "caravel", targets: ["CaravelCLI"]),
        .executable(name: "caravel-bench", targets: ["CaravelBench"]),
    ],
    dependencies: [
        .package(path: "../caravel-core"),
        .package(path: "../protocol-spec"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .executableTarget(name: "CaravelCLI", dependencies: [
            .product(name: "CaravelCore", package: "caravel-core"),
            .product(name: "PharosSpec", package: "protocol-spec"),
            .product(name: "PharosRuntime", package: "protocol-spec"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "PharosLifecycle", package: "protocol-spec"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // Network-namespace lab shared by the tunnel test and the bench (root, wireguard-go).
        .target(name: "CaravelLab", dependencies: [
            .product(name: "PharosSpec", package: "protocol-spec"),
            .product(name: "PharosRuntime", package: "protocol-spec"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // `make bench`: profile open time and connect → first byte (root).
        .executableTarget(name: "CaravelBench", dependencies: [
            "CaravelLab",
            .product(name: "CaravelCore", package: "caravel-core"),
        ]),
        // TunnelTests run the built `caravel` binary in network namespaces (root, wireguard-go).
        .testTarget(name: "CaravelCLITests", dependencies: [
            "CaravelCLI", "CaravelLab",
            .product(name: "CaravelCore", package: "caravel-core"),
            .product(name: "PharosSpec", package: "protocol-spec"),
            .product(name: "PharosTestSupport", package: "protocol-spec"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
    ]
)
