import Foundation
import NIOCore
import Yams

/// `relay.yaml` with `RELAY_*` environment overrides; every key has a default.
public struct RelayConfig: Sendable, Equatable {
    /// Public client listener (TLS ≥ 1.2, h2).
    public var clientListen = ":8443"
    /// Where the controller dials in (mTLS 1.3). Empty: no tunnel port (embedded use).
    public var tunnelListen = ":8444"
    /// Forward to a controller's private Unix socket instead of a tunnel (co-located relay).
    public var upstreamSocket = ""
    public var logLevel = "info"
    public var maxMessageBytes = 16 << 20
    public var maxStreamsPerConnection = 100
    public var maxUpstreamStreams = 10_000
    /// A PING on the controller's tunnel this often (seconds) ...
    public var tunnelKeepaliveSeconds = 20
    /// ... and the tunnel is closed when one is not acknowledged within this many seconds.
    public var tunnelKeepaliveTimeoutSeconds = 10

    public init() {}

    public static func hostPort(_ address: String, key: String) throws(RelayConfigError) -> (host: String, port: Int) {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (0...65535).contains(port) else {
            throw .invalid(key: key, value: address, expected: "host:port or :port")
        }
        var host = String(address[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }

    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(RelayConfigError) -> RelayConfig {
        var config = RelayConfig()
        var values: [String: String] = [:]
        if FileManager.default.fileExists(atPath: path) {
            let text: String
            do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw .unreadable(path: path, reason: error.localizedDescription)
            }
            let root: Any?
            do { root = try Yams.load(yaml: text) } catch { throw .unreadable(path: path, reason: "not valid YAML: \(error)") }
            if let root {
                guard let top = root as? [String: Any] else { throw .unreadable(path: path, reason: "the top level must be a mapping") }
                for (section, value) in top {
                    guard let fields = value as? [String: Any] else { throw .unreadable(path: path, reason: "\"\(section)\" must be a mapping") }
                    for (key, v) in fields { values["\(section).\(key)"] = "\(v)" }
                }
            }
        }
        let known = ["client.listen_addr", "tunnel.listen_addr", "upstream.socket", "log.level", "limits.max_message_bytes",
                     "limits.max_streams_per_connection", "limits.max_upstream_streams", "tunnel.keepalive_seconds",
                     "tunnel.keepalive_timeout_seconds"]
        if let unknown = values.keys.sorted().first(where: { !known.contains($0) }) {
            throw .unreadable(path: path, reason: "unknown setting \"\(unknown)\" (known: \(known.joined(separator: ", ")))")
        }
        for key in known {
            let env = "RELAY_" + key.uppercased().replacingOccurrences(of: ".", with: "_")
            if let value = environment[env] { values[key] = value }
        }
        for (key, value) in values {
            switch key {
            case "client.listen_addr": _ = try hostPort(value, key: key); config.clientListen = value
            case "tunnel.listen_addr": if !value.isEmpty { _ = try hostPort(value, key: key) }; config.tunnelListen = value
            case "upstream.socket": config.upstreamSocket = value
            case "log.level":
                guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(value) else {
                    throw .invalid(key: key, value: value, expected: "trace, debug, info, notice, warning, error or critical")
                }
                config.logLevel = value
            case "limits.max_message_bytes":
                guard let n = Int(value), (1024...(64 << 20)).contains(n) else { throw .invalid(key: key, value: value, expected: "1024 to 67108864 bytes") }
                config.maxMessageBytes = n
            case "limits.max_streams_per_connection":
                guard let n = Int(value), (1...10_000).contains(n) else { throw .invalid(key: key, value: value, expected: "1 to 10000") }
                config.maxStreamsPerConnection = n
            case "tunnel.keepalive_seconds":
                guard let n = Int(value), (1...3600).contains(n) else { throw .invalid(key: key, value: value, expected: "1 to 3600 seconds") }
                config.tunnelKeepaliveSeconds = n
            case "tunnel.keepalive_timeout_seconds":
                guard let n = Int(value), (1...600).contains(n) else { throw .invalid(key: key, value: value, expected: "1 to 600 seconds") }
                config.tunnelKeepaliveTimeoutSeconds = n
            case "limits.max_upstream_streams":
                guard let n = Int(value), (1...100_000).contains(n) else { throw .invalid(key: key, value: value, expected: "1 to 100000, below the controller's stream limit") }
                config.maxUpstreamStreams = n
            default: break
            }
        }
        if config.tunnelListen.isEmpty, config.upstreamSocket.isEmpty {
            throw .invalid(key: "tunnel.listen_addr", value: "", expected: "a tunnel address, or upstream.socket for a co-located controller")
        }
        return config
    }

    var limits: HTTP2Limits {
        var limits = HTTP2Limits()
        limits.maxMessageBytes = maxMessageBytes
        limits.maxConcurrentStreamsPerClient = maxStreamsPerConnection
        limits.maxUpstreamStreams = maxUpstreamStreams
        limits.tunnelPingInterval = .seconds(Int64(tunnelKeepaliveSeconds))
        limits.tunnelPingTimeout = .seconds(Int64(tunnelKeepaliveTimeoutSeconds))
        return limits
    }
}

public enum RelayConfigError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case invalid(key: String, value: String, expected: String)
    case cannotListen(key: String, address: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): "cannot read relay config \(path): \(reason)"
        case .invalid(let key, let value, let expected): "relay config: \(key) = \"\(value)\" is invalid; expected \(expected)"
        case .cannotListen(let key, let address, let reason):
            "cannot listen on \(address) (\(key)): \(reason); is another program using that port? Change \(key) in relay.yaml"
        }
    }

    /// A bind failure as the operator should read it: which setting, which address, why.
    static func listening<T>(_ key: String, _ host: String, _ port: Int, _ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as IOError {
            throw RelayConfigError.cannotListen(key: key, address: "\(host):\(port)", reason: String(cString: strerror(error.errnoCode)))
        }
    }
}
