import Foundation

/// A sealed bundle: ciphertext only, the controller cannot read it back.
public struct ProfileRecord: Codable, Sendable, Equatable, SQLRecord {
    public static let tableName = "profiles"

    public var id: String
    public var userID: String
    public var deviceID: String?
    public var revision: Int64
    public var ciphertext: Data
    public var version: Int64
    public var createdAt: Int64
    public var updatedAt: Int64

    enum CodingKeys: String, CodingKey {
        case id, revision, ciphertext, version
        case userID = "user_id", deviceID = "device_id", createdAt = "created_at", updatedAt = "updated_at"
    }
}
