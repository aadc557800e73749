import Foundation
import PharosConfig
import PharosSpec

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

    /// `listenAddress` as a bind host and port.
    public func listenHostPort() throws(ConfigError) -> HostPort {
        try Self.schema.listenAddress(listenAddress, key: "control.listen_addr")
    }
}

extension NodeConfig {
    /// The settings of `node.yaml`, each overridable by `NODE_<SECTION>_<KEY>`.
    static let schema = ConfigSchema<NodeConfig>(component: "node", environmentPrefix: "NODE_", keys: [
        .listen("control.listen_addr", \.listenAddress),
        .logLevel("log.level", \.logLevel),
        .oneOf("dataplane.backend", \.backend),
        .text("dataplane.binary", \.binaryPath),
        .init("dataplane.interface") { c, v throws(ConfigValueError) in
            guard !v.isEmpty, v.count <= 15, v.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
                throw ConfigValueError(expected: "an interface name of 1-15 letters, digits, - or _")
            }
            c.interfaceName = v
        },
        .int("dataplane.listen_port", \.listenPort, 1...65535),
        .text("dataplane.address", \.address),
        .text("xray.binary", \.xrayBinary),
        .int("dataplane.poll_seconds", \.pollSeconds, 1...300, unit: "seconds"),
        .int("dataplane.mtu", \.mtu, 1280...9000),
    ])

    /// Reads `path` when it exists (a missing file means defaults), then applies overrides.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError) -> NodeConfig {
        try schema.load(path: path, defaults: NodeConfig(), environment: environment)
    }
}
