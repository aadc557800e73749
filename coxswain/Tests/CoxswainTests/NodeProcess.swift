import Foundation
import PharosSpec
import PharosTestSupport
@testable import Coxswain
#if canImport(Glibc)
import Glibc
#endif

/// A real `node run` process (built by the node package) enrolled by a test controller.
/// Data plane: Debian's wireguard-go when running as root with it installed, otherwise the
/// node's in-memory backend; `dataPlane` says which.
final class NodeProcess: @unchecked Sendable {
    enum DataPlane: String { case wireguardGo = "wireguard-go", memory }

    static let binary = TestBinaries.path("node", package: "node")

    static let dataPlane: DataPlane =
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/wireguard-go") ? .wireguardGo : .memory

    let name: String
    let dir: String
    let port: Int
    let wgPort: Int
    let interface: String
    var record: NodeRecord
    private var process: Process?

    /// `node gen-csr` → `FleetService.enrollNode` → node.crt/ca.crt in the config dir → `node run`.
    init(name: String, state: TestState, wgPort: Int) async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw HarnessError("no node binary at \(Self.binary): build the node package first (cd ../node && swift build) or set PHAROS_NODE_BINARY")
        }
        self.name = name
        dir = "\(state.dir)/\(name)"
        port = LoopbackPorts.free()[0]
        self.wgPort = wgPort
        interface = "pcx\(String(UUID().uuidString.prefix(6)).lowercased())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let csr = try Self.run(Self.binary, ["gen-csr", "--config-dir", dir])
        let enrolled = try await state.service.enrollNode(csrPEM: csr, controlAddress: "127.0.0.1:\(port)", name: name,
                                                          region: "test", wgPort: wgPort, by: state.actor)
        record = enrolled.node
        try enrolled.certificateChainPEM.write(toFile: "\(dir)/node.crt", atomically: true, encoding: .utf8)
        try enrolled.rootPEM.write(toFile: "\(dir)/ca.crt", atomically: true, encoding: .utf8)
        let plane = Self.dataPlane == .wireguardGo
            ? "  backend: wireguard-go\n  interface: \(interface)\n  listen_port: \(wgPort)\n  poll_seconds: 1\n"
            : "  backend: memory\n"
        try "control:\n  listen_addr: 127.0.0.1:\(port)\ndataplane:\n\(plane)".write(toFile: "\(dir)/node.yaml", atomically: true, encoding: .utf8)
        try await start()
    }

    func start() async throws {
        let log = "\(dir)/node.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["run", "--config-dir", dir]
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        process = p
        for _ in 0..<200 {
            if (try? String(contentsOfFile: log, encoding: .utf8))?.contains("control port open") == true { return }
            if !p.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw HarnessError("node \(name) did not open its control port: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    /// SIGKILL: no graceful anything (the wireguard-go child survives and is adopted on restart).
    func kill() {
        guard let p = process else { return }
        Glibc.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    /// Public keys on the data plane itself, read back with `wg` (wireguard-go only).
    func dataPlanePeers() throws -> Set<String>? {
        guard Self.dataPlane == .wireguardGo else { return nil }
        let out = try Self.run("/usr/bin/wg", ["show", interface, "peers"])
        return Set(out.split(separator: "\n").map(String.init))
    }

    func stop() {
        if let p = process, p.isRunning {
            p.terminate()
            p.waitUntilExit()
        }
        process = nil
        if Self.dataPlane == .wireguardGo { _ = try? Self.run("/sbin/ip", ["link", "del", interface]) }
    }

    deinit { stop() }

    /// Runs `tool`; its stdout, or an error when it exits non-zero.
    static func run(_ tool: String, _ arguments: [String]) throws -> String {
        let result = try Tool.run(tool, arguments, mergingStandardError: false)
        guard result.status == 0 else { throw HarnessError("\(tool) \(arguments.joined(separator: " ")) exited \(result.status)") }
        return result.output
    }
}

extension NodeProcess {
    /// Interfaces a crashed earlier run left behind (their wireguard-go exits with them).
    static func removeLeftoverInterfaces() {
        guard dataPlane == .wireguardGo, let links = try? run("/sbin/ip", ["-o", "link"]) else { return }
        for line in links.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 1 else { continue }
            let name = fields[1].trimmingCharacters(in: CharacterSet(charactersIn: ":")).split(separator: "@").first.map(String.init) ?? ""
            if name.hasPrefix("pcx") { _ = try? run("/sbin/ip", ["link", "del", name]) }
        }
    }
}
