import Foundation
import NIOCore
import PharosConfig
import PharosSpec
import PharosTLS

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
    /// Client connections open at once, in total and from one source address.
    public var maxConnections = 10_000
    public var maxConnectionsPerAddress = 256
    /// Calls without a device certificate (ClaimEnrollment): in flight in total, from one
    /// address, and the seconds each has to send its whole request.
    public var maxCertlessStreams = 256
    public var maxCertlessStreamsPerAddress = 16
    public var certlessRequestTimeoutSeconds = 10
    /// A device call's open request that sends nothing this long is cancelled.
    public var requestIdleTimeoutSeconds = 60
    /// How often (seconds) the relay looks at its leaf's age; it renews it over its upstream
    /// connection two thirds into its life.
    public var renewalCheckSeconds = 300

    public init() {}

    /// The settings of `relay.yaml`, each overridable by `RELAY_<SECTION>_<KEY>`.
    public static let schema = ConfigSchema<RelayConfig>(component: "relay", environmentPrefix: "RELAY_", keys: [
        .listen("client.listen_addr", \.clientListen),
        .listen("tunnel.listen_addr", \.tunnelListen, allowEmpty: true),
        .text("upstream.socket", \.upstreamSocket),
        .logLevel("log.level", \.logLevel),
        .int("limits.max_message_bytes", \.maxMessageBytes, 1024...(64 << 20), unit: "bytes"),
        .int("limits.max_streams_per_connection", \.maxStreamsPerConnection, 1...10_000),
        .int("limits.max_upstream_streams", \.maxUpstreamStreams, 1...100_000),
        .int("limits.max_connections", \.maxConnections, 1...1_000_000),
        .int("limits.max_connections_per_address", \.maxConnectionsPerAddress, 1...1_000_000),
        .int("limits.max_certless_streams", \.maxCertlessStreams, 1...100_000),
        .int("limits.max_certless_streams_per_address", \.maxCertlessStreamsPerAddress, 1...100_000),
        .int("limits.certless_request_timeout_seconds", \.certlessRequestTimeoutSeconds, 1...600, unit: "seconds"),
        .int("limits.request_idle_timeout_seconds", \.requestIdleTimeoutSeconds, 1...86_400, unit: "seconds"),
        .int("tunnel.keepalive_seconds", \.tunnelKeepaliveSeconds, 1...3600, unit: "seconds"),
        .int("tunnel.keepalive_timeout_seconds", \.tunnelKeepaliveTimeoutSeconds, 1...600, unit: "seconds"),
        .int("renewal.check_seconds", \.renewalCheckSeconds, 1...86_400, unit: "seconds"),
    ])

    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ConfigError) -> RelayConfig {
        let config = try schema.load(path: path, defaults: RelayConfig(), environment: environment)
        if config.tunnelListen.isEmpty, config.upstreamSocket.isEmpty {
            throw .invalid(component: "relay", key: "tunnel.listen_addr", value: "",
                           expected: "a tunnel address, or upstream.socket for a co-located controller")
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
        limits.clientListener.maxConnections = maxConnections
        limits.clientListener.maxConnectionsPerAddress = maxConnectionsPerAddress
        limits.maxCertlessUpstreamStreams = maxCertlessStreams
        limits.maxCertlessStreamsPerAddress = maxCertlessStreamsPerAddress
        limits.certlessRequestTimeout = .seconds(Int64(certlessRequestTimeoutSeconds))
        limits.requestIdleTimeout = .seconds(Int64(requestIdleTimeoutSeconds))
        return limits
    }
}
