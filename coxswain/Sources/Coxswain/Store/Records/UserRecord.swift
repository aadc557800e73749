import Foundation

public struct UserRecord: Codable, Sendable, Equatable, SQLRecord {
    public static let tableName = "users"

    public var id: String
    public var name: String
    public var email: String?
    public var role: UserRole
    /// The user's X25519 key for account-mode profiles (EnrollKeys), if any.
    public var publicKey: Data?
    public var wrappedPrivkey: Data?
    public var status: AccessStatus
    public var passwordHash: String?
    public var version: Int64
    public var createdAt: Int64
    public var updatedAt: Int64

    enum CodingKeys: String, CodingKey {
        case id, name, email, role, status, version
        case publicKey = "public_key", wrappedPrivkey = "wrapped_privkey", passwordHash = "password_hash"
        case createdAt = "created_at", updatedAt = "updated_at"
    }
}
