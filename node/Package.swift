// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "node",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "NodeAgent", targets: ["NodeAgent"]),
        .executable(name: "node", targets: ["NodeCLI"]),
    ],
    dependencies: [
        .package(path: "../protocol-spec"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        .target(name: "NodeAgent", dependencies: [
            .product(name: "PharosSpec", package: "protocol-spec"),
        ]),
        .executableTarget(name: "NodeCLI", dependencies: [
            "NodeAgent",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "NodeCLITests", dependencies: ["NodeCLI", "NodeAgent", .product(name: "PharosSpec", package: "protocol-spec")]),
    ]
)
