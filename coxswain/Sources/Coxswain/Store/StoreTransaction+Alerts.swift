import Foundation
import PharosSpec

/// Filters of `GET /api/alerts`.
public struct AlertQuery: Sendable {
    public var status: AlertStatus?
    public var kind: String?
    public var severity: AlertSeverity?
    public var nodeID: String?
    public var deviceID: String?
    public var limit: Int
    public var offset: Int

    public init(status: AlertStatus? = nil, kind: String? = nil, severity: AlertSeverity? = nil, nodeID: String? = nil,
                deviceID: String? = nil, limit: Int = 100, offset: Int = 0) {
        self.status = status
        self.kind = kind
        self.severity = severity
        self.nodeID = nodeID
        self.deviceID = deviceID
        self.limit = min(max(limit, 1), 1000)
        self.offset = max(offset, 0)
    }
}

extension StoreTransaction {
    /// Opens the alert for `dedupKey`, or refreshes the one already open (acknowledged counts
    /// as open). Returns the row and whether it is new.
    @discardableResult
    public func raiseAlert(kind: String, severity: AlertSeverity, dedupKey: String, nodeID: String? = nil,
                           deviceID: String? = nil, userID: String? = nil, sourceIPs: [String] = [],
                           detail: String = "{}") throws -> (AlertRecord, isNew: Bool) {
        let addresses = String(decoding: JSONValue.array(sourceIPs.map { .string($0) }).compactBytes(), as: UTF8.self)
        if var open = try sql.first(AlertRecord.self, where: "dedup_key = ? AND status != ?", [dedupKey, AlertStatus.resolved.rawValue]) {
            open.at = now
            open.detail = detail
            if !sourceIPs.isEmpty { open.sourceIPs = addresses }
            open.updatedAt = now
            try sql.update(open)
            return (open, false)
        }
        let alert = AlertRecord(id: EntityID.make(.alert), at: now, kind: kind, severity: severity, deviceID: deviceID,
                                userID: userID, nodeID: nodeID, sourceIPs: addresses, detail: detail, status: .open,
                                dedupKey: dedupKey, version: 1, createdAt: now, updatedAt: now)
        try sql.insert(alert)
        return (alert, true)
    }

    /// Resolves the open alert of `dedupKey` (its condition cleared); nil when none was open.
    @discardableResult
    public func resolveAlert(dedupKey: String) throws -> AlertRecord? {
        guard var open = try sql.first(AlertRecord.self, where: "dedup_key = ? AND status != ?", [dedupKey, AlertStatus.resolved.rawValue])
        else { return nil }
        open.status = .resolved
        open.version += 1
        open.updatedAt = now
        try sql.update(open)
        return open
    }

    public func alert(_ id: String) throws -> AlertRecord {
        guard let alert = try sql.find(AlertRecord.self, key: id) else { throw StoreError.notFound(kind: "alert", id: id) }
        return alert
    }

    /// An operator's acknowledge or resolve: fenced by `version`.
    public func setAlertStatus(_ id: String, to status: AlertStatus, expectedVersion: Int64) throws -> AlertRecord {
        var alert = try self.alert(id)
        alert.version = try checkVersion(table: "alerts", kind: "alert", id: id, expected: expectedVersion)
        alert.status = status
        alert.updatedAt = now
        try sql.update(alert)
        return alert
    }

    /// When the last alert of `dedupKey` was resolved (µs); nil when none was.
    public func lastResolvedAt(dedupKey: String) throws -> Int64? {
        try sql.value(Int64.self, "SELECT MAX(updated_at) FROM alerts WHERE dedup_key = ? AND status = 'resolved'", [dedupKey])
    }

    /// `retention.metrics_days`: resolved alerts last changed before `cutoff` go (open and
    /// acknowledged ones stay however old); how many rows.
    public func purgeResolvedAlerts(olderThan cutoff: Int64) throws -> Int {
        try sql.execute("DELETE FROM alerts WHERE status = 'resolved' AND updated_at < ?", [cutoff])
    }

    /// Newest first, and how many match.
    public func alerts(_ query: AlertQuery) throws -> (items: [AlertRecord], total: Int) {
        var conditions: [String] = []
        var arguments: [(any SQLBindable)?] = []
        if let status = query.status { conditions.append("status = ?"); arguments.append(status.rawValue) }
        if let kind = query.kind { conditions.append("kind = ?"); arguments.append(kind) }
        if let severity = query.severity { conditions.append("severity = ?"); arguments.append(severity.rawValue) }
        if let nodeID = query.nodeID { conditions.append("node_id = ?"); arguments.append(nodeID) }
        if let deviceID = query.deviceID { conditions.append("device_id = ?"); arguments.append(deviceID) }
        let whereClause = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let total = try sql.count("SELECT COUNT(*) FROM alerts\(whereClause)", arguments)
        let items = try sql.records(AlertRecord.self, "SELECT * FROM alerts\(whereClause) ORDER BY at DESC, id DESC LIMIT ? OFFSET ?",
                                    arguments + [query.limit, query.offset])
        return (items, total)
    }
}
