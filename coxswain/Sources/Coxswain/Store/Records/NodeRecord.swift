import Foundation
import PharosSpec

public enum NodeStatus: String, Codable, Sendable, CaseIterable, SQLStringEnum {
    case pending, provisioning, active, stopped, unreachable, error
}

/// A row of `nodes`: what the controller knows and intends for one VPN node.
public struct NodeRecord: Codable, Sendable, Equatable, SQLRecord {
    public static let tableName = "nodes"

    public var id: String
    public var name: String
    public var region: String
    public var publicIP: String
    /// `host:port` the controller dials; also the SAN of the node's certificate.
    public var controlAddr: String
    public var status: NodeStatus
    public var agentVersion: String
    public var forwarding: Bool
    public var masquerade: Bool
    public var isolation: Bool
    /// Cached from GetStatus; devices are placed on the node only once these are known.
    public var wgPublicKey: String?
    public var wgObfuscation: String?
    public var xrayPublicKey: String?
    /// Extra entry IPs, comma-separated.
    public var endpointIPs: String
    /// The UDP port clients reach AmneziaWG on (the node's `dataplane.listen_port`).
    public var wgPort: Int
    /// The revision the node must serve; bumped in the transaction of every change to its peers.
    public var configRevision: Int64
    /// The revision the node last reported as applied.
    public var appliedRevision: Int64
    public var missedPolls: Int
    public var lastSeenAt: Int64?
    public var lastError: String
    public var version: Int64
    public var createdAt: Int64
    public var updatedAt: Int64

    enum CodingKeys: String, CodingKey {
        case id, name, region, status, forwarding, masquerade, isolation, version
        case publicIP = "public_ip", controlAddr = "control_addr", agentVersion = "agent_version"
        case wgPublicKey = "wg_public_key", wgObfuscation = "wg_obfuscation", xrayPublicKey = "xray_public_key"
        case endpointIPs = "endpoint_ips", wgPort = "wg_port", configRevision = "config_revision", appliedRevision = "applied_revision"
        case missedPolls = "missed_polls", lastSeenAt = "last_seen_at", lastError = "last_error"
        case createdAt = "created_at", updatedAt = "updated_at"
    }

    /// True once GetStatus has told us the keys clients need.
    public var isPlaceable: Bool { wgPublicKey?.isEmpty == false }

    /// The host part of `controlAddr`: the default public entry of the node.
    public var host: String { (try? HostPort.parse(controlAddr, defaultPort: PharosPorts.nodeControl))?.host ?? controlAddr }
}
