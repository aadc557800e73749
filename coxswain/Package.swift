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
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
    ],
    targets: [
        .target(name: "Coxswain", dependencies: [
            .product(name: "PharosSpec", package: "protocol-spec"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
        ]),
        .executableTarget(name: "CoxCLI", dependencies: [
            "Coxswain",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "CoxCLITests", dependencies: ["CoxCLI", "Coxswain", .product(name: "PharosSpec", package: "protocol-spec")]),
        .testTarget(name: "CoxswainTests", dependencies: [
            "Coxswain",
            .product(name: "PharosSpec", package: "protocol-spec"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
        ]),
    ]
)
