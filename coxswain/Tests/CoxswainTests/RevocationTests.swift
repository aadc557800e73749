import Crypto
import Foundation
import PharosSpec
import Testing
@testable import Coxswain

/// Issue #19 item 6: what a removed or disabled account leaves behind at the relays, and what
/// a wrong enrollment token costs the controller.
@Suite struct RevocationTests {
    /// A user with one enrolled device (a real certificate from ClaimEnrollment).
    func enrolledDevice(_ state: TestState, email: String = "ann@example.org") async throws -> (UserRecord, AccountService.Claimed) {
        let user = try await state.service.addUser(name: "Ann", email: email, by: state.actor)
        let accounts = AccountService(fleet: state.service)
        let invite = try await accounts.invite(user: user.id, relay: "relay.example.org:8443", by: state.actor)
        let claimed = try await accounts.claim(.init(token: invite.link.token, csrPEM: try NodeCSRFixture.csr(for: P256.Signing.PrivateKey()),
                                                     deviceName: "phone", platform: "linux",
                                                     encryptionKey: Array(Curve25519.KeyAgreement.PrivateKey().publicKey.rawRepresentation)))
        return (user, claimed)
    }

    func denied(_ state: TestState) async throws -> Set<String> {
        try await state.store.read { tx in try tx.deniedDeviceFingerprints() }
    }

    @Test func removingAUserPutsEveryDeviceCertificateOnTheDenyList() async throws {
        let state = try TestState()
        let (user, claimed) = try await enrolledDevice(state)
        let fingerprint = try #require(claimed.device.fingerprint)
        #expect(try await denied(state).isEmpty)
        _ = try await state.service.removeUser(user.id, by: state.actor)
        #expect(try await denied(state) == [fingerprint])
    }

    @Test func disablingAUserDeniesItsDevicesUntilItIsEnabledAgain() async throws {
        let state = try TestState()
        let (user, claimed) = try await enrolledDevice(state)
        let (_, other) = try await enrolledDevice(state, email: "bob@example.org")
        let fingerprint = try #require(claimed.device.fingerprint)
        let disabled = try await state.service.updateUser(user.id, .init(status: .disabled), expectedVersion: user.version, by: state.actor)
        #expect(try await denied(state) == [fingerprint], "only the disabled user's device is denied, not \(other.device.name)")
        _ = try await state.service.updateUser(user.id, .init(status: .active), expectedVersion: disabled.version, by: state.actor)
        #expect(try await denied(state).isEmpty)
    }

    /// A guessed token costs one read: no certificate is signed and no audit row is written,
    /// so a flood of guesses cannot fill the audit log.
    @Test func aWrongTokenIsRefusedBeforeAnySigningOrAuditWrite() async throws {
        let state = try TestState()
        let user = try await state.service.addUser(name: "Ann", email: "ann@example.org", by: state.actor)
        let accounts = AccountService(fleet: state.service)
        _ = try await accounts.invite(user: user.id, relay: "relay.example.org:8443", by: state.actor)
        let auditBefore = try await state.store.read { tx in try tx.auditChain().count }
        let key = Array(Curve25519.KeyAgreement.PrivateKey().publicKey.rawRepresentation)
        for _ in 0..<20 {
            await #expect(throws: AccountError.opaqueClaimFailure) {
                _ = try await accounts.claim(.init(token: AccountSecrets.newToken(), csrPEM: try NodeCSRFixture.csr(for: P256.Signing.PrivateKey()),
                                                   deviceName: "guess", platform: "", encryptionKey: key))
            }
        }
        #expect(try await state.store.read { tx in try tx.auditChain().count } == auditBefore)
        #expect(try await state.store.read { tx in try tx.sql.count("SELECT COUNT(*) FROM device_certs") } == 0)
    }

    /// Issue #19 item 5: a session (a guessed password, a stolen device) cannot swap the
    /// account key for one of its own; only an operator can clear it.
    @Test func anEnrolledAccountKeyIsNotReplacedFromASession() async throws {
        let state = try TestState()
        let user = try await state.service.addUser(name: "Ann", email: "ann@example.org", by: state.actor)
        let accounts = AccountService(fleet: state.service)
        _ = try await accounts.setPassword(user: user.id, password: "correct horse battery", by: state.actor)
        let session = try await accounts.authenticate(email: "ann@example.org", password: "correct horse battery", deviceFingerprint: nil)
        func enroll(_ key: Curve25519.KeyAgreement.PrivateKey) async throws {
            let wrapped = try WrappedPrivateKey.wrap(Array(key.rawRepresentation), passphrase: Array("pass phrase".utf8))
            try await accounts.enrollKeys(session: session, publicKey: Array(key.publicKey.rawRepresentation), wrappedPrivateKey: wrapped.encoded())
        }
        func stored() async throws -> Data? { try await state.store.read { tx in try tx.user(user.id).publicKey } }
        let first = Curve25519.KeyAgreement.PrivateKey(), attacker = Curve25519.KeyAgreement.PrivateKey()
        try await enroll(first)
        try await enroll(first)
        #expect(try await stored() == first.publicKey.rawRepresentation, "the same key again is a no-op")
        await #expect(throws: AccountError.self) { try await enroll(attacker) }
        #expect(try await stored() == first.publicKey.rawRepresentation, "the account key was replaced from a session")
        _ = try await state.service.resetAccountKeys(user: "ann@example.org", by: state.actor)
        #expect(try await stored() == nil)
        try await enroll(attacker)
        #expect(try await stored() == attacker.publicKey.rawRepresentation)
        let actions = try await state.store.read { tx in try tx.auditChain().map(\.action) }
        #expect(actions.filter { $0 == "user.keys" }.count == 2 && actions.contains("user.keys.reset"))
    }
}
