import Foundation

extension StoreTransaction {
    public func insert(_ node: NodeRecord) throws {
        if try sql.count("SELECT COUNT(*) FROM nodes WHERE name = ?", [node.name]) > 0 {
            throw StoreError.duplicate(kind: "node", field: "name", value: node.name)
        }
        try sql.insert(node)
    }

    /// By ID or by name.
    public func node(_ reference: String) throws -> NodeRecord {
        if let node = try sql.find(NodeRecord.self, key: reference) { return node }
        if let node = try sql.first(NodeRecord.self, where: "name = ?", [reference]) { return node }
        throw StoreError.notFound(kind: "node", id: reference)
    }

    public func nodes() throws -> [NodeRecord] {
        try sql.all(NodeRecord.self, orderBy: "name")
    }

    /// An operator's edit (name, region, policy flags): fenced by `version`.
    public func update(_ node: NodeRecord, expectedVersion: Int64) throws -> NodeRecord {
        var next = node
        next.version = try checkVersion(table: "nodes", kind: "node", id: node.id, expected: expectedVersion)
        next.updatedAt = now
        try sql.update(next)
        return next
    }

    /// The next config revision of `nodeID`: bumped in the transaction that changes its peers.
    @discardableResult
    public func bumpRevision(node nodeID: String) throws -> Int64 {
        try sql.execute("UPDATE nodes SET config_revision = config_revision + 1 WHERE id = ?", [nodeID])
        return try sql.value(Int64.self, "SELECT config_revision FROM nodes WHERE id = ?", [nodeID]) ?? 0
    }

    /// Moves `nodeID`'s intended revision past `floor` (a node found ahead of the store).
    @discardableResult
    public func raiseRevision(node nodeID: String, above floor: Int64) throws -> Int64 {
        try sql.execute("UPDATE nodes SET config_revision = CASE WHEN config_revision > ? THEN config_revision ELSE ? END + 1 WHERE id = ?",
                        [floor, floor, nodeID])
        return try sql.value(Int64.self, "SELECT config_revision FROM nodes WHERE id = ?", [nodeID]) ?? 0
    }

    /// What a GetStatus told us; controller-owned fields, so `version` is not bumped.
    public func recordStatus(node nodeID: String, agentVersion: String, wgPublicKey: String, wgObfuscation: String,
                             xrayPublicKey: String, appliedRevision: Int64) throws {
        try sql.execute("""
            UPDATE nodes SET agent_version = ?, wg_public_key = ?, wg_obfuscation = ?, xray_public_key = ?,
                applied_revision = ?, missed_polls = 0, last_seen_at = ?, last_error = '',
                status = CASE WHEN status IN ('pending','unreachable','error','provisioning') THEN 'active' ELSE status END
            WHERE id = ?
            """, [agentVersion, wgPublicKey, wgObfuscation, xrayPublicKey.isEmpty ? nil : xrayPublicKey,
                             appliedRevision, now, nodeID])
    }

    public func recordApplied(node nodeID: String, revision: Int64) throws {
        try sql.execute("""
            UPDATE nodes SET applied_revision = CASE WHEN applied_revision > ? THEN applied_revision ELSE ? END,
                missed_polls = 0, last_seen_at = ?, last_error = '' WHERE id = ?
            """, [revision, revision, now, nodeID])
    }

    /// A failed poll; after `limit` in a row the node is marked unreachable. Returns the new status.
    @discardableResult
    public func recordMissedPoll(node nodeID: String, error: String, limit: Int) throws -> NodeStatus? {
        try sql.execute("""
            UPDATE nodes SET missed_polls = missed_polls + 1, last_error = ?,
                status = CASE WHEN missed_polls + 1 >= ? AND status != 'stopped' THEN 'unreachable' ELSE status END
            WHERE id = ?
            """, [error, limit, nodeID])
        return try sql.value(NodeStatus.self, "SELECT status FROM nodes WHERE id = ?", [nodeID])
    }

    public func deleteNode(_ nodeID: String) throws {
        guard try sql.delete(NodeRecord.self, key: nodeID) else { throw StoreError.notFound(kind: "node", id: nodeID) }
    }

    public func insertNodeCertificate(nodeID: String, serial: String, certificatePEM: String, notAfter: Int64) throws {
        try sql.execute("INSERT INTO node_certs (id, node_id, serial, cert_pem, not_after, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                        [EntityID.make(.nodeCert), nodeID, serial, certificatePEM, notAfter, now])
    }
}
