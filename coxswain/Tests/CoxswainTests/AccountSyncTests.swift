import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import PharosProto
import PharosSpec
import PharosTLS
import PharosTestSupport
import Relay
import Synchronization
import Testing
import X509
@testable import Coxswain

/// `cox serve`'s account plane end to end: a real controller (SQLite, CA, AccountSync on its
/// private socket) behind the real relay — the embedded one, or a remote one running the
/// `relay run` code path, reached over the reverse tunnel the controller dials — and a
/// grpc-swift client that behaves like a device.
final class AccountFleet: @unchecked Sendable {
    enum Transport: String, CaseIterable, Sendable { case embedded, remote }

    static let logger: Logger = {
        var logger = Logger(label: "cox.test")
        logger.logLevel = ProcessInfo.processInfo.environment["COX_TEST_LOG"] == nil ? .critical : .debug
        return logger
    }()

    let state: TestState
    let controller: Controller
    let relayPort: Int
    /// The remote relay's tunnel port.
    let tunnelPort: Int
    private var tasks: [Task<Void, any Error>] = []
    private let served = Mutex<Controller.Served?>(nil)

    /// The remote relay's tunnel as this fleet's `cox serve` sees it, by relay ID.
    func relayTunnels() -> [String: Bool] { served.withLock { $0 }?.relayTunnels() ?? [:] }

    var relayAddr: String { "127.0.0.1:\(relayPort)" }

    /// `relayNow`: the wall clock the remote relay judges its leaf's age by, which it looks at
    /// every `relayRenewalCheckSeconds`.
    init(transport: Transport, relayNow: @escaping @Sendable () -> Date = { Date() }, relayRenewalCheckSeconds: Int = 300) async throws {
        let ports = LoopbackPorts.free(2)
        relayPort = ports[0]
        tunnelPort = ports[1]
        var config = CoxConfig()
        config.relayEmbedded = transport == .embedded
        config.relayClientListen = "127.0.0.1:\(ports[0])"
        config.relayPublicEndpoint = "localhost:\(ports[0])"
        config.reconcileInterval = 2
        config.nodeCallTimeoutSeconds = 1
        config.uiListen = ""
        state = try TestState(config: config)
        controller = Controller(config: config, store: state.store, pki: state.pki, service: state.service)
        if transport == .remote {
            let paths = RelayPaths(directory: "\(state.dir)/relay")
            let enrolled = try await state.service.enrollRelay(csrPEM: try RelayCSR.generate(paths: paths),
                                                               endpoint: "127.0.0.1:\(ports[1])", hostname: "localhost",
                                                               name: "edge-1", publicAddr: relayAddr, by: state.actor)
            try enrolled.certificateChainPEM.write(toFile: paths.certificate, atomically: true, encoding: .utf8)
            try enrolled.rootPEM.write(toFile: paths.rootCertificate, atomically: true, encoding: .utf8)
            try enrolled.deviceCAPEM.write(toFile: paths.deviceCACertificate, atomically: true, encoding: .utf8)
            var relayConfig = RelayConfig()
            relayConfig.clientListen = "127.0.0.1:\(ports[0])"
            relayConfig.tunnelListen = "127.0.0.1:\(ports[1])"
            relayConfig.renewalCheckSeconds = relayRenewalCheckSeconds
            let relayUp = Mutex(false)
            tasks.append(Task {
                try await RelayRunner.run(paths: paths, config: relayConfig, logger: Self.logger, clock: WallClock(relayNow)) { _ in relayUp.withLock { $0 = true } }
            })
            for _ in 0..<200 where !relayUp.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(25)) }
        }
        let controller = self.controller
        tasks.append(Task { [self] in try await controller.serve(logger: Self.logger) { ready in self.served.withLock { $0 = ready } } })
        for _ in 0..<400 where served.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(25)) }
        guard served.withLock({ $0 }) != nil else { throw HarnessError("cox serve did not come up") }
    }

    /// Stops this fleet's `cox serve` alone (the remote relay stays up).
    func stopController() async {
        guard let serve = tasks.last else { return }
        serve.cancel()
        _ = await serve.result
    }

    func stop() async {
        for task in tasks.reversed() {
            task.cancel()
            _ = await task.result
        }
    }

    /// A user with a profile on a ready node (unreachable: pushes fail, which is fine here).
    func userWithProfile(email: String) async throws -> UserRecord {
        let user = try await state.service.addUser(name: email, email: email, by: state.actor)
        let node = try await state.readyNode(name: "node-\(email.prefix(3))")
        _ = try await state.service.createProfileSpec(user: user.id, name: "main", node: node.id, protocol: .amneziawg, by: state.actor)
        return user
    }

    /// A gRPC client to the relay's public port, with a device certificate or none. The
    /// relay's certificate is checked against the fleet root (hostname checks are the
    /// dialer's and caravel's business; here the target is an IP literal).
    func withClient<T: Sendable>(device: Device?, _ body: (Pharos_Account_V1_AccountSync.Client<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
        let trust = TLSConfig.TrustRootsSource.certificates([.bytes(Array(try state.pki.authority.root.certificate.pemString().utf8), format: .pem)])
        let security: HTTP2ClientTransport.Posix.TransportSecurity
        if let device {
            security = .mTLS(certificateChain: [.bytes(Array(device.certificatePEM.utf8), format: .pem)],
                             privateKey: .bytes(Array(device.key.pemRepresentation.utf8), format: .pem)) {
                $0.trustRoots = trust
                $0.serverCertificateVerification = .noHostnameVerification
            }
        } else {
            security = .tls {
                $0.trustRoots = trust
                $0.serverCertificateVerification = .noHostnameVerification
            }
        }
        var config = HTTP2ClientTransport.Posix.Config.defaults
        config.backoff = .init(initial: .milliseconds(100), max: .milliseconds(200), multiplier: 1, jitter: 0)
        return try await withGRPCClient(transport: try .http2NIOPosix(target: .ipv4(address: "127.0.0.1", port: relayPort),
                                                                      transportSecurity: security, config: config)) { client in
            try await body(Pharos_Account_V1_AccountSync.Client(wrapping: client))
        }
    }

    /// What a device holds: its TLS key, its X25519 key, and after the claim its certificate.
    struct Device: Sendable {
        var key = P256.Signing.PrivateKey()
        var encryptionKey = Curve25519.KeyAgreement.PrivateKey()
        var certificatePEM = ""
        var fingerprint: String {
            Fingerprint.certificate(der: PEM.decodeAll(type: "CERTIFICATE", from: certificatePEM)[0])
        }
    }

    func claim(_ device: inout Device, token: String, name: String = "phone") async throws -> Pharos_Account_V1_ClaimEnrollmentResponse {
        var request = Pharos_Account_V1_ClaimEnrollmentRequest()
        request.token = token
        request.csrPem = Data(try NodeCSRFixture.csr(for: device.key).utf8)
        request.deviceName = name
        request.platform = "linux"
        request.encryptionPubkey = device.encryptionKey.publicKey.rawRepresentation
        let response = try await withClient(device: nil) { client in try await client.claimEnrollment(request) }
        device.certificatePEM = String(decoding: response.deviceCertPem, as: UTF8.self)
        return response
    }
}

extension Pharos_Account_V1_AccountSync.Client where Transport == HTTP2ClientTransport.Posix {
    func session(spoofing fingerprint: String? = nil) async throws -> Pharos_Account_V1_AuthenticateResponse {
        var metadata: Metadata = [:]
        if let fingerprint { metadata.addString(fingerprint, forKey: PharosIdentity.deviceFingerprintMetadataKey) }
        return try await authenticate(Pharos_Account_V1_AuthenticateRequest(), metadata: metadata)
    }

    func profile(token: String) async throws -> Pharos_Account_V1_GetProfileResponse {
        try await getProfile(Pharos_Account_V1_GetProfileRequest(), metadata: [PharosIdentity.sessionMetadataKey: .string(token)])
    }
}

func rpcCode(_ error: any Error) -> RPCError.Code? { (error as? RPCError)?.code }

@Suite(.serialized) struct AccountSyncTests {
    static func withFleet(_ transport: AccountFleet.Transport, _ body: (AccountFleet) async throws -> Void) async throws {
        let fleet = try await AccountFleet(transport: transport)
        do { try await body(fleet) } catch {
            await fleet.stop()
            throw error
        }
        await fleet.stop()
    }

    @Test(arguments: AccountFleet.Transport.allCases)
    func aJoinLinkEnrollsOneDeviceWhoseSealedProfileOnlyItCanOpen(transport: AccountFleet.Transport) async throws {
        try await Self.withFleet(transport) { fleet in
            let user = try await fleet.userWithProfile(email: "ann@example.org")
            let accounts = AccountService(fleet: fleet.state.service)
            let invite = try await accounts.invite(user: user.id, relay: fleet.relayAddr, by: fleet.state.actor)
            var device = AccountFleet.Device()
            var claimed: Pharos_Account_V1_ClaimEnrollmentResponse?
            for _ in 0..<80 where claimed == nil {  // the remote relay's tunnel comes up within a few seconds
                do { claimed = try await fleet.claim(&device, token: invite.link.token) } catch where rpcCode(error) == .unavailable {
                    try await Task.sleep(for: .milliseconds(250))
                }
            }
            let response = try #require(claimed)
            #expect(invite.link.matchesCA(response.caFingerprint))
            #expect(response.relayAddr == fleet.relayAddr)
            #expect(response.relayServerName == "localhost")
            #expect(response.signingPublicKey == fleet.state.pki.signingKey.publicKey.rawRepresentation)

            // openssl agrees: the device leaf chains to the root through the Device CA.
            let dir = fleet.state.dir
            try device.certificatePEM.write(toFile: "\(dir)/device.crt", atomically: true, encoding: .utf8)
            try fleet.state.pki.authority.root.certificate.pemString().write(toFile: "\(dir)/root.crt", atomically: true, encoding: .utf8)
            try fleet.state.pki.authority.device.certificate.pemString().write(toFile: "\(dir)/device-ca.crt", atomically: true, encoding: .utf8)
            let verify = try Tool.run("/usr/bin/openssl", ["verify", "-CAfile", "\(dir)/root.crt", "-untrusted", "\(dir)/device-ca.crt",
                                                           "-purpose", "sslclient", "\(dir)/device.crt"])
            #expect(verify.status == 0, "\(verify.output)")
            #expect(String(decoding: response.fleetCaPem, as: UTF8.self) == (try fleet.state.pki.authority.fleet.certificate.pemString()))

            // The root certifies the profile-signing key (#19 item 2), and openssl agrees on the
            // message and the signature format: ECDSA P-384/SHA-384 over context, 0, key.
            let root = fleet.state.pki.authority.root.certificate
            #expect(SigningKeyEndorsement.isValid(Array(response.signingKeyEndorsement), of: Array(response.signingPublicKey), by: root))
            try Data(Array("pharos profile-signing key v1".utf8) + [0] + Array(response.signingPublicKey))
                .write(to: URL(fileURLWithPath: "\(dir)/endorsed.bin"))
            try response.signingKeyEndorsement.write(to: URL(fileURLWithPath: "\(dir)/endorsement.der"))
            let publicKey = try Tool.run("/usr/bin/openssl", ["x509", "-in", "\(dir)/root.crt", "-pubkey", "-noout"], mergingStandardError: false)
            try publicKey.output.write(toFile: "\(dir)/root.pub", atomically: true, encoding: .utf8)
            let endorsed = try Tool.run("/usr/bin/openssl", ["dgst", "-sha384", "-verify", "\(dir)/root.pub", "-signature",
                                                             "\(dir)/endorsement.der", "\(dir)/endorsed.bin"])
            #expect(endorsed.status == 0 && endorsed.output.contains("Verified OK"), "\(endorsed.output)")

            // The same link a second time, a forged token and an expired ticket: one opaque answer.
            var again = AccountFleet.Device()
            let reuse = await #expect(throws: RPCError.self) { _ = try await fleet.claim(&again, token: invite.link.token) }
            let forged = await #expect(throws: RPCError.self) { _ = try await fleet.claim(&again, token: AccountSecrets.newToken()) }
            let late = try await accounts.invite(user: user.id, relay: fleet.relayAddr, by: fleet.state.actor)
            try fleet.state.store.executeRawForTesting("UPDATE enrollment_tickets SET expires_at = ? WHERE id = ?", [1, late.ticketID])
            let expired = await #expect(throws: RPCError.self) { _ = try await fleet.claim(&again, token: late.link.token) }
            for error in [reuse, forged, expired] {
                #expect(error?.code == .unauthenticated)
                #expect(error?.message == reuse?.message)
            }
            #expect(try await fleet.state.store.read { tx in try tx.devices(user: user.id).count } == 1)

            // With its certificate the device logs in and fetches a bundle only its key opens.
            let profile = try await fleet.withClient(device: device) { client in
                let session = try await client.session()
                #expect(session.userID == user.id && session.keysEnrolled)
                return try await client.profile(token: session.sessionToken)
            }
            let signing = try Curve25519.Signing.PublicKey(rawRepresentation: profile.signingPublicKey)
            let plaintext = try SealedBundle.open(Array(profile.ciphertext), with: device.encryptionKey, signingPublicKey: signing)
            let bundle = try ProfileBundle(jsonBytes: plaintext)
            #expect(bundle.user == "ann@example.org" && bundle.revision == profile.revision)
            #expect(throws: PharosFormatError.self) {
                _ = try SealedBundle.open(Array(profile.ciphertext), with: Curve25519.KeyAgreement.PrivateKey(), signingPublicKey: signing)
            }
            guard case .amneziaWG(let wg) = try #require(bundle.profiles.first?.nodes.first?.protocols.first) else {
                Issue.record("no AmneziaWG parameters in the bundle"); return
            }

            // The store never holds the profile in plaintext: the device's WireGuard private key
            // is nowhere in the SQLite files, neither as base64 nor as raw bytes.
            let privateKey = try #require(Data(base64Encoded: wg.privateKey))
            for suffix in ["", "-wal"] {
                guard let file = FileManager.default.contents(atPath: fleet.state.store.path + suffix) else { continue }
                #expect(file.range(of: Data(wg.privateKey.utf8)) == nil, "base64 private key found in app.db\(suffix)")
                #expect(file.range(of: privateKey) == nil, "raw private key found in app.db\(suffix)")
            }
        }
    }

    @Test(arguments: AccountFleet.Transport.allCases)
    func certificatesDecideWhoAuthenticatesAndARevokedDeviceIsRefusedOnItsNextCall(transport: AccountFleet.Transport) async throws {
        try await Self.withFleet(transport) { fleet in
            let ann = try await fleet.userWithProfile(email: "ann@example.org")
            let bob = try await fleet.userWithProfile(email: "bob@example.org")
            let accounts = AccountService(fleet: fleet.state.service)
            var annDevice = AccountFleet.Device(), bobDevice = AccountFleet.Device()
            let annLink = try await accounts.invite(user: ann.id, relay: fleet.relayAddr, by: fleet.state.actor).link
            var claimed = false
            for _ in 0..<80 where !claimed {
                do { _ = try await fleet.claim(&annDevice, token: annLink.token); claimed = true } catch where rpcCode(error) == .unavailable {
                    try await Task.sleep(for: .milliseconds(250))
                }
            }
            let bobLink = try await accounts.invite(user: bob.id, relay: fleet.relayAddr, by: fleet.state.actor).link
            _ = try await fleet.claim(&bobDevice, token: bobLink.token)

            // Without a device certificate the relay refuses everything but the claim.
            try await fleet.withClient(device: nil) { client in
                let error = await #expect(throws: RPCError.self) { _ = try await client.session(spoofing: bobDevice.fingerprint) }
                #expect(error?.code == .unauthenticated && error?.message.contains("device certificate") == true)
                await #expect(throws: RPCError.self) { _ = try await client.profile(token: "anything") }
            }

            try await fleet.withClient(device: annDevice) { client in
                // Ann's certificate with Bob's fingerprint in a header is still Ann.
                let session = try await client.session(spoofing: bobDevice.fingerprint)
                #expect(session.userID == ann.id)
                _ = try await client.profile(token: session.sessionToken)

                // A session token is bound to the certificate that opened it.
                let bobSession = try await fleet.withClient(device: bobDevice) { bobClient in try await bobClient.session() }
                let stolen = await #expect(throws: RPCError.self) { _ = try await client.profile(token: bobSession.sessionToken) }
                #expect(stolen?.code == .unauthenticated)

                // Revoked mid-session, on the same open connection: refused at the next call.
                let annFingerprint = annDevice.fingerprint
                let annDeviceID = try await fleet.state.store.read { tx in try tx.device(fingerprint: annFingerprint)!.id }
                _ = try await fleet.state.service.removeDevice(annDeviceID, by: fleet.state.actor)
                try await Task.sleep(for: RelayTier.denyListRefresh * 2)
                let refused = await #expect(throws: RPCError.self) { _ = try await client.profile(token: session.sessionToken) }
                #expect(refused?.code == .unauthenticated)
                if transport == .remote { try await Task.sleep(for: .seconds(6)) }  // the remote relay's deny-list poll
                let atRelay = await #expect(throws: RPCError.self) { _ = try await client.profile(token: session.sessionToken) }
                #expect(atRelay?.message.contains("revoked") == true, "the relay itself refuses: \(atRelay?.message ?? "")")
                await #expect(throws: RPCError.self) { _ = try await client.session() }
            }
            #expect(try await fleet.state.store.read { tx in try tx.deniedDeviceFingerprints() } == [annDevice.fingerprint])
            // Bob is unaffected.
            try await fleet.withClient(device: bobDevice) { client in
                let session = try await client.session()
                #expect(try await client.profile(token: session.sessionToken).revision >= 1)
            }
        }
    }

    @Test func claimsCheckTheirInputBeforeTheTicket() async throws {
        let state = try TestState()
        let user = try await state.service.addUser(name: "Ann", email: "ann@example.org", by: state.actor)
        let accounts = AccountService(fleet: state.service)
        let invite = try await accounts.invite(user: user.id, relay: "relay.example.org:8443", by: state.actor)
        let csr = try NodeCSRFixture.csr(for: P256.Signing.PrivateKey())
        let key = Array(Curve25519.KeyAgreement.PrivateKey().publicKey.rawRepresentation)
        await #expect(throws: AccountError.invalidArgument("encryption_pubkey must be an X25519 public key of exactly 32 bytes, got 31")) {
            _ = try await accounts.claim(.init(token: invite.link.token, csrPEM: csr, deviceName: "p", platform: "", encryptionKey: Array(key.prefix(31))))
        }
        await #expect(throws: AccountError.self) {
            _ = try await accounts.claim(.init(token: invite.link.token, csrPEM: "not a csr", deviceName: "p", platform: "", encryptionKey: key))
        }
        // Neither refusal consumed the ticket.
        let claimed = try await accounts.claim(.init(token: invite.link.token, csrPEM: csr, deviceName: "p", platform: "linux", encryptionKey: key))
        #expect(claimed.device.encryptionPubkey == Data(key) && claimed.relayServerName == "localhost")
        let audit = try await state.store.read { tx in try tx.auditChain().map(\.action) }
        #expect(audit.contains("enroll.claim") && audit.contains("enroll.invite"))
        await #expect(throws: AccountError.failedPrecondition(
            "no relay address for the join link: set relay.public_endpoint in cox.yaml or pass --relay HOST:PORT")) {
            _ = try await accounts.invite(user: user.id, by: state.actor)
        }
    }

    @Test func passwordsAreArgon2idPHCStringsAndLoginFailuresLookAlike() async throws {
        let phc = try PasswordHash.make(password: "correct horse")
        #expect(phc.hasPrefix("$argon2id$v=19$m=65536,t=1,p=4$"))
        #expect(PasswordHash.verify(password: "correct horse", against: phc))
        #expect(!PasswordHash.verify(password: "correct horsE", against: phc))
        #expect(!PasswordHash.verify(password: "correct horse", against: phc.replacingOccurrences(of: "t=1", with: "t=99")))

        let state = try TestState()
        let user = try await state.service.addUser(name: "Ann", email: "ann@example.org", by: state.actor)
        try await state.store.write { tx in try tx.setPasswordHash(user: user.id, hash: phc) }
        let accounts = AccountService(fleet: state.service)
        let session = try await accounts.authenticate(email: "Ann@Example.org", password: "correct horse", deviceFingerprint: nil)
        #expect(session.userID == user.id && session.deviceID == nil && !session.keysEnrolled)
        #expect(try await accounts.session(token: session.token, deviceFingerprint: nil).userID == user.id)
        for (email, password) in [("ann@example.org", "wrong"), ("nobody@example.org", "correct horse"), ("", "")] {
            await #expect(throws: AccountError.opaqueLoginFailure) {
                _ = try await accounts.authenticate(email: email, password: password, deviceFingerprint: email.isEmpty ? "sha256:00" : nil)
            }
        }
        // EnrollKeys: the account key lands and devices without their own key are sealed to it.
        let account = Curve25519.KeyAgreement.PrivateKey()
        let wrapped = try WrappedPrivateKey.wrap(Array(account.rawRepresentation), passphrase: Array("pass phrase".utf8))
        await #expect(throws: AccountError.self) {
            try await accounts.enrollKeys(session: session, publicKey: [1, 2, 3], wrappedPrivateKey: wrapped.encoded())
        }
        try await accounts.enrollKeys(session: session, publicKey: Array(account.publicKey.rawRepresentation),
                                      wrappedPrivateKey: wrapped.encoded())
        #expect(try await state.store.read { tx in try tx.user(user.id).publicKey } == account.publicKey.rawRepresentation)
        await #expect(throws: AccountError.self) { _ = try await accounts.profile(session: session) }
    }

    /// `cox devices issue` (the legacy path): a .pharosid whose key belongs to its certificate,
    /// which openssl chains to the root through the Device CA as a TLS client, whose device logs in by certificate
    /// and has no key of its own (its bundle waits for the account key).
    @Test func anIssuedIdentityHoldsAWorkingCertificateForANewDeviceWithoutAKeyOfItsOwn() async throws {
        let state = try TestState()
        let user = try await state.service.addUser(name: "Ann", email: "ann@example.org", by: state.actor)
        let accounts = AccountService(fleet: state.service)
        await #expect(throws: AccountError.failedPrecondition(
            "no relay address for the device identity: set relay.public_endpoint in cox.yaml or pass --relay HOST:PORT")) {
            _ = try await accounts.issueDevice(user: user.id, name: "laptop", by: state.actor)
        }
        let issued = try await accounts.issueDevice(user: "ann@example.org", name: "laptop", relay: "relay.example.org",
                                                    by: state.actor)
        let identity = try DeviceIdentity(jsonBytes: issued.identity.encoded())
        #expect(identity == issued.identity && identity.user == "ann@example.org" && identity.alias == "laptop")
        #expect(identity.relayAddress == "relay.example.org:8443" && identity.relayServerName == "localhost")
        #expect(identity.encryptionKey == nil && identity.signingPublicKey == Array(state.pki.signingKey.publicKey.rawRepresentation))
        let rootFingerprint = Fingerprint.caRoot(der: try state.pki.authority.root.certificate.derBytes())
        #expect(identity.caFingerprint == rootFingerprint)

        let leaf = try Certificate(pemEncoded: identity.deviceCertificate)
        #expect(leaf.publicKey == Certificate.PublicKey(try P256.Signing.PrivateKey(pemRepresentation: identity.deviceKey).publicKey))
        let dir = state.dir
        try (identity.deviceCertificate + state.pki.authority.device.certificate.pemString())
            .write(toFile: "\(dir)/device.crt", atomically: true, encoding: .utf8)
        try state.pki.authority.root.certificate.pemString().write(toFile: "\(dir)/root.crt", atomically: true, encoding: .utf8)
        let verify = try OpenSSLProbe.verify("\(dir)/device.crt", root: "\(dir)/root.crt", purpose: "sslclient")
        #expect(verify.status == 0, "\(verify.output)")

        let device = issued.device
        let leafFingerprint = Fingerprint.certificate(der: try leaf.derBytes())
        #expect(device.encryptionPubkey == nil && device.fingerprint == leafFingerprint)
        #expect(try await state.store.read { tx in try tx.profile(device: device.id) } == nil, "nothing to seal to before the account key")
        let session = try await accounts.authenticate(email: "", password: "", deviceFingerprint: device.fingerprint)
        #expect(session.deviceID == device.id && session.userID == user.id && !session.keysEnrolled)

        // A password login through this device's certificate is this device's session (its
        // GetProfile is its own bundle); another user's certificate binds nothing.
        try await state.store.write { tx in try tx.setPasswordHash(user: user.id, hash: try PasswordHash.make(password: "correct horse")) }
        let byPassword = try await accounts.authenticate(email: "ann@example.org", password: "correct horse",
                                                         deviceFingerprint: device.fingerprint)
        #expect(byPassword.deviceID == device.id && byPassword.userID == user.id)
        let bob = try await state.service.addUser(name: "Bob", email: "bob@example.org", by: state.actor)
        let bobs = try await accounts.issueDevice(user: bob.id, name: "phone", relay: "relay.example.org", by: state.actor)
        let crossed = try await accounts.authenticate(email: "ann@example.org", password: "correct horse",
                                                      deviceFingerprint: bobs.device.fingerprint)
        #expect(crossed.deviceID == nil && crossed.userID == user.id)

        // A second device of that name gets a suffix, and its own key.
        let second = try await accounts.issueDevice(user: user.id, name: "laptop", relay: "relay.example.org:9443",
                                                    serverName: "relay.example.org", by: state.actor)
        #expect(second.device.name == "laptop-2" && second.identity.relayServerName == "relay.example.org")
        #expect(second.identity.deviceKey != identity.deviceKey)
        let audit = try await state.store.read { tx in try tx.auditChain().map(\.action) }
        #expect(audit.filter { $0 == "device.issue" }.count == 3)
    }

    @Test func theJoinLinkQRCodeDecodesToTheLink() throws {
        let link = "pharosvpn://enroll?ca=\(String(repeating: "ab", count: 32))&relay=relay.example.org%3A8443&token=\(AccountSecrets.newToken())"
        let png = try JoinQR.png(for: link)
        #expect(Array(png.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        let path = "/tmp/cox-qr-\(UUID().uuidString.prefix(8)).png"
        try Data(png).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let decoded = try Tool.run("/usr/bin/zbarimg", ["-q", "--raw", path], mergingStandardError: false)
        #expect(decoded.status == 0)
        #expect(decoded.output.trimmingCharacters(in: .whitespacesAndNewlines) == link)
    }
}

/// Issue #20: GetDeniedRelays — the revoked relay leaves, signed for the fleet, to known devices only.
@Suite struct DeniedRelaysTests {
    @Test func aRemovedRelaysLeavesAreListedSignedAndOnlyForAKnownDevice() async throws {
        let (state, accounts, claimed) = try await DeviceRenewalTests.enrolledPhone()
        let fingerprint = try #require(claimed.device.fingerprint)
        let (kept, keptLeaf) = try await RelayRenewalTests.enroll(state, key: P256.Signing.PrivateKey(), name: "kept")
        let enrolledGone = try await state.service.enrollRelay(csrPEM: try NodeCSRFixture.csr(for: P256.Signing.PrivateKey()), endpoint: "127.0.0.1:1",
                                                               hostname: "gone.example.org", name: "gone", publicAddr: nil,
                                                               certificateDays: FleetService.relayCertificateDays, by: state.actor)
        let (gone, goneLeaf) = (enrolledGone.relay, try #require(Certificate(firstIn: enrolledGone.certificateChainPEM)))
        // Unused join links naming the removed relay end with it; one naming another relay does not.
        let user = claimed.device.userID
        let viaGone = try await accounts.invite(user: user, relay: gone.publicAddr, by: state.actor)
        let viaKept = try await accounts.invite(user: user, relay: kept.publicAddr, by: state.actor)
        #expect(gone.publicAddr == "gone.example.org:8443" && kept.publicAddr != gone.publicAddr)
        let removed = try await state.service.removeRelay(gone.id, by: state.actor)
        #expect(removed.expiredJoinLinks == 1)
        let claim = { (token: String) in
            AccountService.Claim(token: token, csrPEM: try NodeCSRFixture.csr(for: P256.Signing.PrivateKey()), deviceName: "x", platform: "linux",
                                 encryptionKey: Array(Curve25519.KeyAgreement.PrivateKey().publicKey.rawRepresentation))
        }
        await #expect(throws: AccountError.self) { _ = try await accounts.claim(try claim(viaGone.link.token)) }
        _ = try await accounts.claim(try claim(viaKept.link.token))

        let signingKey = Array(state.pki.signingKey.publicKey.rawRepresentation)
        let fleetID = try state.pki.authority.fingerprint
        let nonce = secureRandomBytes(16)
        let list = try await accounts.deniedRelays(nonce: nonce, deviceFingerprint: fingerprint)
            .verified(signingKey: signingKey, fleetID: fleetID, nonce: nonce)
        #expect(list.serials == [goneLeaf.serialHex], "\(kept.name)'s leaf \(keptLeaf.serialHex) stays trusted")

        await #expect(throws: AccountError.self) { _ = try await accounts.deniedRelays(nonce: [1], deviceFingerprint: fingerprint) }
        await #expect(throws: AccountError.opaqueLoginFailure) {
            _ = try await accounts.deniedRelays(nonce: nonce, deviceFingerprint: String(repeating: "0", count: 64))
        }
        await #expect(throws: AccountError.self) { _ = try await accounts.deniedRelays(nonce: nonce, deviceFingerprint: nil) }
        // A removed device gets nothing either.
        _ = try await state.service.removeDevice(claimed.device.id, by: state.actor)
        await #expect(throws: AccountError.opaqueLoginFailure) { _ = try await accounts.deniedRelays(nonce: nonce, deviceFingerprint: fingerprint) }
    }
}
