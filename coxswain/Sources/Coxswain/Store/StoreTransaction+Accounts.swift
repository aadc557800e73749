import Foundation
import PharosTLS
import X509

/// Join-link tickets, account sessions, device certificates and the revocation list, and
/// remote relays. Secrets (tickets, session tokens) are stored only as SHA-256 hex.
extension StoreTransaction {
    // MARK: enrollment tickets

    /// Ends every unused, unexpired join link naming `relayAddress`; how many.
    func expireUnusedTickets(relayAddress: String) throws -> Int {
        try sql.execute("UPDATE enrollment_tickets SET expires_at = ? WHERE relay_addr = ? AND used_at IS NULL AND expires_at > ?",
                        [now, relayAddress, now])
    }

    public func insertTicket(userID: String, tokenHash: String, relayAddr: String, expiresAt: Int64) throws -> String {
        let id = EntityID.make(.ticket)
        try sql.execute("""
            INSERT INTO enrollment_tickets (id, user_id, token_hash, relay_addr, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)
            """, [id, userID, tokenHash, relayAddr, expiresAt, now])
        return id
    }

    /// Redeems an unused, unexpired ticket for `deviceID` with one conditional UPDATE, so two
    /// concurrent claims of one ticket cannot both win. Nil for any reason it cannot be used.
    public func redeemTicket(tokenHash: String, deviceID: String) throws -> (userID: String, relayAddr: String)? {
        let claimed = try sql.execute("""
            UPDATE enrollment_tickets SET used_at = ?, used_by_device_id = ?
            WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?
            """, [now, deviceID, tokenHash, now])
        guard claimed == 1,
              let row = try sql.row("SELECT user_id, relay_addr FROM enrollment_tickets WHERE token_hash = ?",
                                    [tokenHash]) else { return nil }
        return (row["user_id"], row["relay_addr"])
    }

    /// Whether a ticket with this token is unused and in date (checked again, atomically, by
    /// `redeemTicket`).
    public func ticketIsRedeemable(tokenHash: String) throws -> Bool {
        try sql.value(Bool.self, "SELECT EXISTS (SELECT 1 FROM enrollment_tickets WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?)",
                      [tokenHash, now]) ?? false
    }

    public func pendingTicketCount(user userID: String) throws -> Int {
        try sql.count("SELECT COUNT(*) FROM enrollment_tickets WHERE user_id = ? AND used_at IS NULL AND expires_at > ?",
                      [userID, now])
    }

    // MARK: sessions

    public func insertSession(userID: String, deviceID: String?, tokenHash: String, expiresAt: Int64) throws {
        try sql.execute("""
            INSERT INTO sessions (id, user_id, device_id, token_hash, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)
            """, [EntityID.make(.session), userID, deviceID, tokenHash, expiresAt, now])
    }

    /// The live session with this token hash: its user and, for certificate logins, its device.
    public func session(tokenHash: String) throws -> (userID: String, deviceID: String?)? {
        guard let row = try sql.row("SELECT user_id, device_id FROM sessions WHERE token_hash = ? AND expires_at > ?",
                                    [tokenHash, now]) else { return nil }
        return (row["user_id"], row["device_id"])
    }

    @discardableResult
    public func purgeExpiredSessions() throws -> Int {
        try sql.execute("DELETE FROM sessions WHERE expires_at <= ?", [now])
    }

    // MARK: device certificates

    public func insertDeviceCertificate(deviceID: String, serial: String, certificatePEM: String, notAfter: Int64) throws {
        try sql.execute("""
            INSERT INTO device_certs (id, device_id, serial, cert_pem, not_after, created_at) VALUES (?, ?, ?, ?, ?, ?)
            """, [EntityID.make(.deviceCert), deviceID, serial, certificatePEM, notAfter, now])
    }

    public func device(fingerprint: String) throws -> DeviceRecord? {
        try sql.first(DeviceRecord.self, where: "fingerprint = ?", [fingerprint])
    }

    /// Puts the device's certificate on the deny list until it would have expired anyway.
    public func revokeCertificates(of device: DeviceRecord) throws {
        guard let fingerprint = device.fingerprint else { return }
        let notAfter = try sql.value(Int64.self, "SELECT MAX(not_after) FROM device_certs WHERE device_id = ?",
                                     [device.id]) ?? (now + 365 * 86_400_000_000)
        try sql.execute("UPDATE device_certs SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL",
                        [now, device.id])
        for revoked in [fingerprint] + (try pendingFingerprint(device: device.id).map { [$0] } ?? []) {
            try denyDeviceFingerprint(revoked, device: device.id, notAfter: notAfter)
        }
    }

    /// A device certificate on the relays' deny list until `notAfter` (when it expires anyway).
    func denyDeviceFingerprint(_ fingerprint: String, device deviceID: String, notAfter: Int64) throws {
        try sql.execute("""
            INSERT INTO revoked_device_certs (fingerprint, device_id, not_after, revoked_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (fingerprint) DO UPDATE SET
                device_id = excluded.device_id, not_after = excluded.not_after, revoked_at = excluded.revoked_at
            """, [fingerprint, deviceID, notAfter, now])
    }

    /// What relays must refuse: revoked certificates still in date, and the certificates of
    /// disabled devices and of every device of a disabled user (re-enabling lets them back in).
    public func deniedDeviceFingerprints() throws -> Set<String> {
        Set(try sql.values(String.self, """
            SELECT fingerprint FROM revoked_device_certs WHERE not_after > ?
            UNION
            SELECT d.fingerprint FROM devices d JOIN users u ON u.id = d.user_id
            WHERE d.fingerprint IS NOT NULL AND (d.status = 'disabled' OR u.status = 'disabled')
            UNION
            SELECT d.pending_fingerprint FROM devices d JOIN users u ON u.id = d.user_id
            WHERE d.pending_fingerprint IS NOT NULL AND (d.status = 'disabled' OR u.status = 'disabled')
            """, [now]))
    }

    // MARK: account keys

    public func setAccountKeys(user userID: String, publicKey: Data, wrappedPrivateKey: Data) throws {
        let changed = try sql.execute("""
            UPDATE users SET public_key = ?, wrapped_privkey = ?, version = version + 1, updated_at = ? WHERE id = ?
            """, [publicKey, wrappedPrivateKey, now, userID])
        guard changed == 1 else { throw StoreError.notFound(kind: "user", id: userID) }
    }

    public func clearAccountKeys(user userID: String) throws {
        let changed = try sql.execute("UPDATE users SET public_key = NULL, wrapped_privkey = NULL, version = version + 1, updated_at = ? WHERE id = ?",
                                      [now, userID])
        guard changed == 1 else { throw StoreError.notFound(kind: "user", id: userID) }
    }

    public func setPasswordHash(user userID: String, hash: String) throws {
        let changed = try sql.execute("UPDATE users SET password_hash = ?, version = version + 1, updated_at = ? WHERE id = ?",
                                      [hash, now, userID])
        guard changed == 1 else { throw StoreError.notFound(kind: "user", id: userID) }
    }

    // MARK: relays

    public func insert(_ relay: RelayRecord) throws {
        if try sql.count("SELECT COUNT(*) FROM relays WHERE name = ?", [relay.name]) > 0 {
            throw StoreError.duplicate(kind: "relay", field: "name", value: relay.name)
        }
        try sql.insert(relay)
    }

    public func relays() throws -> [RelayRecord] { try sql.all(RelayRecord.self, orderBy: "created_at, id") }

    /// By ID or name.
    public func relay(_ reference: String) throws -> RelayRecord {
        if let relay = try sql.find(RelayRecord.self, key: reference) { return relay }
        if let relay = try sql.first(RelayRecord.self, where: "name = ?", [reference]) { return relay }
        throw StoreError.notFound(kind: "relay", id: reference)
    }

    /// The relay and the record of its leaves (revoke those first: `revoked_certs` outlives both).
    public func deleteRelay(_ relayID: String) throws {
        guard try sql.delete(RelayRecord.self, key: relayID) else { throw StoreError.notFound(kind: "relay", id: relayID) }
        try sql.execute("DELETE FROM relay_leaves WHERE relay_id = ?", [relayID])
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

        init(row: SQLRow) {
            (serial, notBefore, notAfter, issuedAt, certificatePEM) = (row["serial"], row["not_before"], row["not_after"], row["issued_at"],
                                                                       row["cert_pem"])
        }

        /// When the relay renews it (`LeafLifetime`: two thirds into its life, at most 20 days in).
        public var renewAt: Date { Certificate.renewalDate(notBefore: StoreClock.date(notBefore), notAfter: StoreClock.date(notAfter)) }
    }

    /// A leaf issued to `relay` (at enrollment or renewal) becomes its current one.
    public func recordRelayLeaf(relay relayID: String, leaf: Certificate) throws {
        let (serial, notAfter) = (leaf.serialHex, FleetPKI.micros(leaf.notValidAfter))
        try sql.execute("""
            INSERT INTO relay_leaves (serial, relay_id, not_before, not_after, issued_at, cert_pem) VALUES (?, ?, ?, ?, ?, ?)
            """, [serial, relayID, FleetPKI.micros(leaf.notValidBefore), notAfter, now, try leaf.pemString()])
        let changed = try sql.execute("""
            UPDATE relays SET cert_serial = ?, cert_not_after = ?, version = version + 1, updated_at = ? WHERE id = ?
            """, [serial, notAfter, now, relayID])
        guard changed == 1 else { throw StoreError.notFound(kind: "relay", id: relayID) }
    }

    /// The relay a leaf was issued to, by its serial (lowercase hex).
    public func relayOwning(serial: String) throws -> RelayRecord? {
        guard let relayID = try sql.value(String.self, "SELECT relay_id FROM relay_leaves WHERE serial = ?",
                                          [serial.lowercased()]) else { return nil }
        return try sql.find(RelayRecord.self, key: relayID)
    }

    /// `relay`'s leaves still in date, newest first (two issued in one transaction share
    /// `issued_at`: the one that expires later counts as the newer).
    public func relayLeaves(relay relayID: String) throws -> [RelayLeaf] {
        try sql.rows("""
            SELECT serial, not_before, not_after, issued_at, cert_pem FROM relay_leaves WHERE relay_id = ? AND not_after > ?
            ORDER BY issued_at DESC, not_after DESC, serial DESC
            """, [relayID, now]).map(RelayLeaf.init(row:))
    }

    /// The relay presented this leaf of its own (at a tunnel handshake, or as the current leaf
    /// of a renewal request). False, and nothing recorded, when the serial is not one of
    /// `relay`'s leaves or is the one already recorded.
    @discardableResult
    public func recordPresentedRelayLeaf(relay relayID: String, serial: String) throws -> Bool {
        let serial = serial.lowercased()
        return try sql.execute("""
            UPDATE relays SET presented_serial = ?, presented_at = ? WHERE id = ? AND presented_serial != ?
              AND EXISTS (SELECT 1 FROM relay_leaves WHERE serial = ? AND relay_id = ?)
            """, [serial, now, relayID, serial, serial, relayID]) == 1
    }

    public func recordRelayRenewal(relay relayID: String, outcome: String) throws {
        try sql.execute("UPDATE relays SET cert_renewal = ? WHERE id = ?", [outcome, relayID])
    }

    /// The leaf `relay` serves as far as the controller knows: the one it was last seen
    /// presenting, else (never seen) the one issued to it last, expired or not.
    public func servedRelayLeaf(_ relay: RelayRecord) throws -> RelayLeaf? {
        let serial = relay.presentedSerial.isEmpty ? relay.certSerial : relay.presentedSerial
        return try sql.row("""
            SELECT serial, not_before, not_after, issued_at, cert_pem FROM relay_leaves WHERE relay_id = ? AND serial = ?
            """, [relay.id, serial]).map(RelayLeaf.init(row:))
    }

    /// How many days the leaves issued to `relay` last.
    public func relayCertificateDays(relay relayID: String) throws -> Int {
        try sql.value(Int.self, "SELECT cert_days FROM relays WHERE id = ?", [relayID]) ?? FleetService.relayCertificateDays
    }

    public func setRelayCertificateDays(relay relayID: String, days: Int) throws {
        try sql.execute("UPDATE relays SET cert_days = ? WHERE id = ?", [days, relayID])
    }
}
