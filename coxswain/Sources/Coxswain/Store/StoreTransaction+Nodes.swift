import GRDB

extension StoreTransaction {
    public func insert(_ node: NodeRecord) throws {
        if try NodeRecord.filter(Column("name") == node.name).fetchCount(db) > 0 {
            throw StoreError.duplicate(kind: "node", field: "name", value: node.name)
        }
        try node.insert(db)
    }

    /// By ID or by name.
    public func node(_ reference: String) throws -> NodeRecord {
        if let node = try NodeRecord.fetchOne(db, key: reference) { return node }
        if let node = try NodeRecord.filter(Column("name") == reference).fetchOne(db) { return node }
        throw StoreError.notFound(kind: "node", id: reference)
    }

    public func nodes() throws -> [NodeRecord] {
        try NodeRecord.order(Column("name")).fetchAll(db)
    }

    /// An operator's edit (name, region, policy flags): fenced by `version`.
    public func update(_ node: NodeRecord, expectedVersion: Int64) throws -> NodeRecord {
        var next = node
        next.version = try checkVersion(table: "nodes", kind: "node", id: node.id, expected: expectedVersion)
        next.updatedAt = now
        try next.update(db)
        return next
    }

    /// The next config revision of `nodeID`: bumped in the transaction that changes its peers.
    @discardableResult
    public func bumpRevision(node nodeID: String) throws -> Int64 {
        try db.execute(sql: "UPDATE nodes SET config_revision = config_revision + 1 WHERE id = ?", arguments: [nodeID])
        return try Int64.fetchOne(db, sql: "SELECT config_revision FROM nodes WHERE id = ?", arguments: [nodeID]) ?? 0
    }

    /// Moves `nodeID`'s intended revision past `floor` (a node found ahead of the store).
    @discardableResult
    public func raiseRevision(node nodeID: String, above floor: Int64) throws -> Int64 {
        try db.execute(sql: "UPDATE nodes SET config_revision = MAX(config_revision, ?) + 1 WHERE id = ?", arguments: [floor, nodeID])
        return try Int64.fetchOne(db, sql: "SELECT config_revision FROM nodes WHERE id = ?", arguments: [nodeID]) ?? 0
    }

    /// What a GetStatus told us; controller-owned fields, so `version` is not bumped.
    public func recordStatus(node nodeID: String, agentVersion: String, wgPublicKey: String, wgObfuscation: String,
                             xrayPublicKey: String, appliedRevision: Int64) throws {
        try db.execute(sql: """
            UPDATE nodes SET agent_version = ?, wg_public_key = ?, wg_obfuscation = ?, xray_public_key = ?,
                applied_revision = ?, missed_polls = 0, last_seen_at = ?, last_error = '',
                status = CASE WHEN status IN ('pending','unreachable','error','provisioning') THEN 'active' ELSE status END
            WHERE id = ?
            """, arguments: [agentVersion, wgPublicKey, wgObfuscation, xrayPublicKey.isEmpty ? nil : xrayPublicKey,
                             appliedRevision, now, nodeID])
    }

    public func recordApplied(node nodeID: String, revision: Int64) throws {
        try db.execute(sql: "UPDATE nodes SET applied_revision = MAX(applied_revision, ?), missed_polls = 0, last_seen_at = ?, last_error = '' WHERE id = ?",
                       arguments: [revision, now, nodeID])
    }

    /// A failed poll; after `limit` in a row the node is marked unreachable. Returns the new status.
    @discardableResult
    public func recordMissedPoll(node nodeID: String, error: String, limit: Int) throws -> NodeStatus? {
        try db.execute(sql: """
            UPDATE nodes SET missed_polls = missed_polls + 1, last_error = ?,
                status = CASE WHEN missed_polls + 1 >= ? AND status != 'stopped' THEN 'unreachable' ELSE status END
            WHERE id = ?
            """, arguments: [error, limit, nodeID])
        return try NodeStatus.fetchOne(db, sql: "SELECT status FROM nodes WHERE id = ?", arguments: [nodeID])
    }

    public func deleteNode(_ nodeID: String) throws {
        guard try NodeRecord.deleteOne(db, key: nodeID) else { throw StoreError.notFound(kind: "node", id: nodeID) }
    }

    public func insertNodeCertificate(nodeID: String, serial: String, certificatePEM: String, notAfter: Int64) throws {
        try db.execute(sql: "INSERT INTO node_certs (id, node_id, serial, cert_pem, not_after, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                       arguments: [EntityID.make(.nodeCert), nodeID, serial, certificatePEM, notAfter, now])
    }
}
