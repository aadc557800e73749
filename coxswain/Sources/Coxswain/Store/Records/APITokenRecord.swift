import Foundation

/// Who may call the admin API without a login: readonly < monitor < admin.
public enum TokenScope: String, Codable, Sendable, CaseIterable, Comparable, SQLStringEnum {
    case readonly, monitor, admin

    /// The short form inside a token secret: `cox_ro_…`, `cox_mon_…`, `cox_adm_…`.
    public var secretTag: String {
        switch self {
        case .readonly: "ro"
        case .monitor: "mon"
        case .admin: "adm"
        }
    }

    private var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (a: TokenScope, b: TokenScope) -> Bool { a.rank < b.rank }
}

/// A row of `api_tokens`. The secret is shown once; only its SHA-256 and a display prefix
/// (its first 12 characters) are stored.
public struct APITokenRecord: Codable, Sendable, Equatable, SQLRecord {
    public static let tableName = "api_tokens"

    public var id: String
    public var name: String
    public var scope: TokenScope
    public var tokenHash: String
    public var prefix: String
    public var createdBy: String
    public var expiresAt: Int64?
    public var lastUsedAt: Int64?
    public var revokedAt: Int64?
    public var createdAt: Int64

    enum CodingKeys: String, CodingKey {
        case id, name, scope, prefix
        case tokenHash = "token_hash", createdBy = "created_by", expiresAt = "expires_at", lastUsedAt = "last_used_at"
        case revokedAt = "revoked_at", createdAt = "created_at"
    }
}
