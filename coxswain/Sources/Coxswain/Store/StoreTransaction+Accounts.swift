import Foundation
import GRDB
import PharosTLS
import X509

/// Join-link tickets, account sessions, device certificates and the revocation list, and
/// remote relays. Secrets (tickets, session tokens) are stored only as SHA-256 hex.
extension StoreTransaction {
    // MARK: enrollment tickets

    /// Ends every unused, unexpired join link naming `relayAddress`; how many.
    func expireUnusedTickets(relayAddress: String) throws -> Int {
        try db.execute(sql: "UPDATE enrollment_tickets SET expires_at = ? WHERE relay_addr = ? AND used_at IS NULL AND expires_at > ?",
                       arguments: [now, relayAddress, now])
        return db.changesCount
    }

    public func insertTicket(userID: String, tokenHash: String, relayAddr: String, expiresAt: Int64) throws -> String {
        let id = EntityID.make(.ticket)
        try db.execute(sql: """
            INSERT INTO enrollment_tickets (id, user_id, token_hash, relay_addr, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)
            """, arguments: [id, userID, tokenHash, relayAddr, expiresAt, now])
        return id
    }

    /// Redeems an unused, unexpired ticket for `deviceID` with one conditional UPDATE, so two
    /// concurrent claims of one ticket cannot both win. Nil for any reason it cannot be used.
    public func redeemTicket(tokenHash: String, deviceID: String) throws -> (userID: String, relayAddr: String)? {
        try db.execute(sql: """
            UPDATE enrollment_tickets SET used_at = ?, used_by_device_id = ?
            WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?
            """, arguments: [now, deviceID, tokenHash, now])
        guard db.changesCount == 1,
              let row = try Row.fetchOne(db, sql: "SELECT user_id, relay_addr FROM enrollment_tickets WHERE token_hash = ?",
                                         arguments: [tokenHash]) else { return nil }
        return (row["user_id"], row["relay_addr"])
    }

    /// Whether a ticket with this token is unused and in date (checked again, atomically, by
    /// `redeemTicket`).
    public func ticketIsRedeemable(tokenHash: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM enrollment_tickets WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?)",
                          arguments: [tokenHash, now]) ?? false
    }

    public func pendingTicketCount(user userID: String) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM enrollment_tickets WHERE user_id = ? AND used_at IS NULL AND expires_at > ?",
                         arguments: [userID, now]) ?? 0
    }

    // MARK: sessions

    public func insertSession(userID: String, deviceID: String?, tokenHash: String, expiresAt: Int64) throws {
        try db.execute(sql: """
            INSERT INTO sessions (id, user_id, device_id, token_hash, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)
            """, arguments: [EntityID.make(.session), userID, deviceID, tokenHash, expiresAt, now])
    }

    /// The live session with this token hash: its user and, for certificate logins, its device.
    public func session(tokenHash: String) throws -> (userID: String, deviceID: String?)? {
        guard let row = try Row.fetchOne(db, sql: "SELECT user_id, device_id FROM sessions WHERE token_hash = ? AND expires_at > ?",
                                         arguments: [tokenHash, now]) else { return nil }
        return (row["user_id"], row["device_id"])
    }

    @discardableResult
    public func purgeExpiredSessions() throws -> Int {
        try db.execute(sql: "DELETE FROM sessions WHERE expires_at <= ?", arguments: [now])
        return db.changesCount
    }

    // MARK: device certificates

    public func insertDeviceCertificate(deviceID: String, serial: String, certificatePEM: String, notAfter: Int64) throws {
        try db.execute(sql: """
            INSERT INTO device_certs (id, device_id, serial, cert_pem, not_after, created_at) VALUES (?, ?, ?, ?, ?, ?)
            """, arguments: [EntityID.make(.deviceCert), deviceID, serial, certificatePEM, notAfter, now])
    }

    public func device(fingerprint: String) throws -> DeviceRecord? {
        try DeviceRecord.filter(Column("fingerprint") == fingerprint).fetchOne(db)
    }

    /// Puts the device's certificate on the deny list until it would have expired anyway.
    public func revokeCertificates(of device: DeviceRecord) throws {
        guard let fingerprint = device.fingerprint else { return }
        let notAfter = try Int64.fetchOne(db, sql: "SELECT MAX(not_after) FROM device_certs WHERE device_id = ?",
                                          arguments: [device.id]) ?? (now + 365 * 86_400_000_000)
        try db.execute(sql: "UPDATE device_certs SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL",
                       arguments: [now, device.id])
        for revoked in [fingerprint] + (try pendingFingerprint(device: device.id).map { [$0] } ?? []) {
            try denyDeviceFingerprint(revoked, device: device.id, notAfter: notAfter)
        }
    }

    /// A device certificate on the relays' deny list until `notAfter` (when it expires anyway).
    func denyDeviceFingerprint(_ fingerprint: String, device deviceID: String, notAfter: Int64) throws {
        try db.execute(sql: """
            INSERT OR REPLACE INTO revoked_device_certs (fingerprint, device_id, not_after, revoked_at) VALUES (?, ?, ?, ?)
            """, arguments: [fingerprint, deviceID, notAfter, now])
    }

    /// What relays must refuse: revoked certificates still in date, and the certificates of
    /// disabled devices and of every device of a disabled user (re-enabling lets them back in).
    public func deniedDeviceFingerprints() throws -> Set<String> {
        Set(try String.fetchAll(db, sql: """
            SELECT fingerprint FROM revoked_device_certs WHERE not_after > ?
            UNION
            SELECT d.fingerprint FROM devices d JOIN users u ON u.id = d.user_id
            WHERE d.fingerprint IS NOT NULL AND (d.status = 'disabled' OR u.status = 'disabled')
            UNION
            SELECT d.pending_fingerprint FROM devices d JOIN users u ON u.id = d.user_id
            WHERE d.pending_fingerprint IS NOT NULL AND (d.status = 'disabled' OR u.status = 'disabled')
            """, arguments: [now]))
    }

    // MARK: account keys

    public func setAccountKeys(user userID: String, publicKey: Data, wrappedPrivateKey: Data) throws {
        try db.execute(sql: """
            UPDATE users SET public_key = ?, wrapped_privkey = ?, version = version + 1, updated_at = ? WHERE id = ?
            """, arguments: [publicKey, wrappedPrivateKey, now, userID])
        guard db.changesCount == 1 else { throw StoreError.notFound(kind: "user", id: userID) }
    }

    public func clearAccountKeys(user userID: String) throws {
        try db.execute(sql: "UPDATE users SET public_key = NULL, wrapped_privkey = NULL, version = version + 1, updated_at = ? WHERE id = ?",
                       arguments: [now, userID])
        guard db.changesCount == 1 else { throw StoreError.notFound(kind: "user", id: userID) }
    }

    public func setPasswordHash(user userID: String, hash: String) throws {
        try db.execute(sql: "UPDATE users SET password_hash = ?, version = version + 1, updated_at = ? WHERE id = ?",
                       arguments: [hash, now, userID])
        guard db.changesCount == 1 else { throw StoreError.notFound(kind: "user", id: userID) }
    }

    // MARK: relays

    public func insert(_ relay: RelayRecord) throws {
        if try RelayRecord.filter(Column("name") == relay.name).fetchCount(db) > 0 {
            throw StoreError.duplicate(kind: "relay", field: "name", value: relay.name)
        }
        try relay.insert(db)
    }

    public func relays() throws -> [RelayRecord] { try RelayRecord.order(Column("created_at"), Column("id")).fetchAll(db) }

    /// By ID or name.
    public func relay(_ reference: String) throws -> RelayRecord {
        if let relay = try RelayRecord.fetchOne(db, key: reference) { return relay }
        if let relay = try RelayRecord.filter(Column("name") == reference).fetchOne(db) { return relay }
        throw StoreError.notFound(kind: "relay", id: reference)
    }

    /// The relay and the record of its leaves (revoke those first: `revoked_certs` outlives both).
    public func deleteRelay(_ relayID: String) throws {
        guard try RelayRecord.deleteOne(db, key: relayID) else { throw StoreError.notFound(kind: "relay", id: relayID) }
        try db.execute(sql: "DELETE FROM relay_leaves WHERE relay_id = ?", arguments: [relayID])
    }

    // MARK: relay leaves (#20)

    /// One leaf issued to a relay, as `relay_leaves` keeps it.
    public struct RelayLeaf: Sendable, Equatable {
        public var serial: String
        public var notBefore: Int64
        public var notAfter: Int64
        public var issuedAt: Int64
        /// Empty for a leaf issued before the table existed.
        public var certificatePEM: String

        init(row: Row) {
            (serial, notBefore, notAfter, issuedAt, certificatePEM) = (row["serial"], row["not_before"], row["not_after"], row["issued_at"],
                                                                       row["cert_pem"])
        }

        /// When the relay renews it (`LeafLifetime`: two thirds into its life, at most 20 days in).
        public var renewAt: Date { Certificate.renewalDate(notBefore: StoreClock.date(notBefore), notAfter: StoreClock.date(notAfter)) }
    }

    /// A leaf issued to `relay` (at enrollment or renewal) becomes its current one.
    public func recordRelayLeaf(relay relayID: String, leaf: Certificate) throws {
        let (serial, notAfter) = (leaf.serialHex, FleetPKI.micros(leaf.notValidAfter))
        try db.execute(sql: """
            INSERT INTO relay_leaves (serial, relay_id, not_before, not_after, issued_at, cert_pem) VALUES (?, ?, ?, ?, ?, ?)
            """, arguments: [serial, relayID, FleetPKI.micros(leaf.notValidBefore), notAfter, now, try leaf.pemString()])
        try db.execute(sql: """
            UPDATE relays SET cert_serial = ?, cert_not_after = ?, version = version + 1, updated_at = ? WHERE id = ?
            """, arguments: [serial, notAfter, now, relayID])
        guard db.changesCount == 1 else { throw StoreError.notFound(kind: "relay", id: relayID) }
    }

    /// The relay a leaf was issued to, by its serial (lowercase hex).
    public func relayOwning(serial: String) throws -> RelayRecord? {
        guard let relayID = try String.fetchOne(db, sql: "SELECT relay_id FROM relay_leaves WHERE serial = ?",
                                                arguments: [serial.lowercased()]) else { return nil }
        return try RelayRecord.fetchOne(db, key: relayID)
    }

    /// `relay`'s leaves still in date, newest first.
    public func relayLeaves(relay relayID: String) throws -> [RelayLeaf] {
        try Row.fetchAll(db, sql: """
            SELECT serial, not_before, not_after, issued_at, cert_pem FROM relay_leaves WHERE relay_id = ? AND not_after > ?
            ORDER BY issued_at DESC, rowid DESC
            """, arguments: [relayID, now]).map(RelayLeaf.init(row:))
    }

    /// The relay presented this leaf of its own (at a tunnel handshake, or as the current leaf
    /// of a renewal request). False, and nothing recorded, when the serial is not one of
    /// `relay`'s leaves or is the one already recorded.
    @discardableResult
    public func recordPresentedRelayLeaf(relay relayID: String, serial: String) throws -> Bool {
        let serial = serial.lowercased()
        try db.execute(sql: """
            UPDATE relays SET presented_serial = ?, presented_at = ? WHERE id = ? AND presented_serial != ?
              AND EXISTS (SELECT 1 FROM relay_leaves WHERE serial = ? AND relay_id = ?)
            """, arguments: [serial, now, relayID, serial, serial, relayID])
        return db.changesCount == 1
    }

    public func recordRelayRenewal(relay relayID: String, outcome: String) throws {
        try db.execute(sql: "UPDATE relays SET cert_renewal = ? WHERE id = ?", arguments: [outcome, relayID])
    }

    /// The leaf `relay` serves as far as the controller knows: the one it was last seen
    /// presenting, else (never seen) the one issued to it last, expired or not.
    public func servedRelayLeaf(_ relay: RelayRecord) throws -> RelayLeaf? {
        let serial = relay.presentedSerial.isEmpty ? relay.certSerial : relay.presentedSerial
        return try Row.fetchOne(db, sql: """
            SELECT serial, not_before, not_after, issued_at, cert_pem FROM relay_leaves WHERE relay_id = ? AND serial = ?
            """, arguments: [relay.id, serial]).map(RelayLeaf.init(row:))
    }

    /// How many days the leaves issued to `relay` last.
    public func relayCertificateDays(relay relayID: String) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT cert_days FROM relays WHERE id = ?", arguments: [relayID]) ?? FleetService.relayCertificateDays
    }

    public func setRelayCertificateDays(relay relayID: String, days: Int) throws {
        try db.execute(sql: "UPDATE relays SET cert_days = ? WHERE id = ?", arguments: [days, relayID])
    }
}
