import Foundation

public enum AlertStatus: String, Codable, Sendable, CaseIterable, SQLStringEnum {
    case open, acknowledged, resolved
}

public enum AlertSeverity: String, Codable, Sendable, CaseIterable, SQLStringEnum {
    case info, warning, critical
}

/// A row of `alerts`: one open alert per `dedup_key` at a time (refreshed in place while
/// the condition lasts), acknowledged or resolved by an operator or resolved automatically.
public struct AlertRecord: Codable, Sendable, Equatable, SQLRecord {
    public static let tableName = "alerts"

    public var id: String
    /// When the condition was last seen (µs).
    public var at: Int64
    public var kind: String
    public var severity: AlertSeverity
    public var deviceID: String?
    public var userID: String?
    public var nodeID: String?
    /// JSON array.
    public var sourceIPs: String
    /// JSON object.
    public var detail: String
    public var status: AlertStatus
    public var dedupKey: String
    public var version: Int64
    public var createdAt: Int64
    public var updatedAt: Int64

    enum CodingKeys: String, CodingKey {
        case id, at, kind, severity, detail, status, version
        case deviceID = "device_id", userID = "user_id", nodeID = "node_id", sourceIPs = "source_ips"
        case dedupKey = "dedup_key", createdAt = "created_at", updatedAt = "updated_at"
    }
}
