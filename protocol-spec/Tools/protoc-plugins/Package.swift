// swift-tools-version:6.1
// Builds the two protoc plugins `make proto` needs, from the mirrored packages, without
// SwiftPM's protoc build plugin (which compiles protobuf's C++ sources: ~10 minutes).
import PackageDescription

let package = Package(
    name: "protoc-plugins",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", exact: "2.4.1"),
    ],
    targets: []
)
