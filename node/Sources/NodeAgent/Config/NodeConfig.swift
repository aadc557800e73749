import Foundation
import Yams

/// `node.yaml`, with `NODE_*` environment overrides. Every field has a default, so
/// a node runs with no file at all.
public struct NodeConfig: Sendable, Equatable {
    public enum Backend: String, Sendable, CaseIterable {
        /// Production: amneziawg-go, which speaks the obfuscation set.
        case amneziawgGo = "amneziawg-go"
        /// Debian's plain wireguard-go: no obfuscation (tests and plain-WireGuard fleets).
        case wireguardGo = "wireguard-go"
        /// Benchmark tool only: peers kept in memory, no packets move.
        case memory
    }

    /// `host:port` the mTLS control port binds (`:8444` = every address).
    public var listenAddress = ":8444"
    public var logLevel = "info"
    public var backend = Backend.amneziawgGo
    /// The userspace daemon; empty means the backend's name looked up on PATH.
    public var binaryPath = ""
    public var interfaceName = "awg0"
    public var listenPort = 443
    /// Optional address of the node on its own tunnel interface (CIDR), e.g. 10.86.0.1/16.
    public var address = ""
    public var mtu = 1420
    /// The xray binary; empty = XRay/REALITY configs are rendered but not served.
    public var xrayBinary = ""
    /// How often the observer polls the data plane for handshakes (WatchEvents).
    public var pollSeconds = 5

    public init() {}

    public var socketDirectory: String {
        backend == .amneziawgGo ? "/var/run/amneziawg" : "/var/run/wireguard"
    }

    /// Splits `listenAddress` into a bind host and port.
    public func listenHostPort() throws(NodeConfigError) -> (host: String, port: Int) {
        guard let colon = listenAddress.lastIndex(of: ":"), let port = Int(listenAddress[listenAddress.index(after: colon)...]),
              (0...65535).contains(port) else {
            throw .invalid(key: "control.listen_addr", value: listenAddress, expected: "host:port or :port")
        }
        var host = String(listenAddress[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }
}

public enum NodeConfigError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case invalid(key: String, value: String, expected: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot read node config \(path): \(reason)"
        case .invalid(let key, let value, let expected): "node config: \(key) = \"\(value)\" is invalid; expected \(expected)"
        }
    }
}

extension NodeConfig {
    /// Reads `path` when it exists (a missing file means defaults), then applies overrides.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(NodeConfigError) -> NodeConfig {
        var config = NodeConfig()
        if FileManager.default.fileExists(atPath: path) {
            let text: String
            do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw .unreadable(path: path, reason: (error as NSError).localizedDescription)
            }
            try config.apply(yaml: text, source: path)
        }
        try config.apply(environment: environment)
        return config
    }

    /// The YAML keys, in `section.key` form, and how to set each.
    private static let keys: [(yaml: String, env: String, apply: @Sendable (inout NodeConfig, String) throws(NodeConfigError) -> Void)] = [
        ("control.listen_addr", "NODE_CONTROL_LISTEN_ADDR", { c, v throws(NodeConfigError) in
            c.listenAddress = v
            _ = try c.listenHostPort()
        }),
        ("log.level", "NODE_LOG_LEVEL", { c, v throws(NodeConfigError) in
            guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(v) else {
                throw .invalid(key: "log.level", value: v, expected: "trace, debug, info, notice, warning, error or critical")
            }
            c.logLevel = v
        }),
        ("dataplane.backend", "NODE_DATAPLANE_BACKEND", { c, v throws(NodeConfigError) in
            guard let b = Backend(rawValue: v) else {
                throw .invalid(key: "dataplane.backend", value: v, expected: Backend.allCases.map(\.rawValue).joined(separator: ", "))
            }
            c.backend = b
        }),
        ("dataplane.binary", "NODE_DATAPLANE_BINARY", { c, v throws(NodeConfigError) in c.binaryPath = v }),
        ("dataplane.interface", "NODE_DATAPLANE_INTERFACE", { c, v throws(NodeConfigError) in
            guard !v.isEmpty, v.count <= 15, v.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
                throw .invalid(key: "dataplane.interface", value: v, expected: "an interface name of 1-15 letters, digits, - or _")
            }
            c.interfaceName = v
        }),
        ("dataplane.listen_port", "NODE_DATAPLANE_LISTEN_PORT", { c, v throws(NodeConfigError) in
            guard let p = Int(v), (1...65535).contains(p) else { throw .invalid(key: "dataplane.listen_port", value: v, expected: "a port 1-65535") }
            c.listenPort = p
        }),
        ("dataplane.address", "NODE_DATAPLANE_ADDRESS", { c, v throws(NodeConfigError) in c.address = v }),
        ("xray.binary", "NODE_XRAY_BINARY", { c, v throws(NodeConfigError) in c.xrayBinary = v }),
        ("dataplane.poll_seconds", "NODE_DATAPLANE_POLL_SECONDS", { c, v throws(NodeConfigError) in
            guard let s = Int(v), (1...300).contains(s) else { throw .invalid(key: "dataplane.poll_seconds", value: v, expected: "1-300 seconds") }
            c.pollSeconds = s
        }),
        ("dataplane.mtu", "NODE_DATAPLANE_MTU", { c, v throws(NodeConfigError) in
            guard let m = Int(v), (1280...9000).contains(m) else { throw .invalid(key: "dataplane.mtu", value: v, expected: "an MTU 1280-9000") }
            c.mtu = m
        }),
    ]

    mutating func apply(yaml text: String, source: String) throws(NodeConfigError) {
        let root: Any?
        do { root = try Yams.load(yaml: text) } catch {
            throw .unreadable(path: source, reason: "not valid YAML: \(error)")
        }
        guard let root else { return }
        guard let top = root as? [String: Any] else { throw .unreadable(path: source, reason: "the top level must be a mapping") }
        var flat: [String: String] = [:]
        for (section, value) in top {
            guard let fields = value as? [String: Any] else {
                throw .unreadable(path: source, reason: "\"\(section)\" must be a mapping")
            }
            for (key, v) in fields { flat["\(section).\(key)"] = "\(v)" }
        }
        let known = Set(Self.keys.map(\.yaml))
        if let unknown = flat.keys.sorted().first(where: { !known.contains($0) }) {
            throw .unreadable(path: source, reason: "unknown setting \"\(unknown)\" (known: \(known.sorted().joined(separator: ", ")))")
        }
        for entry in Self.keys { if let v = flat[entry.yaml] { try entry.apply(&self, v) } }
    }

    mutating func apply(environment: [String: String]) throws(NodeConfigError) {
        for entry in Self.keys { if let v = environment[entry.env] { try entry.apply(&self, v) } }
    }
}
