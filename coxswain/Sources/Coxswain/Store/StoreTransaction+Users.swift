import Foundation
import GRDB

extension StoreTransaction {
    public func insert(_ user: UserRecord) throws {
        if let email = user.email, try UserRecord.filter(Column("email") == email).fetchCount(db) > 0 {
            throw StoreError.duplicate(kind: "user", field: "email", value: email)
        }
        try user.insert(db)
    }

    /// By ID or e-mail address.
    public func user(_ reference: String) throws -> UserRecord {
        if let user = try UserRecord.fetchOne(db, key: reference) { return user }
        if let user = try UserRecord.filter(Column("email") == reference.lowercased()).fetchOne(db) { return user }
        throw StoreError.notFound(kind: "user", id: reference)
    }

    public func users() throws -> [UserRecord] { try UserRecord.order(Column("created_at"), Column("id")).fetchAll(db) }

    public func update(_ user: UserRecord, expectedVersion: Int64) throws -> UserRecord {
        var next = user
        next.version = try checkVersion(table: "users", kind: "user", id: user.id, expected: expectedVersion)
        next.updatedAt = now
        try next.update(db)
        return next
    }

    public func deleteUser(_ userID: String) throws {
        try rememberRemovedPeers(where: "d.user_id = ?", userID)
        guard try UserRecord.deleteOne(db, key: userID) else { throw StoreError.notFound(kind: "user", id: userID) }
    }

    // MARK: devices

    public func insert(_ device: DeviceRecord) throws {
        if try DeviceRecord.filter(Column("user_id") == device.userID && Column("name") == device.name).fetchCount(db) > 0 {
            throw StoreError.duplicate(kind: "device", field: "name", value: device.name)
        }
        try device.insert(db)
    }

    public func device(_ deviceID: String) throws -> DeviceRecord {
        guard let device = try DeviceRecord.fetchOne(db, key: deviceID) else { throw StoreError.notFound(kind: "device", id: deviceID) }
        return device
    }

    /// By ID, or by a name only one device has.
    public func device(reference: String) throws -> DeviceRecord {
        if let device = try DeviceRecord.fetchOne(db, key: reference) { return device }
        let named = try DeviceRecord.filter(Column("name") == reference).order(Column("id")).fetchAll(db)
        guard named.count < 2 else { throw StoreError.ambiguous(kind: "device", name: reference, ids: named.map(\.id)) }
        guard let device = named.first else { throw StoreError.notFound(kind: "device", id: reference) }
        return device
    }

    public func devices(user userID: String? = nil) throws -> [DeviceRecord] {
        var request = DeviceRecord.order(Column("created_at"), Column("id"))
        if let userID { request = request.filter(Column("user_id") == userID) }
        return try request.fetchAll(db)
    }

    public func deleteDevice(_ deviceID: String) throws {
        try rememberRemovedPeers(where: "d.id = ?", deviceID)
        guard try DeviceRecord.deleteOne(db, key: deviceID) else { throw StoreError.notFound(kind: "device", id: deviceID) }
    }

    /// The peers about to go with their device: a node that still lets one of their keys in
    /// after the removal reached it is reported as the device's (`revoked_profile_active`).
    private func rememberRemovedPeers(where condition: String, _ argument: String) throws {
        try db.execute(sql: """
            INSERT OR REPLACE INTO removed_peers (peer_id, node_id, device_id, user_id, removed_at)
            SELECT p.id, p.node_id, p.device_id, d.user_id, ? FROM peers p JOIN devices d ON d.id = p.device_id WHERE \(condition)
            """, arguments: [now, argument])
    }

    /// When each of `deviceIDs` was removed (µs), for those that were.
    public func removedDevices(_ deviceIDs: Set<String>) throws -> [String: Int64] {
        let rows = try SQLRequest<Row>(literal: """
            SELECT device_id, MIN(removed_at) AS removed_at FROM removed_peers WHERE device_id IN \(deviceIDs) GROUP BY device_id
            """).fetchAll(db)
        return Dictionary(uniqueKeysWithValues: rows.map { ($0["device_id"] as String, $0["removed_at"] as Int64) })
    }

    /// Removed devices' peers are remembered this long (`retention.audit_days`).
    public func purgeRemovedPeers(olderThan cutoff: Int64) throws -> Int {
        try db.execute(sql: "DELETE FROM removed_peers WHERE removed_at < ?", arguments: [cutoff])
        return db.changesCount
    }

    public func usedTunnelIPs() throws -> Set<String> {
        Set(try String.fetchAll(db, sql: "SELECT tunnel_ip FROM devices"))
    }

    // MARK: profile specs

    public func insert(_ spec: ProfileSpecRecord) throws {
        if try ProfileSpecRecord.filter(Column("user_id") == spec.userID && Column("name") == spec.name).fetchCount(db) > 0 {
            throw StoreError.duplicate(kind: "profile", field: "name", value: spec.name)
        }
        try spec.insert(db)
    }

    public func profileSpec(_ specID: String) throws -> ProfileSpecRecord {
        guard let spec = try ProfileSpecRecord.fetchOne(db, key: specID) else { throw StoreError.notFound(kind: "profile", id: specID) }
        return spec
    }

    public func profileSpecs(user userID: String? = nil) throws -> [ProfileSpecRecord] {
        var request = ProfileSpecRecord.order(Column("created_at"), Column("id"))
        if let userID { request = request.filter(Column("user_id") == userID) }
        return try request.fetchAll(db)
    }

    /// The specs that apply to `device`: its user's, minus those bound to another device.
    public func profileSpecs(for device: DeviceRecord) throws -> [ProfileSpecRecord] {
        try ProfileSpecRecord
            .filter(Column("user_id") == device.userID && (Column("device_id") == nil || Column("device_id") == device.id))
            .order(Column("created_at"), Column("id")).fetchAll(db)
    }

    public func deleteProfileSpec(_ specID: String) throws {
        guard try ProfileSpecRecord.deleteOne(db, key: specID) else { throw StoreError.notFound(kind: "profile", id: specID) }
    }

    // MARK: peers and sealed profiles

    public func peers(node nodeID: String) throws -> [PeerRecord] {
        try PeerRecord.filter(Column("node_id") == nodeID).order(Column("id")).fetchAll(db)
    }

    public func peers(device deviceID: String) throws -> [PeerRecord] {
        try PeerRecord.filter(Column("device_id") == deviceID).order(Column("id")).fetchAll(db)
    }

    public func peerCount(node nodeID: String) throws -> Int {
        try PeerRecord.filter(Column("node_id") == nodeID).fetchCount(db)
    }

    /// Replaces every peer of `deviceID`; returns the nodes whose peer set changed.
    public func replacePeers(device deviceID: String, with peers: [PeerRecord]) throws -> Set<String> {
        let old = try self.peers(device: deviceID)
        try PeerRecord.filter(Column("device_id") == deviceID).deleteAll(db)
        for peer in peers { try peer.insert(db) }
        return Set(old.map(\.nodeID)).union(peers.map(\.nodeID))
    }

    public func upsertProfile(user userID: String, device deviceID: String, revision: Int64, ciphertext: Data) throws {
        if var existing = try ProfileRecord.filter(Column("device_id") == deviceID).fetchOne(db) {
            existing.revision = revision
            existing.ciphertext = ciphertext
            existing.version += 1
            existing.updatedAt = now
            try existing.update(db)
        } else {
            try ProfileRecord(id: EntityID.make(.profile), userID: userID, deviceID: deviceID, revision: revision,
                              ciphertext: ciphertext, version: 1, createdAt: now, updatedAt: now).insert(db)
        }
    }

    public func profile(device deviceID: String) throws -> ProfileRecord? {
        try ProfileRecord.filter(Column("device_id") == deviceID).fetchOne(db)
    }

    public func deleteProfile(device deviceID: String) throws {
        _ = try ProfileRecord.filter(Column("device_id") == deviceID).deleteAll(db)
    }
}
