import Foundation
import PharosSpec
import PharosTestSupport
@testable import CaravelCore

/// A real controller and node as processes: the `cox` and `node` binaries the coxswain and
/// node packages built (`make test` builds them first; or set PHAROS_COX_BINARY /
/// PHAROS_NODE_BINARY). The controller runs its embedded relay on a loopback port.
final class Fleet: @unchecked Sendable {
    static let cox = TestBinaries.path("cox", package: "coxswain")
    static let node = TestBinaries.path("node", package: "node")

    struct Failure: Error, CustomStringConvertible { var description: String }

    let dir = "/tmp/caravel-fleet-\(UUID().uuidString.prefix(8))"
    let relayPort: Int
    let environment: [String: String]
    private var serve: Process?
    private var nodeProcess: Process?

    var relayAddr: String { "127.0.0.1:\(relayPort)" }

    init() async throws {
        for binary in [Self.cox, Self.node] where !FileManager.default.isExecutableFile(atPath: binary) {
            throw Failure(description: "no binary at \(binary): build the coxswain and node packages first (make test does)")
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let ports = LoopbackPorts.free(2)
        relayPort = ports[0]
        var environment = ProcessInfo.processInfo.environment
        environment["COX_CONFIG"] = "\(dir)/cox.yaml"
        environment["COX_RELAY_CLIENT_LISTEN"] = "127.0.0.1:\(relayPort)"
        // The embedded relay's certificate names localhost; clients reach it by address.
        environment["COX_RELAY_PUBLIC_ENDPOINT"] = "localhost:\(relayPort)"
        environment["COX_FLEET_RECONCILE_INTERVAL"] = "2"
        environment["COX_UI_LISTEN"] = ""
        self.environment = environment
        try run(Self.cox, ["init"])

        // A node from its own CSR, with the in-memory data plane (no root needed).
        let nodeDir = "\(dir)/n1", nodePort = ports[1]
        try FileManager.default.createDirectory(atPath: nodeDir, withIntermediateDirectories: true)
        try run(Self.node, ["gen-csr", "--config-dir", nodeDir]).write(toFile: "\(dir)/n1.csr", atomically: true, encoding: .utf8)
        try run(Self.cox, ["nodes", "enroll", "--csr", "\(dir)/n1.csr", "--addr", "127.0.0.1:\(nodePort)", "--name", "n1", "--out", nodeDir])
        try "control:\n  listen_addr: 127.0.0.1:\(nodePort)\ndataplane:\n  backend: memory\n"
            .write(toFile: "\(nodeDir)/node.yaml", atomically: true, encoding: .utf8)
        nodeProcess = try start(Self.node, ["run", "--config-dir", nodeDir], log: "\(dir)/node.log", until: "control port open")
        try run(Self.cox, ["nodes", "status", "n1"])
        try startController()
    }

    func startController() throws {
        serve = try start(Self.cox, ["serve"], log: "\(dir)/cox.log", until: "account service up")
    }

    func stopController() {
        if let serve, serve.isRunning {
            serve.terminate()
            serve.waitUntilExit()
        }
        serve = nil
    }

    func stop() {
        stopController()
        if let nodeProcess, nodeProcess.isRunning {
            nodeProcess.terminate()
            nodeProcess.waitUntilExit()
        }
        if ProcessInfo.processInfo.environment["KEEP_FLEET"] == nil { try? FileManager.default.removeItem(atPath: dir) }
    }

    deinit { stop() }

    /// Runs a command to completion; its stdout, or a failure with what it printed.
    @discardableResult
    func run(_ binary: String, _ arguments: [String], input: String? = nil) throws -> String {
        let process = Process()
        if let input {
            let stdin = Pipe()
            process.standardInput = stdin
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try stdin.fileHandleForWriting.close()
        }
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "\((binary as NSString).lastPathComponent) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(stdout)\(stderr)")
        }
        return stdout
    }

    private func start(_ binary: String, _ arguments: [String], log: String, until marker: String) throws -> Process {
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        for _ in 0..<300 {
            if (try? String(contentsOfFile: log, encoding: .utf8))?.contains(marker) == true { return process }
            if !process.isRunning { break }
            usleep(50_000)
        }
        throw Failure(description: "\(arguments.joined(separator: " ")) did not log \"\(marker)\": \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }
}
