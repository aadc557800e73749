import Foundation

/// One row of the hash-chained audit log.
public struct AuditRecord: Codable, Sendable, Equatable, SQLRecord {
    public static let tableName = "audit_log"

    public var id: String
    /// Microseconds since 1970 UTC (upstream truncates to µs).
    public var at: Int64
    public var actor: String
    /// `cli`, `session` or `token`.
    public var actorKind: String
    public var action: String
    public var targetType: String
    public var targetID: String
    public var sourceIP: String
    public var detail: String
    /// `ok` or `error`.
    public var result: String
    public var error: String
    public var prevHash: String
    public var rowHash: String

    enum CodingKeys: String, CodingKey {
        case id, at, actor, action, detail, result, error
        case actorKind = "actor_kind", targetType = "target_type", targetID = "target_id", sourceIP = "source_ip"
        case prevHash = "prev_hash", rowHash = "row_hash"
    }
}
