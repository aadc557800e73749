import Foundation

/// Where a test finds the executables of this repository: `$PHAROS_<NAME>_BINARY` when set,
/// else beside the running test bundle (the build tree `make test` shares across packages,
/// or a package's own `.build/debug` for its own products), else the owning package's own
/// `.build/debug` (a package built alone, e.g. `cd coxswain && swift test` after building node).
public enum TestBinaries {
    /// `name` is the product (`cox`, `node`, `relay`, `caravel`); `package` the folder that builds it.
    public static func path(_ name: String, package: String) -> String {
        let variable = "PHAROS_\(name.uppercased().replacingOccurrences(of: "-", with: "_"))_BINARY"
        if let path = ProcessInfo.processInfo.environment[variable], !path.isEmpty { return path }
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        return repository.appendingPathComponent("\(package)/.build/debug/\(name)").path
    }

    /// The directory holding `name`, for tests that start several sibling binaries.
    public static func directory(containing name: String, package: String) -> String {
        URL(fileURLWithPath: path(name, package: package)).deletingLastPathComponent().path
    }

    /// The repository root (this file is protocol-spec/Sources/PharosTestSupport/TestBinaries.swift).
    public static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
}
