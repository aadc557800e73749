import Foundation

public struct DeviceRecord: Codable, Sendable, Equatable, SQLRecord {
    public static let tableName = "devices"

    public var id: String
    public var userID: String
    public var name: String
    public var platform: String
    public var fingerprint: String?
    public var status: AccessStatus
    /// The device's X25519 key its bundle is sealed to (from enrollment or `--encryption-key`).
    public var encryptionPubkey: Data?
    /// The device's address inside the fleet subnet, e.g. 10.86.0.7.
    public var tunnelIP: String
    public var version: Int64
    public var createdAt: Int64
    public var updatedAt: Int64

    enum CodingKeys: String, CodingKey {
        case id, name, platform, fingerprint, status, version
        case userID = "user_id", encryptionPubkey = "encryption_pubkey", tunnelIP = "tunnel_ip"
        case createdAt = "created_at", updatedAt = "updated_at"
    }
}
