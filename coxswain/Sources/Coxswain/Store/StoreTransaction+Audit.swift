import Foundation

/// Filters of `cox audit` and `GET /api/audit`.
public struct AuditQuery: Sendable {
    public var action: String?
    public var actor: String?
    public var target: String?
    public var since: Int64?
    /// Keyset paging: only rows older than this (at, id), i.e. after the last row of a page.
    public var before: (at: Int64, id: String)?
    public var limit: Int

    public static let maximumLimit = 1000

    public init(action: String? = nil, actor: String? = nil, target: String? = nil, since: Int64? = nil, limit: Int = 100) {
        self.action = action
        self.actor = actor
        self.target = target
        self.since = since
        self.limit = min(max(limit, 1), Self.maximumLimit)
    }
}

extension StoreTransaction {
    /// Appends a row to the chain in the caller's transaction, so the audit row commits
    /// with the change it describes. `at` is forced strictly increasing so the chain order
    /// (at, id) is the order of writing even within one microsecond.
    @discardableResult
    public func appendAudit(_ entry: AuditEntry, by actor: AuditActor) throws -> AuditRecord {
        let tail = try sql.row("SELECT at, row_hash FROM audit_log ORDER BY at DESC, id DESC LIMIT 1")
        let lastAt: Int64 = tail?["at"] ?? 0
        var row = AuditRecord(id: EntityID.make(.audit), at: max(now, lastAt + 1), actor: actor.name,
                              actorKind: actor.kind.rawValue, action: entry.action, targetType: entry.targetType,
                              targetID: entry.targetID, sourceIP: actor.sourceIP, detail: entry.detail,
                              result: entry.result, error: entry.error, prevHash: tail?["row_hash"] ?? "", rowHash: "")
        row.rowHash = AuditChain.hash(previous: row.prevHash, row: row)
        try sql.insert(row)
        return row
    }

    /// Newest first, filtered.
    public func auditRows(_ query: AuditQuery) throws -> [AuditRecord] {
        var conditions: [String] = []
        var arguments: [(any SQLBindable)?] = []
        if let action = query.action {
            // The pattern is lowered here, ASCII only, as LOWER() does on both engines' columns.
            conditions.append("(action = ? OR LOWER(action) LIKE ? ESCAPE '\\')")
            arguments += [action, SQLPattern.asciiLowercased(SQLPattern.escaped(action)) + ".%"]
        }
        if let actor = query.actor {
            conditions.append("actor = ?")
            arguments.append(actor)
        }
        if let target = query.target {
            conditions.append("(target_id = ? OR target_type = ?)")
            arguments += [target, target]
        }
        if let since = query.since {
            conditions.append("at >= ?")
            arguments.append(since)
        }
        if let (at, id) = query.before {
            conditions.append("(at < ? OR (at = ? AND id < ?))")
            arguments += [at, at, id]
        }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        return try sql.records(AuditRecord.self, "SELECT * FROM audit_log\(filter) ORDER BY at DESC, id DESC LIMIT ?",
                               arguments + [query.limit])
    }

    /// The whole chain, oldest first, as `cox audit verify` walks it.
    public func auditChain() throws -> [AuditRecord] {
        try sql.all(AuditRecord.self, orderBy: "at, id")
    }

    /// Retention: deletes rows older than `cutoff` and appends an `audit.purge` row naming the
    /// last deleted row's hash, so `verify` can start the surviving chain there.
    public func purgeAudit(olderThan cutoff: Int64, by actor: AuditActor = .controller) throws -> Int {
        guard let last = try sql.first(AuditRecord.self, where: "at < ?", [cutoff], orderBy: "at DESC, id DESC") else {
            return 0
        }
        let purged = try sql.execute("DELETE FROM audit_log WHERE at < ? OR (at = ? AND id <= ?)", [last.at, last.at, last.id])
        try appendAudit(AuditEntry(action: AuditChain.purgeAction, targetType: "audit_log", targetID: "",
                                   detail: "{\"anchor\":\"\(last.rowHash)\",\"rows\":\(purged)}"), by: actor)
        return purged
    }
}
