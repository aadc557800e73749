import Foundation

public enum ProfileProtocol: String, Codable, Sendable, CaseIterable, SQLStringEnum {
    case amneziawg
    case xrayReality = "xray-reality"
    case both

    public var includesAmneziaWG: Bool { self != .xrayReality }
    public var includesXRay: Bool { self != .amneziawg }
}

/// What a user (or one of their devices) may use: a node (or a path) and protocols.
public struct ProfileSpecRecord: Codable, Sendable, Equatable, SQLRecord {
    public static let tableName = "profile_specs"

    public var id: String
    public var userID: String
    /// Nil: every device of the user.
    public var deviceID: String?
    public var name: String
    public var pathID: String?
    public var nodeID: String?
    /// Subset of the node's entry IPs, comma-separated; empty = all.
    public var entryIPs: String
    public var `protocol`: ProfileProtocol
    public var version: Int64
    public var createdAt: Int64
    public var updatedAt: Int64

    enum CodingKeys: String, CodingKey {
        case id, name, `protocol`, version
        case userID = "user_id", deviceID = "device_id", pathID = "path_id", nodeID = "node_id"
        case entryIPs = "entry_ips", createdAt = "created_at", updatedAt = "updated_at"
    }
}
