import Crypto
import Foundation
import Logging
import PharosProto
import PharosRuntime
import PharosSpec
import PharosTLS
import Synchronization
import X509

/// The relay's TLS identity while it runs, and its renewal (issue #20).
///
/// - At start: the leaf the operator installed (`relay.crt` + `relay.key`) or the one the
///   relay renewed it to (`relay-renewed.pem` in the state directory), whichever was issued
///   last; a renewed file that does not load is reported and passed over.
/// - Renewal: `renewalRequest` makes a fresh P-256 key, kept pending (0600, in the state
///   directory, until its certificate is accepted, so a retry after a lost answer asks for
///   the same leaf) and a CSR for it, signed over with the current leaf's key
///   (`PossessionProof`); `accept` checks the controller's answer (the pending key, issued
///   by our Fleet CA under our root, the same names as the current leaf, a relay leaf, in
///   date) and stores it with its key. The key never leaves the host.
public final class RelayCertificates: Sendable {
    public typealias Failure = RenewalFailure

    struct Current {
        var identity: TLSIdentity
        var key: P256.Signing.PrivateKey
    }

    let paths: RelayPaths
    public let roots: TrustRoots
    /// The CA after the leaf in relay.crt: every renewed leaf must be issued by it.
    public let fleetCA: Certificate
    private let current: Mutex<Current>

    public init(paths: RelayPaths, logger: Logger) throws {
        self.paths = paths
        let installed = try TLSIdentity(certificatePath: paths.certificate, keyPath: paths.key)
        guard installed.certificates.count >= 2 else { throw RelayIdentityError.missingFleetCA(path: paths.certificate) }
        roots = try TrustRoots(path: paths.rootCertificate)
        fleetCA = installed.certificates[1]
        let installedKey = try String(contentsOfFile: paths.key, encoding: .utf8)
        var chosen = Current(identity: installed, key: try Self.key(pem: installedKey, source: paths.key))
        switch RenewedIdentityFile.choose(path: paths.renewedIdentity, over: installed) {
        case .none:
            break
        case .renewed(let renewed, let keyPEM):
            chosen = Current(identity: renewed, key: try Self.key(pem: keyPEM, source: paths.renewedIdentity))
        case .installedIsNewer:
            logger.info("the installed certificate is newer than the renewed one (re-enrolled?): using it",
                        metadata: ["renewed": "\(paths.renewedIdentity)"])
        case .unreadable(let reason):
            logger.warning("renewed certificate ignored", metadata: ["path": "\(paths.renewedIdentity)", "error": "\(reason)"])
        }
        current = Mutex(chosen)
    }

    static func key(pem: String, source: String) throws -> P256.Signing.PrivateKey {
        do { return try P256.Signing.PrivateKey(pemRepresentation: pem) } catch {
            throw TLSSetupError.invalidPrivateKey(source: source, reason: "a relay key must be P-256: \(error)")
        }
    }

    /// Leaf and Fleet CA, with the key.
    public var identity: TLSIdentity { current.withLock { $0.identity } }
    public var leaf: Certificate { identity.leaf }

    /// What the relay's ports present: leaf, Fleet CA and root (an enrolling device pins the
    /// root by hash before its token goes, and has no other copy of it).
    public var presented: TLSIdentity {
        get throws { try identity.presenting(roots.certificates) }
    }

    /// A fresh key and the request for its certificate: the CSR, the current leaf and the
    /// proof that we hold the current leaf's key.
    public func renewalRequest() throws -> (key: P256.Signing.PrivateKey, request: Pharos_Relay_V1_RenewRelayCertificateRequest) {
        let (leaf, currentKey) = current.withLock { ($0.identity.leaf, $0.key) }
        let key = try pendingKey(differentFrom: currentKey)
        let csr = try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName("pharos-relay") }, privateKey: Certificate.PrivateKey(key),
            attributes: CertificateSigningRequest.Attributes(), signatureAlgorithm: .ecdsaWithSHA256)
        var request = Pharos_Relay_V1_RenewRelayCertificateRequest()
        request.csrPem = try csr.serializeAsPEM().pemString + "\n"
        request.currentCertificatePem = try leaf.pemString()
        request.possessionSignature = Data(try PossessionProof.sign(csrPEM: request.csrPem, with: currentKey))
        return (key, request)
    }

    /// The pending key, or a fresh one (stored 0600) when there is none or it is the current
    /// key already (stored, then the process stopped before the pending file went).
    func pendingKey(differentFrom currentKey: P256.Signing.PrivateKey) throws -> P256.Signing.PrivateKey {
        if let bytes = try? AtomicFile.read(paths.pendingKey),
           let pending = try? P256.Signing.PrivateKey(pemRepresentation: String(decoding: bytes, as: UTF8.self)),
           pending.publicKey.rawRepresentation != currentKey.publicKey.rawRepresentation {
            return pending
        }
        let key = P256.Signing.PrivateKey()
        try FileManager.default.createDirectory(atPath: paths.stateDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try AtomicFile.write(Array(key.pemRepresentation.utf8), to: paths.pendingKey, mode: 0o600)
        return key
    }

    /// Checks the chain the controller answered for `key` and makes it the relay's identity,
    /// on disk first (key and chain in one 0600 file). Nothing changes when it is refused.
    public func accept(chainPEM: String, for key: P256.Signing.PrivateKey) async throws(Failure) -> TLSIdentity {
        let renewed = try await RenewedIdentityFile.verify(
            chainPEM: chainPEM, keyPEM: key.pemRepresentation, roots: roots,
            requirements: PeerRequirements(usage: .serverAuth, issuers: [fleetCA], organizations: [PharosIdentity.Organization.relay]),
            source: "RenewRelayCertificate")
        let names = leaf.subjectNames
        guard renewed.leaf.subjectNames == names else {
            throw .refused("it names \(renewed.leaf.subjectNames.sorted()), this relay is \(names.sorted())")
        }
        do {
            try RenewedIdentityFile.write(keyPEM: key.pemRepresentation, chainPEM: chainPEM, to: paths.renewedIdentity)
        } catch {
            throw .storage("\(paths.renewedIdentity): \(error)")
        }
        try? FileManager.default.removeItem(atPath: paths.pendingKey)
        current.withLock { $0 = Current(identity: renewed, key: key) }
        return renewed
    }
}
