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

    /// Controller leaves are renewed when less than a third of their life is left.
    public static let controllerValidity: TimeInterval = 365 * 86400

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
        if let current = controller, current.notAfter - micros(now) < Int64(controllerValidity / 3 * 1_000_000) { controller = nil }
        if controller == nil {
            guard creatingMissing else { return nil }
            let key = P256.Signing.PrivateKey()
            let leaf = try authority.issue(publicKey: Certificate.PublicKey(key.publicKey), profile: .controller,
                                           validity: controllerValidity, now: now)
            let chainPEM = try leaf.pemString() + authority.fleet.certificate.pemString()
            try tx.storeControllerCertificate(certificatePEM: chainPEM, keyPEM: key.pemRepresentation,
                                              notAfter: micros(leaf.notValidAfter))
            controller = (chainPEM, key.pemRepresentation, micros(leaf.notValidAfter))
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

extension Certificate {
    var serialHex: String { serialNumber.bytes.map { String(format: "%02x", $0) }.joined() }
}
