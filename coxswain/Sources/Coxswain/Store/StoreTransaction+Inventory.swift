import Foundation

/// The rows `certificateInventory()` (`PKI/CertificateInventory.swift`) lists: stored PEMs are
/// parsed there, not here.
extension StoreTransaction {
    /// The CAs (`root`, `fleet`, `device`) as the `ca` table records them.
    func inventoryCAs() throws -> [(role: String, serial: String, notBefore: Int64, notAfter: Int64)] {
        try sql.rows("SELECT role, serial, not_before, not_after FROM ca").map {
            (role: $0["role"] as String, serial: $0["serial"] as String, notBefore: $0["not_before"] as Int64,
             notAfter: $0["not_after"] as Int64)
        }
    }

    /// Each node's current leaf (the one last issued to it), with its chain's PEM.
    func inventoryNodeLeaves() throws -> [(name: String, pem: String, revoked: Bool)] {
        try sql.rows("""
            SELECT n.name, c.cert_pem, c.revoked_at FROM node_certs c JOIN nodes n ON n.id = c.node_id
            WHERE c.id = (\(Self.currentNodeCertificateID))
            """).map { (name: $0["name"] as String, pem: $0["cert_pem"] as String, revoked: $0["revoked_at"] as Int64? != nil) }
    }

    /// Each remote relay's leaves: the one issued last (`cert_serial`) and the one it was last
    /// seen presenting (`presented_serial`, "" before it was seen), one row for each.
    func inventoryRelayLeaves() throws
        -> [(name: String, presentedSerial: String, serial: String, notBefore: Int64, notAfter: Int64, revoked: Bool)] {
        try sql.rows("""
            SELECT r.name, r.presented_serial, l.serial, l.not_before, l.not_after,
                   EXISTS (SELECT 1 FROM revoked_certs v WHERE v.serial = l.serial) AS revoked FROM relays r
            JOIN relay_leaves l ON l.relay_id = r.id AND (l.serial = r.cert_serial OR l.serial = r.presented_serial)
            WHERE r.kind = 'remote'
            """).map {
            (name: $0["name"] as String, presentedSerial: $0["presented_serial"] as String, serial: $0["serial"] as String,
             notBefore: $0["not_before"] as Int64, notAfter: $0["not_after"] as Int64, revoked: $0["revoked"] as Bool)
        }
    }

    /// Every device leaf, with its device's name and its owner (the user's e-mail, else name).
    func inventoryDeviceLeaves() throws -> [(owner: String, name: String, pem: String, revoked: Bool)] {
        try sql.rows("""
            SELECT d.name, COALESCE(u.email, u.name) AS owner, c.cert_pem, c.revoked_at
            FROM device_certs c JOIN devices d ON d.id = c.device_id JOIN users u ON u.id = d.user_id
            """).map {
            (owner: $0["owner"] as String, name: $0["name"] as String, pem: $0["cert_pem"] as String,
             revoked: $0["revoked_at"] as Int64? != nil)
        }
    }

    /// Every row of `revoked_certs`, expired or not; `kind` as stored.
    func inventoryRevoked() throws -> [(kind: String, name: String, serial: String, notBefore: Int64, notAfter: Int64)] {
        try sql.rows("SELECT * FROM revoked_certs").map {
            (kind: $0["kind"] as String, name: $0["name"] as String, serial: $0["serial"] as String,
             notBefore: $0["not_before"] as Int64, notAfter: $0["not_after"] as Int64)
        }
    }
}
