// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "relay",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Relay", targets: ["Relay"]),
        .executable(name: "relay", targets: ["RelayCLI"]),
    ],
    dependencies: [
        .package(path: "../protocol-spec"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        .target(name: "Relay", dependencies: [
            .product(name: "PharosSpec", package: "protocol-spec"),
        ]),
        .executableTarget(name: "RelayCLI", dependencies: [
            "Relay",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "RelayCLITests", dependencies: ["RelayCLI", "Relay", .product(name: "PharosSpec", package: "protocol-spec")]),
    ]
)
