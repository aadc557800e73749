import Foundation

extension StoreTransaction {
    public func insert(_ user: UserRecord) throws {
        if let email = user.email, try sql.count("SELECT COUNT(*) FROM users WHERE email = ?", [email]) > 0 {
            throw StoreError.duplicate(kind: "user", field: "email", value: email)
        }
        try sql.insert(user)
    }

    /// By ID or e-mail address.
    public func user(_ reference: String) throws -> UserRecord {
        if let user = try sql.find(UserRecord.self, key: reference) { return user }
        if let user = try sql.first(UserRecord.self, where: "email = ?", [reference.lowercased()]) { return user }
        throw StoreError.notFound(kind: "user", id: reference)
    }

    public func users() throws -> [UserRecord] { try sql.all(UserRecord.self, orderBy: "created_at, id") }

    public func update(_ user: UserRecord, expectedVersion: Int64) throws -> UserRecord {
        var next = user
        next.version = try checkVersion(table: "users", kind: "user", id: user.id, expected: expectedVersion)
        next.updatedAt = now
        try sql.update(next)
        return next
    }

    public func deleteUser(_ userID: String) throws {
        try rememberRemovedPeers(where: "d.user_id = ?", userID)
        guard try sql.delete(UserRecord.self, key: userID) else { throw StoreError.notFound(kind: "user", id: userID) }
    }

    // MARK: devices

    public func insert(_ device: DeviceRecord) throws {
        if try sql.count("SELECT COUNT(*) FROM devices WHERE user_id = ? AND name = ?", [device.userID, device.name]) > 0 {
            throw StoreError.duplicate(kind: "device", field: "name", value: device.name)
        }
        try sql.insert(device)
    }

    public func device(_ deviceID: String) throws -> DeviceRecord {
        guard let device = try sql.find(DeviceRecord.self, key: deviceID) else { throw StoreError.notFound(kind: "device", id: deviceID) }
        return device
    }

    /// By ID, or by a name only one device has.
    public func device(reference: String) throws -> DeviceRecord {
        if let device = try sql.find(DeviceRecord.self, key: reference) { return device }
        let named = try sql.all(DeviceRecord.self, where: "name = ?", [reference], orderBy: "id")
        guard named.count < 2 else { throw StoreError.ambiguous(kind: "device", name: reference, ids: named.map(\.id)) }
        guard let device = named.first else { throw StoreError.notFound(kind: "device", id: reference) }
        return device
    }

    public func devices(user userID: String? = nil) throws -> [DeviceRecord] {
        guard let userID else { return try sql.all(DeviceRecord.self, orderBy: "created_at, id") }
        return try sql.all(DeviceRecord.self, where: "user_id = ?", [userID], orderBy: "created_at, id")
    }

    public func deleteDevice(_ deviceID: String) throws {
        try rememberRemovedPeers(where: "d.id = ?", deviceID)
        guard try sql.delete(DeviceRecord.self, key: deviceID) else { throw StoreError.notFound(kind: "device", id: deviceID) }
    }

    /// The peers about to go with their device: a node that still lets one of their keys in
    /// after the removal reached it is reported as the device's (`revoked_profile_active`).
    private func rememberRemovedPeers(where condition: String, _ argument: String) throws {
        try sql.execute("""
            INSERT INTO removed_peers (peer_id, node_id, device_id, user_id, removed_at)
            SELECT p.id, p.node_id, p.device_id, d.user_id, ? FROM peers p JOIN devices d ON d.id = p.device_id WHERE \(condition)
            ON CONFLICT (peer_id) DO UPDATE SET
                node_id = excluded.node_id, device_id = excluded.device_id, user_id = excluded.user_id, removed_at = excluded.removed_at
            """, [now, argument])
    }

    /// When each of `deviceIDs` was removed (µs), for those that were.
    public func removedDevices(_ deviceIDs: Set<String>) throws -> [String: Int64] {
        guard !deviceIDs.isEmpty else { return [:] }
        let ids: [(any SQLBindable)?] = deviceIDs.map { $0 }
        let marks = Array(repeating: "?", count: ids.count).joined(separator: ", ")
        let rows = try sql.rows("""
            SELECT device_id, MIN(removed_at) AS removed_at FROM removed_peers WHERE device_id IN (\(marks)) GROUP BY device_id
            """, ids)
        return Dictionary(uniqueKeysWithValues: rows.map { ($0["device_id"] as String, $0["removed_at"] as Int64) })
    }

    /// Removed devices' peers are remembered this long (`retention.audit_days`).
    public func purgeRemovedPeers(olderThan cutoff: Int64) throws -> Int {
        try sql.execute("DELETE FROM removed_peers WHERE removed_at < ?", [cutoff])
    }

    public func usedTunnelIPs() throws -> Set<String> {
        Set(try sql.values(String.self, "SELECT tunnel_ip FROM devices"))
    }

    // MARK: profile specs

    public func insert(_ spec: ProfileSpecRecord) throws {
        if try sql.count("SELECT COUNT(*) FROM profile_specs WHERE user_id = ? AND name = ?", [spec.userID, spec.name]) > 0 {
            throw StoreError.duplicate(kind: "profile", field: "name", value: spec.name)
        }
        try sql.insert(spec)
    }

    public func profileSpec(_ specID: String) throws -> ProfileSpecRecord {
        guard let spec = try sql.find(ProfileSpecRecord.self, key: specID) else { throw StoreError.notFound(kind: "profile", id: specID) }
        return spec
    }

    public func profileSpecs(user userID: String? = nil) throws -> [ProfileSpecRecord] {
        guard let userID else { return try sql.all(ProfileSpecRecord.self, orderBy: "created_at, id") }
        return try sql.all(ProfileSpecRecord.self, where: "user_id = ?", [userID], orderBy: "created_at, id")
    }

    /// The specs that apply to `device`: its user's, minus those bound to another device.
    public func profileSpecs(for device: DeviceRecord) throws -> [ProfileSpecRecord] {
        try sql.all(ProfileSpecRecord.self, where: "user_id = ? AND (device_id IS NULL OR device_id = ?)", [device.userID, device.id],
                    orderBy: "created_at, id")
    }

    public func deleteProfileSpec(_ specID: String) throws {
        guard try sql.delete(ProfileSpecRecord.self, key: specID) else { throw StoreError.notFound(kind: "profile", id: specID) }
    }

    // MARK: peers and sealed profiles

    public func peers(node nodeID: String) throws -> [PeerRecord] {
        try sql.all(PeerRecord.self, where: "node_id = ?", [nodeID], orderBy: "id")
    }

    public func peers(device deviceID: String) throws -> [PeerRecord] {
        try sql.all(PeerRecord.self, where: "device_id = ?", [deviceID], orderBy: "id")
    }

    public func peerCount(node nodeID: String) throws -> Int {
        try sql.count("SELECT COUNT(*) FROM peers WHERE node_id = ?", [nodeID])
    }

    /// Replaces every peer of `deviceID`; returns the nodes whose peer set changed.
    public func replacePeers(device deviceID: String, with peers: [PeerRecord]) throws -> Set<String> {
        let old = try self.peers(device: deviceID)
        try sql.execute("DELETE FROM peers WHERE device_id = ?", [deviceID])
        for peer in peers { try sql.insert(peer) }
        return Set(old.map(\.nodeID)).union(peers.map(\.nodeID))
    }

    public func upsertProfile(user userID: String, device deviceID: String, revision: Int64, ciphertext: Data) throws {
        if var existing = try sql.first(ProfileRecord.self, where: "device_id = ?", [deviceID]) {
            existing.revision = revision
            existing.ciphertext = ciphertext
            existing.version += 1
            existing.updatedAt = now
            try sql.update(existing)
        } else {
            try sql.insert(ProfileRecord(id: EntityID.make(.profile), userID: userID, deviceID: deviceID, revision: revision,
                                         ciphertext: ciphertext, version: 1, createdAt: now, updatedAt: now))
        }
    }

    public func profile(device deviceID: String) throws -> ProfileRecord? {
        try sql.first(ProfileRecord.self, where: "device_id = ?", [deviceID])
    }

    public func deleteProfile(device deviceID: String) throws {
        try sql.execute("DELETE FROM profiles WHERE device_id = ?", [deviceID])
    }
}
