import Crypto
import Foundation
import PharosSpec
import PharosTLS
import X509

/// The controller's key material, loaded from the store or created there at first start:
/// the CA hierarchy, the controller's own client leaf (Fleet CA, ClientAuth) and the
/// Ed25519 profile-signing key.
public struct FleetPKI: Sendable {
    public let authority: CertificateAuthority
    public let controllerCertificatePEM: String
    public let controllerKeyPEM: String
    public let signingKey: Curve25519.Signing.PrivateKey

    /// Controller leaves live a week (#20: a leaked one is worthless soon) and are renewed
    /// when less than a third of their life is left, by any `cox` command that opens the
    /// PKI and by `cox serve` within five minutes.
    public static let controllerValidity: TimeInterval = 7 * 86400

    /// Every `cox` command opens the PKI: a read transaction suffices once everything exists
    /// and the controller leaf is fresh; only the first start and a renewal take the write lock.
    public static func loadOrCreate(in store: Store, now: Date = Date()) throws -> FleetPKI {
        if let existing = try store.readNow({ tx in try load(tx, now: now, creatingMissing: false) }) { return existing }
        return try store.writeNow { tx in try load(tx, now: now, creatingMissing: true)! }
    }

    /// Nil when something is missing or due and `creatingMissing` is false.
    private static func load(_ tx: StoreTransaction, now: Date, creatingMissing: Bool) throws -> FleetPKI? {
        let authority: CertificateAuthority
        let stored = try tx.authorities()
        if stored.isEmpty {
            guard creatingMissing else { return nil }
            authority = try CertificateAuthority.generate(now: now)
            for (role, ca) in [("root", authority.root), ("fleet", authority.fleet), ("device", authority.device)] {
                try tx.insert(StoredAuthority(role: role, certificatePEM: try ca.certificate.pemString(),
                                              keyPEM: ca.key.pemRepresentation, serial: ca.certificate.serialHex,
                                              notBefore: micros(ca.certificate.notValidBefore),
                                              notAfter: micros(ca.certificate.notValidAfter)))
            }
        } else {
            authority = try CertificateAuthority(stored: stored)
        }

        var controller = try tx.controllerCertificate()
        if let current = controller, controllerLeafIsDue(notAfter: current.notAfter, now: now) { controller = nil }
        if controller == nil {
            guard creatingMissing else { return nil }
            controller = try issueControllerLeaf(tx, authority: authority, now: now)
        }

        let signingKey: Curve25519.Signing.PrivateKey
        if let raw = try tx.profileSigningKey() {
            signingKey = try Curve25519.Signing.PrivateKey(rawRepresentation: raw)
        } else {
            guard creatingMissing else { return nil }
            signingKey = Curve25519.Signing.PrivateKey()
            try tx.storeProfileSigningKey(privateKey: signingKey.rawRepresentation,
                                          publicKey: signingKey.publicKey.rawRepresentation)
        }
        guard let controller else { return nil }
        return FleetPKI(authority: authority, controllerCertificatePEM: controller.certificatePEM,
                        controllerKeyPEM: controller.keyPEM, signingKey: signingKey)
    }

    private static func issueControllerLeaf(_ tx: StoreTransaction, authority: CertificateAuthority,
                                            now: Date) throws -> (certificatePEM: String, keyPEM: String, notAfter: Int64) {
        let key = P256.Signing.PrivateKey()
        let leaf = try authority.issue(publicKey: Certificate.PublicKey(key.publicKey), profile: .controller,
                                       validity: controllerValidity, now: now)
        let chainPEM = try leaf.pemString() + authority.fleet.certificate.pemString()
        try tx.storeControllerCertificate(certificatePEM: chainPEM, keyPEM: key.pemRepresentation, notAfter: micros(leaf.notValidAfter))
        try tx.recordControllerLeaf(serial: leaf.serialHex, notBefore: micros(leaf.notValidBefore), notAfter: micros(leaf.notValidAfter))
        return (chainPEM, key.pemRepresentation, micros(leaf.notValidAfter))
    }

    /// `cox pki revoke-controller`: a fresh controller leaf replaces the current one, and every
    /// controller leaf still in date but the fresh one is revoked (the leaked one may have been
    /// renewed since, even by this very command's opening of the PKI). Their serials go on the
    /// deny list every node and relay is sent; `cox serve` picks the new leaf up and sends the
    /// list within five minutes. Returns the revoked serials and the new one.
    public static func revokeControllerLeaf(in store: Store, reason: String, by actor: AuditActor,
                                            now: Date = Date()) throws -> (revoked: [String], current: String) {
        try store.writeNow { tx in
            let authority = try CertificateAuthority(stored: try tx.authorities())
            var inDate = try tx.controllerLeaves(inDateAt: tx.now)
            if let stored = try tx.controllerCertificate(), let leaf = Certificate(firstIn: stored.certificatePEM), leaf.notValidAfter > now {
                // A leaf issued before controller_leaves existed.
                inDate[leaf.serialHex] = (micros(leaf.notValidBefore), micros(leaf.notValidAfter))
            }
            let issued = try issueControllerLeaf(tx, authority: authority, now: now)
            let newSerial = NodeClientPool.serial(of: issued.certificatePEM)
            inDate[newSerial] = nil
            for (serial, validity) in inDate.sorted(by: { $0.key < $1.key }) {
                try tx.insertRevoked(RevokedCertificate(serial: serial, kind: .controller, name: PharosIdentity.CommonName.controller,
                                                        notBefore: validity.notBefore, notAfter: validity.notAfter,
                                                        revokedAt: tx.now, reason: reason))
            }
            let revoked = inDate.keys.sorted()
            try tx.appendAudit(AuditEntry(action: "pki.controller.revoke", targetType: "certificate", targetID: newSerial,
                                          detail: FleetService.detail(["reason": reason, "revoked": revoked.joined(separator: ","),
                                                                       "replacement": newSerial])), by: actor)
            return (revoked, newSerial)
        }
    }

    /// Due at two thirds of its life; a leaf longer than the policy (issued before it
    /// shortened to a week) is replaced at once.
    static func controllerLeafIsDue(notAfter: Int64, now: Date) -> Bool {
        let left = notAfter - micros(now)
        return left < Int64(controllerValidity / 3 * 1_000_000) || left > Int64((controllerValidity + 86400) * 1_000_000)
    }

    static func micros(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970 * 1_000_000) }
}

extension CertificateAuthority {
    init(stored: [StoredAuthority]) throws {
        func load(_ role: String) throws -> Authority {
            guard let row = stored.first(where: { $0.role == role }) else {
                throw StoreError.damaged("the ca table has no \(role) CA")
            }
            return Authority(certificate: try Certificate(pemEncoded: row.certificatePEM),
                             key: try P384.Signing.PrivateKey(pemRepresentation: row.keyPEM))
        }
        self.init(root: try load("root"), fleet: try load("fleet"), device: try load("device"))
    }
}
