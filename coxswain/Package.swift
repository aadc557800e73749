// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "coxswain",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Coxswain", targets: ["Coxswain"]),
        .executable(name: "cox", targets: ["CoxCLI"]),
    ],
    dependencies: [
        .package(path: "../protocol-spec"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        .target(name: "Coxswain", dependencies: [
            .product(name: "PharosSpec", package: "protocol-spec"),
        ]),
        .executableTarget(name: "CoxCLI", dependencies: [
            "Coxswain",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "CoxCLITests", dependencies: ["CoxCLI", "Coxswain", .product(name: "PharosSpec", package: "protocol-spec")]),
    ]
)
