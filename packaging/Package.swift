// swift-tools-version:6.1
import PackageDescription

// `make deb` builds every shipped binary here, in one release build tree, so BoringSSL,
// swift-nio and gRPC compile once for all four packages instead of once per component.
// The binaries are the components' own products (`swift build --product cox` works for a
// dependency's executable product); this package adds no code of its own to them.
let package = Package(
    name: "pharos-packaging",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "../relay"),
        .package(path: "../node"),
        .package(path: "../coxswain"),
        .package(path: "../caravel-cli"),
        // generate-manual (man pages) is an executable target of swift-argument-parser.
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        // SwiftPM builds nothing in a package without a target of its own.
        .target(name: "PackagingAnchor"),
    ]
)
