import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import PharosProto
import PharosSpec
import PharosTLS
import PharosTestSupport
import Synchronization
import Testing
import X509
@testable import CaravelCore

/// Issue #19 item 2: the join token leaves the device only for a relay that proves, inside
/// the TLS handshake, that it belongs to the fleet the link pins; a forged answer is refused.
@Suite(.serialized) struct EnrollmentTrustTests {
    /// A stand-in AccountSync server (not a relay: a TLS server with whatever chain a test gives
    /// it) that records every token it receives and answers with `answer`.
    final class Impostor: Pharos_Account_V1_AccountSync.SimpleServiceProtocol, Sendable {
        let tokens = Mutex<[String]>([])
        let answer: @Sendable (Pharos_Account_V1_ClaimEnrollmentRequest) -> Pharos_Account_V1_ClaimEnrollmentResponse

        init(answer: @escaping @Sendable (Pharos_Account_V1_ClaimEnrollmentRequest) -> Pharos_Account_V1_ClaimEnrollmentResponse) {
            self.answer = answer
        }

        func claimEnrollment(request: Pharos_Account_V1_ClaimEnrollmentRequest, context: ServerContext) async throws -> Pharos_Account_V1_ClaimEnrollmentResponse {
            tokens.withLock { $0.append(request.token) }
            return answer(request)
        }
        func authenticate(request: Pharos_Account_V1_AuthenticateRequest, context: ServerContext) async throws -> Pharos_Account_V1_AuthenticateResponse {
            throw RPCError(code: .unimplemented, message: "")
        }
        func enrollKeys(request: Pharos_Account_V1_EnrollKeysRequest, context: ServerContext) async throws -> Pharos_Account_V1_EnrollKeysResponse {
            throw RPCError(code: .unimplemented, message: "")
        }
        func getProfile(request: Pharos_Account_V1_GetProfileRequest, context: ServerContext) async throws -> Pharos_Account_V1_GetProfileResponse {
            throw RPCError(code: .notFound, message: "no profile")
        }
    }

    /// Serves `service` over TLS with `chainPEM` (leaf first) until `body` returns.
    static func serving(_ service: Impostor, chainPEM: String, keyPEM: String, _ body: (Int) async throws -> Void) async throws {
        let chain = PEM.decodeAll(type: "CERTIFICATE", from: chainPEM).map { TLSConfig.CertificateSource.bytes($0, format: .der) }
        let server = GRPCServer(transport: HTTP2ServerTransport.Posix(
            address: .ipv4(host: "127.0.0.1", port: 0),
            transportSecurity: .tls(certificateChain: chain, privateKey: .bytes(Array(keyPEM.utf8), format: .pem))),
                                services: [service])
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            guard let address = try await server.listeningAddress?.ipv4 else { throw HarnessFailure("the impostor did not listen") }
            try await body(address.port)
            server.beginGracefulShutdown()
        }
    }

    struct HarnessFailure: Error { let text: String; init(_ text: String) { self.text = text } }

    /// The fleet the join link names.
    let fleet: TestPKI
    let rootFingerprint: String

    init() throws {
        fleet = try TestPKI()
        rootFingerprint = Fingerprint.caRoot(der: try fleet.root.derBytes())
    }

    func link(port: Int) -> String {
        JoinLink(relay: "127.0.0.1:\(port)", token: "secret-join-token", caFingerprint: rootFingerprint).url
    }

    func enroll(port: Int) async throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("caravel-trust-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        _ = try await Account(store: try ProfileStore(directory: scratch)).enroll(link: link(port: port), deviceName: "laptop")
    }

    /// A self-signed certificate, or a relay leaf of another fleet: the handshake fails in the
    /// device, and the server never sees the token.
    @Test(arguments: ["self-signed", "another fleet", "this fleet's root but a device leaf"])
    func aServerThatCannotShowTheLinksRootNeverSeesTheToken(kind: String) async throws {
        let chainPEM: String, keyPEM: String
        switch kind {
        case "self-signed":
            let key = P256.Signing.PrivateKey()
            let name = try DistinguishedName { CommonName("localhost") }
            let certificate = try Certificate(
                version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: Date() - 60,
                notValidAfter: Date() + 3600, issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions { SubjectAlternativeNames([.dnsName("localhost")]) },
                issuerPrivateKey: .init(key))
            chainPEM = try certificate.serializeAsPEM().pemString
            keyPEM = key.pemRepresentation
        case "another fleet":
            let other = try TestPKI()
            let leaf = try other.leaf(commonName: PharosIdentity.Organization.relay, organization: PharosIdentity.Organization.relay,
                                      usage: [.serverAuth, .clientAuth])
            (chainPEM, keyPEM) = (leaf.certificatePEM + (try other.rootPEM), leaf.keyPEM)
        default:
            let leaf = try fleet.leaf(commonName: "dev_x", organization: PharosIdentity.Organization.device, usage: [.clientAuth], issuer: .device)
            (chainPEM, keyPEM) = (leaf.certificatePEM + (try fleet.rootPEM), leaf.keyPEM)
        }
        let impostor = Impostor { _ in Pharos_Account_V1_ClaimEnrollmentResponse() }
        try await Self.serving(impostor, chainPEM: chainPEM, keyPEM: keyPEM) { port in
            await #expect {
                try await enroll(port: port)
            } throws: { error in
                guard let error = error as? CaravelError, case .untrusted(let message) = error else { return false }
                return message.contains("token was not sent")
            }
        }
        #expect(impostor.tokens.withLock { $0 }.isEmpty, "the join token reached a server outside the fleet")
    }

    /// A relay of the right fleet (or one that stole a relay key) answers with a Fleet CA of
    /// its own: refused, nothing stored.
    @Test func aForgedFleetCAInTheAnswerIsRefused() async throws {
        let relay = try fleet.leaf(commonName: PharosIdentity.Organization.relay, organization: PharosIdentity.Organization.relay,
                                   usage: [.serverAuth, .clientAuth])
        let forger = try TestPKI()
        let root = rootFingerprint
        let forged = try forger.fleet.pemString()
        let impostor = Impostor { request in
            var answer = Pharos_Account_V1_ClaimEnrollmentResponse()
            answer.caFingerprint = root
            answer.fleetCaPem = Data(forged.utf8)
            answer.deviceCertPem = Data("not checked before the Fleet CA".utf8)
            answer.signingPublicKey = Data(Curve25519.Signing.PrivateKey().publicKey.rawRepresentation)
            return answer
        }
        try await Self.serving(impostor, chainPEM: relay.certificatePEM + (try fleet.rootPEM), keyPEM: relay.keyPEM) { port in
            await #expect {
                try await enroll(port: port)
            } throws: { error in
                guard let error = error as? CaravelError, case .untrusted(let message) = error else { return false }
                return message.contains("Fleet CA")
            }
        }
        #expect(impostor.tokens.withLock { $0 } == ["secret-join-token"], "the genuine chain was accepted and the claim sent")
    }

    /// The genuine Fleet CA, but a profile-signing key of the answerer's choosing: with no
    /// endorsement, one by another fleet's root, or the genuine endorsement of another key.
    @Test(arguments: ["none", "another root", "another key"])
    func aSigningKeyTheRootDidNotCertifyIsRefused(kind: String) async throws {
        let relay = try fleet.leaf(commonName: PharosIdentity.Organization.relay, organization: PharosIdentity.Organization.relay,
                                   usage: [.serverAuth, .clientAuth])
        let (root, fleetPEM) = (rootFingerprint, try fleet.fleet.pemString())
        let forgedKey = Array(Curve25519.Signing.PrivateKey().publicKey.rawRepresentation)
        let endorsement: [UInt8] = switch kind {
        case "none": []
        case "another root": try SigningKeyEndorsement.sign(forgedKey, rootKey: try TestPKI().rootKey)
        default: try SigningKeyEndorsement.sign(Array(Curve25519.Signing.PrivateKey().publicKey.rawRepresentation), rootKey: fleet.rootKey)
        }
        let impostor = Impostor { _ in
            var answer = Pharos_Account_V1_ClaimEnrollmentResponse()
            answer.caFingerprint = root
            answer.fleetCaPem = Data(fleetPEM.utf8)
            answer.deviceCertPem = Data("not checked before the signing key".utf8)
            answer.signingPublicKey = Data(forgedKey)
            answer.signingKeyEndorsement = Data(endorsement)
            return answer
        }
        try await Self.serving(impostor, chainPEM: relay.certificatePEM + (try fleet.fleet.pemString()) + (try fleet.rootPEM),
                               keyPEM: relay.keyPEM) { port in
            await #expect {
                try await enroll(port: port)
            } throws: { error in
                guard let error = error as? CaravelError, case .untrusted(let message) = error else { return false }
                return message.contains("profile-signing key") && message.contains("nothing was stored")
            }
        }
        #expect(impostor.tokens.withLock { $0 } == ["secret-join-token"], "the genuine chain was accepted and the claim sent")
    }

    @Test func theRootsEndorsementOfTheKeyIsAccepted() throws {
        let key = Array(Curve25519.Signing.PrivateKey().publicKey.rawRepresentation)
        let endorsement = try SigningKeyEndorsement.sign(key, rootKey: fleet.rootKey)
        let chain = [fleet.root, fleet.root, fleet.root]
        #expect(throws: Never.self) { try Account.checkSigningKey(key, endorsement: endorsement, against: chain) }
        var flipped = key
        flipped[0] ^= 1
        #expect(throws: CaravelError.self) { try Account.checkSigningKey(flipped, endorsement: endorsement, against: chain) }
    }
}
