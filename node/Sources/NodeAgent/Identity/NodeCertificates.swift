import Crypto
import Foundation
import Logging
import NIOSSL
import PharosRuntime
import PharosSpec
import PharosTLS
import X509

/// The node's TLS identity while it runs, and its renewal (issue #20).
///
/// - At start: the leaf the operator installed (`node.crt` + `node.key` in the config
///   directory) or the one the controller renewed it to (`node-renewed.pem` in the state
///   directory, key and chain in one file so they are replaced together), whichever was
///   issued last. A renewed file that does not load is reported and passed over.
/// - Renewal, driven by the controller: `beginRenewal` makes a fresh P-256 key, kept pending
///   (0600, never sent) and answers a CSR for it; `install` takes the chain the controller
///   signed, checks it (the pending key, the Fleet CA under our root, our own node ID,
///   server auth, in date), stores it and swaps it into the control port's TLS context, so
///   the next handshake presents it while open connections and tunnels stay as they are.
/// - The controller leaves revoked before they expire (`denied`), kept on disk and checked
///   at every handshake.
public actor NodeCertificates {
    public typealias Failure = RenewalFailure

    let paths: NodePaths
    public nonisolated let roots: TrustRoots
    let logger: Logger
    public private(set) var identity: TLSIdentity
    /// What the control port hands every new TLS connection.
    public nonisolated let context: SwappableTLSContext
    /// Controller leaves the control port refuses.
    public nonisolated let denied: DeniedCertificates
    /// The CA after the node's leaf in its chain (the Fleet CA): the controller's leaf and
    /// every renewed node leaf must be issued by it.
    public nonisolated let fleetCA: [Certificate]

    public init(paths: NodePaths, logger: Logger) throws {
        self.paths = paths
        self.logger = logger
        roots = try TrustRoots(path: paths.caCertificate)
        identity = try Self.loadIdentity(paths: paths, logger: logger)
        fleetCA = Array(identity.certificates.dropFirst())
        guard !fleetCA.isEmpty else {
            throw TLSSetupError.invalidCertificate(source: paths.certificate, reason: "must hold the node leaf followed by the Fleet CA")
        }
        context = SwappableTLSContext(try Self.serverContext(identity: identity, roots: roots))
        denied = DeniedCertificates(try Self.loadDenied(path: paths.deniedControllers))
    }


    static func serverContext(identity: TLSIdentity, roots: TrustRoots) throws -> NIOSSLContext {
        try NIOSSLContext(configuration: PharosTLSConfiguration.server(identity: identity, roots: roots,
                                                                       applicationProtocols: ["grpc-exp", "h2"]))
    }

    /// The enrolled identity, or the renewed one when it was issued later and loads.
    static func loadIdentity(paths: NodePaths, logger: Logger) throws -> TLSIdentity {
        let enrolled = try TLSIdentity(certificatePath: paths.certificate, keyPath: paths.key)
        switch RenewedIdentityFile.choose(path: paths.renewedIdentity, over: enrolled) {
        case .none:
            return enrolled
        case .renewed(let renewed, _):
            return renewed
        case .installedIsNewer:
            logger.info("the enrolled certificate is newer than the renewed one (re-enrolled?): using it",
                        metadata: ["renewed": "\(paths.renewedIdentity)"])
            return enrolled
        case .unreadable(let reason):
            logger.warning("renewed certificate ignored", metadata: ["path": "\(paths.renewedIdentity)", "error": "\(reason)"])
            return enrolled
        }
    }

    static func loadDenied(path: String) throws -> Set<String> {
        guard let bytes = try AtomicFile.read(path) else { return [] }
        do { return Set(try JSONDecoder().decode([String].self, from: Data(bytes))) } catch {
            throw Failure.storage("\(path) does not hold a JSON list of serials: \(error)")
        }
    }

    /// A fresh key, kept pending, and a CSR for it; the subject names our node ID (cosmetic).
    public func beginRenewal() throws(Failure) -> (csrPEM: String, current: Certificate) {
        let key = P256.Signing.PrivateKey()
        do {
            try AtomicFile.write(Array(key.pemRepresentation.utf8), to: paths.pendingKey, mode: 0o600)
            let csr = try CertificateSigningRequest(
                version: .v1, subject: try DistinguishedName { CommonName(identity.leaf.commonNames.first ?? "pharos-node") },
                privateKey: Certificate.PrivateKey(key), attributes: CertificateSigningRequest.Attributes(),
                signatureAlgorithm: .ecdsaWithSHA256)
            return (try csr.serializeAsPEM().pemString + "\n", identity.leaf)
        } catch {
            throw Failure.storage("\(error)")
        }
    }

    /// Checks and installs the chain the controller signed for the pending key.
    public func install(chainPEM: String) async throws(Failure) -> Certificate {
        guard let keyBytes = try? AtomicFile.read(paths.pendingKey) else { throw .noPendingKey }
        let keyPEM = String(decoding: keyBytes, as: UTF8.self)
        let renewed = try await RenewedIdentityFile.verify(
            chainPEM: chainPEM, keyPEM: keyPEM, roots: roots,
            requirements: PeerRequirements(usage: .serverAuth, issuers: fleetCA, organizations: [PharosIdentity.Organization.fleet],
                                           commonNames: Set(identity.leaf.commonNames)),
            source: "InstallCertificate")
        // The actor may have run another call during that await: another install (which spent
        // the pending key) or a BeginRenewal (which replaced it). Only the key still pending counts.
        guard let stillPending = try? AtomicFile.read(paths.pendingKey), stillPending == keyBytes else { throw .noPendingKey }
        let context: NIOSSLContext
        do { context = try Self.serverContext(identity: renewed, roots: roots) } catch { throw .refused("\(error)") }
        do {
            // Key and chain in one file, replaced in one rename: never a chain without its key.
            try RenewedIdentityFile.write(keyPEM: keyPEM, chainPEM: chainPEM, to: paths.renewedIdentity)
        } catch {
            throw .storage("\(error)")
        }
        try? FileManager.default.removeItem(atPath: paths.pendingKey)
        self.context.replace(with: context)
        identity = renewed
        logger.info("certificate renewed", metadata: ["serial": "\(renewed.leaf.serialHex)",
                                                     "not_after": "\(renewed.leaf.notValidAfter)"])
        return renewed.leaf
    }

    /// Replaces the controller leaves refused at the handshake; on disk first.
    public func setDenied(_ serials: Set<String>) throws(Failure) {
        let sorted = serials.map { $0.lowercased() }.sorted()
        guard sorted.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isHexDigit) }) else {
            throw .refused("a serial must be hexadecimal")
        }
        do {
            let data = try JSONEncoder().encode(sorted)
            try AtomicFile.write(Array(data), to: paths.deniedControllers, mode: 0o600)
        } catch {
            throw .storage("\(error)")
        }
        denied.replace(with: Set(sorted))
        if !sorted.isEmpty { logger.info("controller certificates denied", metadata: ["count": "\(sorted.count)"]) }
    }
}
