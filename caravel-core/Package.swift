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
    ],
    targets: [
        .target(name: "CaravelCore", dependencies: [
            .product(name: "PharosSpec", package: "protocol-spec"),
        ]),
        .testTarget(name: "CaravelCoreTests", dependencies: ["CaravelCore", .product(name: "PharosSpec", package: "protocol-spec")]),
    ]
)
