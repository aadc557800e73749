import Foundation

/// One device's peer on one node (AmneziaWG public key or VLESS UUID).
public struct PeerRecord: Codable, Sendable, Equatable, SQLRecord {
    public static let tableName = "peers"

    public var id: String
    public var nodeID: String
    public var deviceID: String
    public var `protocol`: PeerProtocol
    public var publicKey: String
    public var allowedIP: String
    public var presharedKey: String
    public var flow: String
    public var profileSpecID: String?
    public var createdAt: Int64

    enum CodingKeys: String, CodingKey {
        case id, flow, `protocol`
        case nodeID = "node_id", deviceID = "device_id", publicKey = "public_key", allowedIP = "allowed_ip"
        case presharedKey = "preshared_key", profileSpecID = "profile_spec_id", createdAt = "created_at"
    }
}
