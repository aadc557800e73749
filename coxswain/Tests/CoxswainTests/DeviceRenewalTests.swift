import Crypto
import Foundation
import PharosSpec
import PharosTLS
import Testing
import X509
@testable import Coxswain

/// Issue #20, the controller's half of a device's renewal: the new leaf is pending until its
/// first use, then the old one is retired (on the relays' deny list); renewals are rate-limited.
@Suite struct DeviceRenewalTests {
    /// A controller and one device enrolled with a join link.
    static func enrolledPhone() async throws -> (TestState, AccountService, AccountService.Claimed) {
        let state = try TestState()
        let user = try await state.service.addUser(name: "Ann", email: "ann@example.org", by: state.actor)
        let accounts = AccountService(fleet: state.service)
        let invite = try await accounts.invite(user: user.id, relay: "relay.example.org:8443", by: state.actor)
        let claimed = try await accounts.claim(.init(token: invite.link.token, csrPEM: try NodeCSRFixture.csr(for: P256.Signing.PrivateKey()),
                                                     deviceName: "phone", platform: "linux",
                                                     encryptionKey: Array(Curve25519.KeyAgreement.PrivateKey().publicKey.rawRepresentation)))
        return (state, accounts, claimed)
    }

    @Test func aRenewedLeafIsPendingUntilFirstUseThenTheOldOneIsRetired() async throws {
        let (state, accounts, claimed) = try await Self.enrolledPhone()
        let old = try #require(claimed.device.fingerprint)
        let enrolled = try Certificate(pemEncoded: claimed.certificatePEM)
        #expect(enrolled.notValidAfter.timeIntervalSince(enrolled.notValidBefore) <= 30 * 86400 + 600, "a device leaf lives 30 days")

        await #expect(throws: AccountError.self) {
            _ = try await accounts.renewDeviceCertificate(csrPEM: try NodeCSRFixture.csr(for: P256.Signing.PrivateKey()), deviceFingerprint: nil)
        }
        await #expect(throws: AccountError.opaqueLoginFailure) {
            _ = try await accounts.renewDeviceCertificate(csrPEM: try NodeCSRFixture.csr(for: P256.Signing.PrivateKey()),
                                                          deviceFingerprint: "sha256:unknown")
        }
        let key = P256.Signing.PrivateKey()
        let leaf = try await accounts.renewDeviceCertificate(csrPEM: try NodeCSRFixture.csr(for: key), deviceFingerprint: old)
        let new = Fingerprint.certificate(der: try leaf.derBytes())
        #expect(leaf.publicKey == Certificate.PublicKey(key.publicKey) && leaf.subject == enrolled.subject && leaf.issuer == enrolled.issuer,
                "the subject comes from the device row, not from the CSR's attacker-chosen CN")
        #expect(try await state.store.read { tx in try tx.device(claimed.device.id).fingerprint } == old, "pending until first use")
        #expect(try await state.store.read { tx in try tx.pendingFingerprint(device: claimed.device.id) } == new)
        #expect(try await state.store.read { tx in try tx.deniedDeviceFingerprints() }.isEmpty, "the old leaf still works")

        // The answer got lost on the way (a relay tunnel redialed): the device asks again at
        // once and gets another leaf, which replaces the unused one (now refused everywhere).
        let retryKey = P256.Signing.PrivateKey()
        let retried = try await accounts.renewDeviceCertificate(csrPEM: try NodeCSRFixture.csr(for: retryKey), deviceFingerprint: old)
        let newer = Fingerprint.certificate(der: try retried.derBytes())
        #expect(try await state.store.read { tx in try tx.pendingFingerprint(device: claimed.device.id) } == newer)
        #expect(try await state.store.read { tx in try tx.deniedDeviceFingerprints() } == [new], "the unused leaf is not revoked")

        // The first login with the new leaf makes it current and retires the old one.
        let session = try await accounts.authenticate(email: "", password: "", deviceFingerprint: newer)
        #expect(session.deviceID == claimed.device.id)
        #expect(try await state.store.read { tx in try tx.device(claimed.device.id).fingerprint } == newer)
        #expect(try await state.store.read { tx in try tx.pendingFingerprint(device: claimed.device.id) } == nil)
        #expect(try await state.store.read { tx in try tx.deniedDeviceFingerprints() } == [old, new])
        for retired in [old, new] {
            await #expect(throws: AccountError.opaqueLoginFailure) {
                _ = try await accounts.authenticate(email: "", password: "", deviceFingerprint: retired)
            }
        }
        // Renewed and in use: the next renewal waits an hour.
        await #expect(throws: AccountError.failedPrecondition("this device renewed its certificate less than an hour ago; try again later")) {
            _ = try await accounts.renewDeviceCertificate(csrPEM: try NodeCSRFixture.csr(for: P256.Signing.PrivateKey()), deviceFingerprint: newer)
        }
        let inventory = try await state.store.read { tx in try tx.certificateInventory() }.filter { $0.kind == .device }
        #expect(inventory.count == 3 && inventory.first { $0.serial == enrolled.serialHex }?.revoked == true)
        let audit = try await state.store.read { tx in try tx.auditChain().map(\.action) }
        #expect(audit.contains("device.cert.renew"))
    }

    @Test func revokingADeviceAlsoDeniesItsPendingLeaf() async throws {
        let (state, accounts, claimed) = try await Self.enrolledPhone()
        let leaf = try await accounts.renewDeviceCertificate(csrPEM: try NodeCSRFixture.csr(for: P256.Signing.PrivateKey()),
                                                             deviceFingerprint: claimed.device.fingerprint)
        _ = try await state.service.removeDevice(claimed.device.id, by: state.actor)
        let denied = try await state.store.read { tx in try tx.deniedDeviceFingerprints() }
        #expect(denied == [try #require(claimed.device.fingerprint), Fingerprint.certificate(der: try leaf.derBytes())])
    }
}
