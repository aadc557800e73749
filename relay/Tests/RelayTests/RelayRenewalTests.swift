import Crypto
import Foundation
import PharosProto
import PharosRuntime
import PharosSpec
import PharosTestSupport
import PharosTLS
import Testing
import X509
@testable import Relay

/// The relay's half of renewing its leaf (#20): what it asks with, and what it accepts back.
/// The controller's half, and the whole round trip over a real tunnel, are in coxswain's
/// RelayRenewalTests.
@Suite struct RelayRenewalTests {
    /// A relay config directory as `cox relays enroll` leaves it, with leaves from `pki`.
    static func relayDirectory(_ pki: TestPKI) throws -> (RelayPaths, TestPKI.Leaf) {
        let dir = "/tmp/relay-renew-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let leaf = try pki.leaf(commonName: PharosIdentity.Organization.relay, organization: PharosIdentity.Organization.relay,
                                usage: [.serverAuth, .clientAuth])
        try leaf.write(to: dir, name: "relay")
        try pki.rootPEM.write(toFile: "\(dir)/ca.crt", atomically: true, encoding: .utf8)
        try pki.device.pemString().write(toFile: "\(dir)/device-ca.crt", atomically: true, encoding: .utf8)
        return (RelayPaths(directory: dir, stateDirectory: "\(dir)/state"), leaf)
    }

    static func relayLeaf(_ pki: TestPKI, for key: P256.Signing.PrivateKey, organization: String = PharosIdentity.Organization.relay,
                          ipAddresses: [[UInt8]] = [[127, 0, 0, 1]], notValidAfter: Date = Date() + 30 * 86400) throws -> String {
        try pki.leaf(commonName: organization, organization: organization, usage: [.serverAuth, .clientAuth], ipAddresses: ipAddresses,
                     notValidAfter: notValidAfter, publicKey: Certificate.PublicKey(key.publicKey)).certificatePEM
    }

    @Test func theRequestCarriesACSRForAFreshKeyAndTheCurrentKeysProof() throws {
        let pki = try TestPKI()
        let (paths, installed) = try Self.relayDirectory(pki)
        defer { try? FileManager.default.removeItem(atPath: paths.directory) }
        let certificates = try RelayCertificates(paths: paths, logger: RelayHarness.logger)
        let (key, request) = try certificates.renewalRequest()
        let csr = try CertificateSigningRequest(pemEncoded: request.csrPem)
        #expect(csr.publicKey == Certificate.PublicKey(key.publicKey))
        #expect(csr.publicKey != installed.certificate.publicKey, "a renewal must not reuse the current key")
        #expect(Certificate(firstIn: request.currentCertificatePem) == installed.certificate)
        #expect(PossessionProof.verify(Array(request.possessionSignature), csrPEM: request.csrPem, by: installed.certificate))
        #expect(!FileManager.default.fileExists(atPath: paths.renewedIdentity), "no certificate is stored before the answer")
        // The key is pending (0600) until its certificate is accepted: a retry asks for the same leaf.
        let mode = try FileManager.default.attributesOfItem(atPath: paths.pendingKey)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let retry = try certificates.renewalRequest()
        #expect(retry.key.rawRepresentation == key.rawRepresentation)
        #expect(PossessionProof.verify(Array(retry.request.possessionSignature), csrPEM: retry.request.csrPem, by: installed.certificate))
    }

    /// Whatever comes back over the tunnel is checked: an answer for another key, from another
    /// CA, naming another host, for another kind of peer or already expired changes nothing.
    @Test func onlyALeafForTheFreshKeyFromOurFleetCANamingUsIsAccepted() async throws {
        let pki = try TestPKI()
        let (paths, installed) = try Self.relayDirectory(pki)
        defer { try? FileManager.default.removeItem(atPath: paths.directory) }
        let certificates = try RelayCertificates(paths: paths, logger: RelayHarness.logger)
        let (key, _) = try certificates.renewalRequest()

        let otherKey = try Self.relayLeaf(pki, for: P256.Signing.PrivateKey())
        await #expect(throws: RelayCertificates.Failure.wrongKey) { _ = try await certificates.accept(chainPEM: otherKey, for: key) }
        func refused(_ chainPEM: String) async -> Bool {
            do { _ = try await certificates.accept(chainPEM: chainPEM, for: key) } catch {
                if case .refused = error { return true }
                Issue.record("refused for another reason: \(error)")
            }
            return false
        }
        #expect(await refused(try Self.relayLeaf(try TestPKI(), for: key)), "a leaf from a CA of its own (same names, same key)")
        #expect(await refused(try Self.relayLeaf(pki, for: key, ipAddresses: [[10, 0, 0, 9]])), "a leaf naming another host")
        #expect(await refused(try Self.relayLeaf(pki, for: key, organization: PharosIdentity.Organization.fleet)), "a node's kind of leaf")
        #expect(await refused(try Self.relayLeaf(pki, for: key, notValidAfter: Date() - 60)), "an expired leaf")
        await #expect(throws: RelayCertificates.Failure.self) { _ = try await certificates.accept(chainPEM: "garbage", for: key) }
        #expect(certificates.leaf == installed.certificate)
        #expect(!FileManager.default.fileExists(atPath: paths.renewedIdentity))

        let good = try Self.relayLeaf(pki, for: key)
        let renewed = try await certificates.accept(chainPEM: good, for: key)
        #expect(certificates.leaf == renewed.leaf)
        #expect(!FileManager.default.fileExists(atPath: paths.pendingKey), "the pending key outlived its certificate")
        #expect(try certificates.renewalRequest().key.rawRepresentation != key.rawRepresentation, "the next renewal must rotate the key")
        #expect(try certificates.presented.certificates == [renewed.leaf, pki.fleet, pki.root])
        let mode = try FileManager.default.attributesOfItem(atPath: paths.renewedIdentity)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // The stored file is what openssl accepts as a chain to the installed root.
        #expect(try OpenSSLProbe.verify(paths.renewedIdentity, root: paths.rootCertificate).output == "\(paths.renewedIdentity): OK")
        // A restart presents the renewed leaf, with its key.
        let restarted = try RelayCertificates(paths: paths, logger: RelayHarness.logger)
        #expect(restarted.leaf == renewed.leaf)
        #expect(try restarted.renewalRequest().request.possessionSignature.isEmpty == false)
    }

    @Test func aDamagedRenewedFileYieldsToTheInstalledLeaf() throws {
        let pki = try TestPKI()
        let (paths, installed) = try Self.relayDirectory(pki)
        defer { try? FileManager.default.removeItem(atPath: paths.directory) }
        try FileManager.default.createDirectory(atPath: paths.stateDirectory, withIntermediateDirectories: true)
        try AtomicFile.write(Array("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n".utf8), to: paths.renewedIdentity)
        #expect(try RelayCertificates(paths: paths, logger: RelayHarness.logger).leaf == installed.certificate)
        #expect(FileManager.default.fileExists(atPath: paths.renewedIdentity), "a damaged file is passed over, never deleted")
    }

    /// An upstream controller (or one older than this relay) has no RenewRelayCertificate: the
    /// relay keeps its leaf and says why.
    @Test func aControllerWithoutRenewalLeavesTheRelayOnItsLeaf() async throws {
        try await LoadSensitiveTests.RelayForwardingTests.withRelay(.remote) { relay in
            try relay.relayLeaf.write(to: relay.dir, name: "relay")
            try relay.pki.rootPEM.write(toFile: "\(relay.dir)/ca.crt", atomically: true, encoding: .utf8)
            let certificates = try RelayCertificates(paths: RelayPaths(directory: relay.dir), logger: RelayHarness.logger)
            let renewal = RelayRenewal(certificates: certificates, upstream: relay.upstream, now: { Date() + 365 * 86400 },
                                       logger: RelayHarness.logger) { _ in Issue.record("nothing to apply") }
            #expect(renewal.isDue)
            do {
                try await renewal.renewNow()
                Issue.record("the echo service renewed a certificate")
            } catch let error as UpstreamCallFailed {
                #expect(error.status == 12, "expected UNIMPLEMENTED, got \(error)")
            }
            #expect(certificates.leaf == relay.relayLeaf.certificate)
        }
    }
}
