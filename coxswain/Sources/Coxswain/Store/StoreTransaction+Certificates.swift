import Foundation
import PharosSpec
import PharosTLS
import X509

/// A node's certificate as the store knows it: the one it was last issued.
public struct NodeCertificateState: Sendable, Equatable {
    public var nodeID: String
    public var serial: String
    public var notBefore: Date
    public var notAfter: Date
    /// The lifetime its next leaf gets (`cox nodes enroll --cert-days`).
    public var days: Int
    /// How the last renewal went: "" (never tried), "renewed", "unsupported" (an upstream
    /// agent: it keeps its enrolled leaf), or "failed: <reason>".
    public var renewal: String

    /// Renewal starts at two thirds of the leaf's life.
    public var renewAt: Date { Certificate.renewalDate(notBefore: notBefore, notAfter: notAfter) }
}

/// A certificate revoked before it expired (`revoked_certs`).
public struct RevokedCertificate: Sendable, Equatable {
    public enum Kind: String, Sendable { case node, relay, controller }
    public var serial: String
    public var kind: Kind
    public var name: String
    public var notBefore: Int64
    public var notAfter: Int64
    public var revokedAt: Int64
    public var reason: String
}

extension StoreTransaction {
    /// SQL for the id of the leaf last issued to node `c.node_id` (a renewal to a shorter
    /// lifetime can expire before the leaf it replaced, so not the latest expiry).
    static let currentNodeCertificateID =
        "SELECT id FROM node_certs WHERE node_id = c.node_id ORDER BY created_at DESC, not_after DESC LIMIT 1"

    /// The latest leaf issued to each node (or to `nodeID` alone).
    public func nodeCertificates(node nodeID: String? = nil) throws -> [NodeCertificateState] {
        var conditions = ["c.id = (\(Self.currentNodeCertificateID))"]
        var arguments: [(any SQLBindable)?] = []
        if let nodeID {
            conditions.append("c.node_id = ?")
            arguments.append(nodeID)
        }
        let rows = try sql.rows("""
            SELECT c.node_id, c.cert_pem, n.cert_days, n.cert_renewal FROM node_certs c JOIN nodes n ON n.id = c.node_id
            WHERE \(conditions.joined(separator: " AND "))
            ORDER BY c.node_id
            """, arguments)
        return rows.compactMap { row in
            guard let leaf = Certificate(firstIn: row["cert_pem"]) else { return nil }
            return NodeCertificateState(nodeID: row["node_id"], serial: leaf.serialHex, notBefore: leaf.notValidBefore,
                                        notAfter: leaf.notValidAfter, days: row["cert_days"], renewal: row["cert_renewal"])
        }
    }

    public func setNodeCertificateDays(node nodeID: String, days: Int) throws {
        try sql.execute("UPDATE nodes SET cert_days = ? WHERE id = ?", [days, nodeID])
    }

    public func recordNodeRenewal(node nodeID: String, outcome: String) throws {
        try sql.execute("UPDATE nodes SET cert_renewal = ? WHERE id = ?", [outcome, nodeID])
    }

    /// The leaf a node installed: stored as its current one; its leaves that have expired go.
    public func recordRenewedNodeCertificate(node nodeID: String, leaf: Certificate, chainPEM: String) throws {
        try insertNodeCertificate(nodeID: nodeID, serial: leaf.serialHex, certificatePEM: chainPEM,
                                  notAfter: FleetPKI.micros(leaf.notValidAfter))
        try sql.execute("DELETE FROM node_certs WHERE node_id = ? AND not_after < ?", [nodeID, now])
        try recordNodeRenewal(node: nodeID, outcome: "renewed")
    }

    /// Before a node's row goes: every leaf of it still in date is revoked, so the
    /// certificate is refused at once and `cox pki status` lists it as revoked until it expires.
    func revokeCertificates(ofNode node: NodeRecord, reason: String) throws {
        for row in try sql.rows("SELECT cert_pem FROM node_certs WHERE node_id = ? AND not_after > ?", [node.id, now]) {
            guard let leaf = Certificate(firstIn: row["cert_pem"]) else { continue }
            try insertRevoked(RevokedCertificate(serial: leaf.serialHex, kind: .node, name: node.name,
                                                 notBefore: FleetPKI.micros(leaf.notValidBefore),
                                                 notAfter: FleetPKI.micros(leaf.notValidAfter), revokedAt: now, reason: reason))
        }
    }

    public func insertRevoked(_ revoked: RevokedCertificate) throws {
        try sql.execute("""
            INSERT INTO revoked_certs (serial, kind, name, not_before, not_after, revoked_at, reason)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (serial) DO NOTHING
            """, [revoked.serial, revoked.kind.rawValue, revoked.name, revoked.notBefore, revoked.notAfter,
                  revoked.revokedAt, revoked.reason])
    }

    /// Whether the leaf with this serial (lowercase hex) was revoked before it expired.
    public func isRevoked(serial: String) throws -> Bool {
        try sql.value(Bool.self, "SELECT EXISTS (SELECT 1 FROM revoked_certs WHERE serial = ?)", [serial.lowercased()]) ?? false
    }

    /// Revoked leaves still in date, of one kind or all.
    public func revokedCertificates(kind: RevokedCertificate.Kind? = nil) throws -> [RevokedCertificate] {
        var conditions = ["not_after > ?"]
        var arguments: [(any SQLBindable)?] = [now]
        if let kind {
            conditions.append("kind = ?")
            arguments.append(kind.rawValue)
        }
        return try sql.rows("SELECT * FROM revoked_certs WHERE \(conditions.joined(separator: " AND ")) ORDER BY serial",
                            arguments).compactMap { row in
            guard let kind = RevokedCertificate.Kind(rawValue: row["kind"]) else { return nil }
            return RevokedCertificate(serial: row["serial"], kind: kind, name: row["name"], notBefore: row["not_before"],
                                      notAfter: row["not_after"], revokedAt: row["revoked_at"], reason: row["reason"])
        }
    }
}

// MARK: device renewal

extension StoreTransaction {
    /// The leaf a renewal issued to `device`, not used yet.
    public func pendingFingerprint(device deviceID: String) throws -> String? {
        try sql.value(String.self, "SELECT pending_fingerprint FROM devices WHERE id = ?", [deviceID])
    }

    /// The device a certificate belongs to: its current one, or the one a renewal issued,
    /// presented for the first time. Then that one becomes current and the one it replaces
    /// is revoked (relays refuse it from their next deny-list poll).
    public func deviceUsing(fingerprint: String) throws -> DeviceRecord? {
        if let device = try device(fingerprint: fingerprint) { return device }
        guard let device = try sql.first(DeviceRecord.self, where: "pending_fingerprint = ?", [fingerprint]) else { return nil }
        if let replaced = device.fingerprint { try retireDeviceCertificate(device: device.id, fingerprint: replaced) }
        try sql.execute("UPDATE devices SET fingerprint = ?, pending_fingerprint = NULL WHERE id = ?", [fingerprint, device.id])
        return try sql.find(DeviceRecord.self, key: device.id)
    }

    /// A renewal's leaf: stored, and pending until the device first uses it. A pending leaf
    /// it replaces (the answer to an earlier renewal was lost) is revoked.
    public func recordRenewedDeviceCertificate(device deviceID: String, leaf: Certificate) throws -> String {
        let fingerprint = Fingerprint.certificate(der: try leaf.derBytes())
        if let unused = try pendingFingerprint(device: deviceID) { try retireDeviceCertificate(device: deviceID, fingerprint: unused) }
        try insertDeviceCertificate(deviceID: deviceID, serial: leaf.serialHex, certificatePEM: try leaf.pemString(),
                                    notAfter: FleetPKI.micros(leaf.notValidAfter))
        try sql.execute("UPDATE devices SET pending_fingerprint = ?, cert_renewed_at = ? WHERE id = ?", [fingerprint, now, deviceID])
        return fingerprint
    }

    public func deviceCertificateRenewedAt(device deviceID: String) throws -> Int64? {
        try sql.value(Int64.self, "SELECT cert_renewed_at FROM devices WHERE id = ?", [deviceID])
    }

    /// One of the device's leaves goes on the relays' deny list until it expires.
    func retireDeviceCertificate(device deviceID: String, fingerprint: String) throws {
        var notAfter = now + 365 * 86_400_000_000
        for row in try sql.rows("SELECT id, cert_pem, not_after FROM device_certs WHERE device_id = ?", [deviceID]) {
            guard let der = PEM.decodeAll(type: "CERTIFICATE", from: row["cert_pem"]).first,
                  Fingerprint.certificate(der: der) == fingerprint else { continue }
            notAfter = row["not_after"]
            try sql.execute("UPDATE device_certs SET revoked_at = ? WHERE id = ?", [now, row["id"] as String])
        }
        try denyDeviceFingerprint(fingerprint, device: deviceID, notAfter: notAfter)
    }
}

// MARK: controller leaves

extension StoreTransaction {
    public func recordControllerLeaf(serial: String, notBefore: Int64, notAfter: Int64) throws {
        try sql.execute("""
            INSERT INTO controller_leaves (serial, not_before, not_after, issued_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (serial) DO NOTHING
            """, [serial, notBefore, notAfter, now])
    }

    /// Controller leaves issued and not yet expired at `time`, by serial.
    public func controllerLeaves(inDateAt time: Int64) throws -> [String: (notBefore: Int64, notAfter: Int64)] {
        var leaves: [String: (notBefore: Int64, notAfter: Int64)] = [:]
        for row in try sql.rows("SELECT serial, not_before, not_after FROM controller_leaves WHERE not_after > ?", [time]) {
            leaves[row["serial"]] = (row["not_before"], row["not_after"])
        }
        return leaves
    }
}
