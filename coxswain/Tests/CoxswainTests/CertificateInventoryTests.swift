import Crypto
import Foundation
import PharosTLS
import Testing
import X509
@testable import Coxswain

/// `cox pki status` (#20, first part): every certificate the fleet stands on, with the day it
/// stops working, read from the real store.
@Suite struct CertificateInventoryTests {
    @Test func theLastFifthOfALifeIsExpiring() {
        let day: Int64 = 86_400_000_000
        let entry = CertificateEntry(kind: .node, name: "n1", serial: "01", notBefore: 0, notAfter: 100 * day, revoked: false)
        #expect(entry.state(at: 79 * day) == .valid)
        #expect(entry.state(at: 80 * day) == .expiring)
        #expect(entry.state(at: 100 * day) == .expired)
        var revoked = entry
        revoked.revoked = true
        #expect(revoked.state(at: 10 * day) == .revoked)
    }

    @Test func theInventoryListsCAsControllerNodesRelaysAndDevices() async throws {
        let state = try TestState()
        let node = try await state.readyNode(name: "n1")
        let relay = try await state.service.enrollRelay(csrPEM: try NodeCSRFixture.csr(for: P256.Signing.PrivateKey()),
                                                        endpoint: "198.51.100.9", hostname: "relay.example.org", name: "r1",
                                                        publicAddr: nil, by: state.actor)
        let user = try await state.service.addUser(name: "Alice", email: "alice@example.com", by: state.actor)
        let device = try await state.service.addDevice(user: user.id, name: "phone", by: state.actor).value
        let leaf = try state.pki.authority.issue(publicKey: Certificate.PublicKey(P256.Signing.PrivateKey().publicKey),
                                                 profile: .device(id: device.id), validity: 30 * 86400)
        try await state.store.write { tx in
            try tx.insertDeviceCertificate(deviceID: device.id, serial: leaf.serialHex, certificatePEM: try leaf.pemString(),
                                           notAfter: FleetPKI.micros(leaf.notValidAfter))
        }
        let entries = try await state.store.read { tx in try tx.certificateInventory() }
        #expect(Set(entries.map(\.kind)) == [.root, .fleetCA, .deviceCA, .controller, .node, .relay, .device])
        let phone = try #require(entries.first { $0.kind == .device })
        #expect(phone.name == "alice@example.com/phone" && phone.serial == leaf.serialHex)
        #expect(entries.first?.kind == .controller, "soonest expiry first: the controller's week-long leaf")
        #expect(entries.first { $0.kind == .node }?.name == node.name)
        #expect(entries.first { $0.kind == .relay }?.serial == relay.relay.certSerial)
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        #expect(entries.allSatisfy { $0.state(at: now) == .valid }, "\(entries.map { ($0.kind, $0.state(at: now)) })")

        // Revoking the device shows it; its certificate is not silently dropped.
        try state.store.executeRawForTesting("UPDATE devices SET fingerprint = ? WHERE id = ?", ["sha256:phone", device.id])
        try await state.store.write { tx in try tx.revokeCertificates(of: try tx.device(device.id)) }
        let after = try await state.store.read { tx in try tx.certificateInventory() }
        #expect(after.first { $0.kind == .device }?.state(at: now) == .revoked)

        // Removing the relay revokes its leaf: listed as revoked, refused by the tunnel dialer.
        _ = try await state.service.removeRelay(relay.relay.id, by: state.actor)
        let revoked = try await state.store.read { tx in try tx.revokedCertificates(kind: .relay) }
        #expect(revoked.map(\.serial) == [relay.relay.certSerial] && revoked[0].reason == "relay removed")
        let last = try await state.store.read { tx in try tx.certificateInventory() }
        #expect(last.first { $0.serial == relay.relay.certSerial }?.state(at: now) == .revoked)
    }
}

/// `cox serve`'s hourly certificate watch: an expiring certificate opens one warning, an
/// expired one a critical alert, and each resolves itself once the condition is gone.
@Suite struct CertificateWatchTests {
    @Test func expiringThenExpiredThenRenewed() async throws {
        let state = try TestState()
        let day: Int64 = 86_400_000_000, now = StoreClock.now()
        func openAlerts() async throws -> [AlertRecord] {
            try await state.store.read { tx in try tx.alerts(AlertQuery(kind: CertificateWatch.alertKind)).items.filter { $0.status != .resolved } }
        }
        #expect(try await CertificateWatch.check(state.store, now: now).isEmpty, "a fresh fleet has nothing expiring")

        let original = try #require(try await state.store.read { tx in try tx.certificateInventory() }.first { $0.kind == .deviceCA })
        try state.store.executeRawForTesting("UPDATE ca SET not_before = ?, not_after = ? WHERE role = 'device'", [now - 90 * day, now + 1 * day])
        let warned = try await CertificateWatch.check(state.store, now: now)
        #expect(warned.count == 1 && warned[0].severity == .warning && warned[0].detail.contains("device-ca"), "\(warned)")
        #expect(try await CertificateWatch.check(state.store, now: now).isEmpty, "the open alert is refreshed, not repeated")

        let critical = try await CertificateWatch.check(state.store, now: now + 2 * day)
        #expect(critical.count == 1 && critical[0].severity == .critical)
        #expect(try await openAlerts().map(\.severity) == [.critical], "the warning resolved when the critical alert opened")

        try state.store.executeRawForTesting("UPDATE ca SET not_before = ?, not_after = ? WHERE role = 'device'",
                                             [original.notBefore, original.notAfter])
        #expect(try await CertificateWatch.check(state.store, now: now).isEmpty)
        #expect(try await openAlerts().isEmpty, "a renewed certificate's alert stayed open")
    }
}
