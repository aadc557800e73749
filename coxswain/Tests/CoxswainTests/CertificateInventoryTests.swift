import Crypto
import Foundation
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
        #expect(entries.first?.kind == .device, "soonest expiry first: the 30-day device leaf")
        #expect(entries.first { $0.kind == .node }?.name == node.name)
        #expect(entries.first { $0.kind == .relay }?.serial == relay.relay.certSerial)
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        #expect(entries.allSatisfy { $0.state(at: now) == .valid }, "\(entries.map { ($0.kind, $0.state(at: now)) })")

        // Revoking the device shows it; its certificate is not silently dropped.
        try state.store.executeRawForTesting("UPDATE devices SET fingerprint = ? WHERE id = ?", ["sha256:phone", device.id])
        try await state.store.write { tx in try tx.revokeCertificates(of: try tx.device(device.id)) }
        let after = try await state.store.read { tx in try tx.certificateInventory() }
        #expect(after.first { $0.kind == .device }?.state(at: now) == .revoked)
    }
}
