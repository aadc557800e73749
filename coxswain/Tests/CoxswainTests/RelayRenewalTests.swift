import Crypto
import Foundation
import PharosSpec
import PharosTestSupport
import PharosTLS
import Relay
import Synchronization
import Testing
import X509
@testable import Coxswain

/// Remote relays renew their own leaf over their tunnel (#20): the controller's checks, and
/// the round trip between a real controller and a real relay.
@Suite(.serialized) struct RelayRenewalTests {
    /// A relay enrolled with a key of its own, as `cox relays enroll` does it.
    static func enroll(_ state: TestState, key: P256.Signing.PrivateKey, name: String = "edge-1",
                       days: Int = FleetService.relayCertificateDays) async throws -> (RelayRecord, Certificate) {
        let enrolled = try await state.service.enrollRelay(csrPEM: try NodeCSRFixture.csr(for: key), endpoint: "127.0.0.1:1",
                                                           hostname: "edge.example.org", name: name, publicAddr: nil,
                                                           certificateDays: days, by: state.actor)
        return (enrolled.relay, try #require(Certificate(firstIn: enrolled.certificateChainPEM)))
    }

    static func request(current: Certificate, signedBy key: P256.Signing.PrivateKey,
                        newKey: P256.Signing.PrivateKey = P256.Signing.PrivateKey()) throws -> (csr: String, current: String, proof: [UInt8]) {
        let csr = try NodeCSRFixture.csr(for: newKey)
        return (csr, try current.pemString(), try PossessionProof.sign(csrPEM: csr, with: key))
    }

    typealias Request = (csr: String, current: String, proof: [UInt8])

    static func renew(_ service: FleetService, _ request: Request) async throws -> Certificate {
        try await service.renewRelayCertificate(csrPEM: request.csr, currentPEM: request.current, proof: request.proof).leaf
    }

    /// Why the controller refused `request`; nil when it answered a leaf.
    static func refusal(_ service: FleetService, _ request: Request) async -> RelayRenewalError? {
        do {
            _ = try await service.renewRelayCertificate(csrPEM: request.csr, currentPEM: request.current, proof: request.proof)
            return nil
        } catch {
            return error
        }
    }

    @Test func aRelayRenewsOnlyItsOwnLeafAndOnlyWithItsKey() async throws {
        let state = try TestState()
        let key0 = P256.Signing.PrivateKey()
        let (relay, leaf0) = try await Self.enroll(state, key: key0)
        #expect(leaf0.notValidAfter.timeIntervalSince(leaf0.notValidBefore) <= 30 * 86400 + 600, "relay leaves live 30 days")
        let service = state.service
        func renew(_ request: Request) async throws -> Certificate { try await Self.renew(service, request) }
        func refusal(_ request: Request) async -> RelayRenewalError? { await Self.refusal(service, request) }
        let key1 = P256.Signing.PrivateKey()
        let genuine = try Self.request(current: leaf0, signedBy: key0, newKey: key1)

        // Someone who saw the leaf (every client does) but holds another key.
        #expect(await refusal(try Self.request(current: leaf0, signedBy: P256.Signing.PrivateKey())) == .badProof)
        // The holder's proof, moved onto another CSR.
        #expect(await refusal((try NodeCSRFixture.csr(for: P256.Signing.PrivateKey()), genuine.current, genuine.proof)) == .badProof)
        // A forged leaf: the genuine leaf's serial, subject and hostname, from a CA of its own
        // with our CA's names, and a valid proof by its own key. Only the chain check stops it.
        let foreign = try TestPKI(name: "PharosVPN")
        let forgedKey = P256.Signing.PrivateKey()
        let forged = try Certificate(
            version: .v3, serialNumber: leaf0.serialNumber, publicKey: Certificate.PublicKey(forgedKey.publicKey),
            notValidBefore: Date() - 60, notValidAfter: Date() + 86400, issuer: foreign.fleet.subject, subject: leaf0.subject,
            signatureAlgorithm: .ecdsaWithSHA384, extensions: leaf0.extensions, issuerPrivateKey: .init(foreign.fleetKey))
        guard case .refused = await refusal(try Self.request(current: forged, signedBy: forgedKey)) else {
            Issue.record("a leaf from a foreign CA was not refused by the chain check")
            return
        }
        // A relay leaf our Fleet CA did issue, but to no enrolled relay (the embedded relay's kind).
        let strayKey = P256.Signing.PrivateKey()
        let stray = try state.pki.authority.issue(publicKey: Certificate.PublicKey(strayKey.publicKey),
                                                  profile: .relay(hostname: "edge.example.org"), validity: 86400)
        #expect(await refusal(try Self.request(current: stray, signedBy: strayKey)) == .unknownLeaf(stray.serialHex))
        // A node leaf of ours, with its key: not a relay.
        let nodeKey = P256.Signing.PrivateKey()
        let node = try state.pki.authority.issue(publicKey: Certificate.PublicKey(nodeKey.publicKey),
                                                 profile: .node(id: "node_x", addresses: ["10.0.0.1"]), validity: 86400)
        guard case .refused = await refusal(try Self.request(current: node, signedBy: nodeKey)) else {
            Issue.record("a node leaf was not refused as a relay leaf")
            return
        }
        #expect(await refusal((genuine.csr, "garbage", genuine.proof)) == .unreadableCertificate)
        let garbageCSR = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
        guard case .unusableCSR = await refusal((garbageCSR, genuine.current, try PossessionProof.sign(csrPEM: garbageCSR, with: key0))) else {
            Issue.record("a garbage CSR was not refused as such")
            return
        }
        guard case .unusableCSR = await refusal(try Self.request(current: leaf0, signedBy: key0, newKey: key0)) else {
            Issue.record("a renewal that keeps the current key was not refused")
            return
        }
        #expect(try await state.store.read { tx in try tx.relay(relay.id) }.certSerial == leaf0.serialHex, "a refusal changed the relay")

        // Enrolled just now: the first renewal waits an hour.
        #expect(await refusal(genuine) == .tooSoon)
        let backdate = "UPDATE relay_leaves SET issued_at = issued_at - 7200000000"
        try state.store.executeRawForTesting(backdate)

        let leaf1 = try await renew(genuine)
        #expect(leaf1.publicKey == Certificate.PublicKey(key1.publicKey))
        #expect(leaf1.subjectNames == leaf0.subjectNames && leaf1.subject == leaf0.subject && leaf1.serialHex != leaf0.serialHex)
        let stored = try await state.store.read { tx in try tx.relay(relay.id) }
        #expect(stored.certSerial == leaf1.serialHex && stored.version == relay.version + 1)
        // openssl agrees: the leaf chains to the root through the Fleet CA, for a TLS server.
        let dir = state.dir
        try (try leaf1.pemString() + state.pki.authority.fleet.certificate.pemString())
            .write(toFile: "\(dir)/renewed.crt", atomically: true, encoding: .utf8)
        try state.pki.authority.root.certificate.pemString().write(toFile: "\(dir)/root.crt", atomically: true, encoding: .utf8)
        let verify = try OpenSSLProbe.verify("\(dir)/renewed.crt", root: "\(dir)/root.crt", purpose: "sslserver")
        #expect(verify.status == 0, "\(verify.output)")

        // The answer got lost: the relay asks again from leaf0 for the same key and gets the
        // same leaf; nothing new is issued. From leaf0 for another key: nothing.
        let retried = try await renew(try Self.request(current: leaf0, signedBy: key0, newKey: key1))
        #expect(retried.serialHex == leaf1.serialHex)
        #expect(await refusal(try Self.request(current: leaf0, signedBy: key0)) == .superseded(leaf0.serialHex))
        let audit = try await state.store.read { tx in try tx.auditChain() }
        #expect(audit.filter { $0.action == "relay.cert.renew" && $0.targetID == relay.id }.count == 1)

        // The next renewal, from leaf1: leaf0 (and the key gen-csr left on disk) is revoked.
        let key2 = P256.Signing.PrivateKey()
        #expect(await refusal(try Self.request(current: leaf1, signedBy: key1, newKey: key2)) == .tooSoon)
        try state.store.executeRawForTesting(backdate)
        let leaf2 = try await renew(try Self.request(current: leaf1, signedBy: key1, newKey: key2))
        var revoked = Set(try await state.store.read { tx in try tx.revokedCertificates(kind: .relay) }.map(\.serial))
        #expect(revoked == [leaf0.serialHex], "only the leaves before the one the relay renewed from are revoked")
        #expect(await refusal(try Self.request(current: leaf0, signedBy: key0, newKey: key2)) == .revoked(leaf0.serialHex))

        // Removing the relay revokes every leaf of it still in date, and none renews any more.
        _ = try await service.removeRelay(relay.id, by: state.actor)
        revoked = Set(try await state.store.read { tx in try tx.revokedCertificates(kind: .relay) }.map(\.serial))
        #expect(revoked == [leaf0.serialHex, leaf1.serialHex, leaf2.serialHex])
        #expect(await refusal(try Self.request(current: leaf2, signedBy: key2)) == .unknownLeaf(leaf2.serialHex))
    }

    /// A leaf issued is not a leaf served: the controller counts a relay's renewed leaf as the
    /// one it serves only once the relay presents it. Until then `cox pki status` and the
    /// expiry alert follow the old one, and the holder's refused request shows as a failure.
    @Test func aRenewedRelayLeafCountsOnlyOnceTheRelayPresentsIt() async throws {
        let state = try TestState()
        let key0 = P256.Signing.PrivateKey()
        let (relay, leaf0) = try await Self.enroll(state, key: key0)
        let store = state.store
        func fetched() async throws -> RelayRecord { try await store.read { tx in try tx.relay(relay.id) } }
        func relayEntries() async throws -> [CertificateEntry] {
            try await store.read { tx in try tx.certificateInventory() }.filter { $0.kind == .relay && $0.name.hasPrefix("edge-1") }
        }
        #expect(try await fetched().renewalNote == "not seen yet")
        #expect(try await relayEntries().map(\.serial) == [leaf0.serialHex], "never seen: the issued leaf stands for it")

        // Another relay's leaf (a host re-enrolled under the same name) is not recorded as this one's.
        let (_, other) = try await Self.enroll(state, key: P256.Signing.PrivateKey(), name: "edge-2")
        #expect(try await store.write { tx in try tx.recordPresentedRelayLeaf(relay: relay.id, serial: other.serialHex) } == false)
        #expect(try await store.write { tx in try tx.recordPresentedRelayLeaf(relay: relay.id, serial: leaf0.serialHex.uppercased()) })
        let seen = try await fetched()
        #expect(seen.presentsIssuedLeaf && seen.renewalNote == "enrolled leaf")
        #expect(try await store.write { tx in try tx.recordPresentedRelayLeaf(relay: relay.id, serial: leaf0.serialHex) } == false,
                "the same leaf again is not a change")

        try store.executeRawForTesting("UPDATE relay_leaves SET issued_at = issued_at - 7200000000")
        let key1 = P256.Signing.PrivateKey()
        let leaf1 = try await Self.renew(state.service, try Self.request(current: leaf0, signedBy: key0, newKey: key1))
        var stored = try await fetched()
        #expect(stored.certSerial == leaf1.serialHex && stored.presentedSerial == leaf0.serialHex)
        #expect(stored.renewalNote == "renewed leaf issued, not presented yet")
        // Both listed: the served one under the relay's name, the new one beside it.
        var entries = try await relayEntries()
        #expect(Set(entries.map { "\($0.name) \($0.serial)" }) == ["edge-1 \(leaf0.serialHex)", "edge-1 (not presented yet) \(leaf1.serialHex)"])

        // Leaf 0 in its last fifth and the relay never installed leaf 1: the alert names leaf 0.
        try store.executeRawForTesting("UPDATE relay_leaves SET not_before = not_before - ?, not_after = not_after - ? WHERE serial = ?",
                                       [Int64(25 * 86_400_000_000), Int64(25 * 86_400_000_000), leaf0.serialHex])
        let opened = try await CertificateWatch.check(store)
        #expect(opened.contains { $0.detail.contains(leaf0.serialHex) && $0.detail.contains("\"name\":\"edge-1\"") }, "\(opened.map(\.detail))")
        #expect(!opened.contains { $0.detail.contains(leaf1.serialHex) })

        // A request only the leaf's holder can make, refused: recorded as the relay's failure.
        // A forged one (someone else's proof) is not: it would let anyone fake that state.
        #expect(await Self.refusal(state.service, try Self.request(current: leaf0, signedBy: P256.Signing.PrivateKey())) == .badProof)
        #expect(try await fetched().certRenewal == "renewed")
        #expect(await Self.refusal(state.service, try Self.request(current: leaf0, signedBy: key0)) == .superseded(leaf0.serialHex))
        stored = try await fetched()
        #expect(stored.certRenewal == "failed: \(RelayRenewalError.superseded(leaf0.serialHex))" && stored.renewalNote == stored.certRenewal)

        // The relay presents leaf 1 (its next handshake): leaf 0 drops out and its alert resolves.
        #expect(try await store.write { tx in try tx.recordPresentedRelayLeaf(relay: relay.id, serial: leaf1.serialHex) })
        entries = try await relayEntries()
        #expect(entries.map(\.serial) == [leaf1.serialHex] && entries[0].name == "edge-1")
        try await CertificateWatch.check(store)
        let open = try await store.read { tx in try tx.alerts(AlertQuery(status: .open, kind: CertificateWatch.alertKind, limit: 100)).items }
        #expect(!open.contains { $0.detail.contains(leaf0.serialHex) })
    }

    @Test func relayLeafLifetimesAreBounded() async throws {
        let state = try TestState()
        await #expect(throws: FleetInputError.relayCertificateDays(0)) { _ = try await Self.enroll(state, key: P256.Signing.PrivateKey(), days: 0) }
        await #expect(throws: FleetInputError.relayCertificateDays(366)) { _ = try await Self.enroll(state, key: P256.Signing.PrivateKey(), days: 366) }
        let (_, leaf) = try await Self.enroll(state, key: P256.Signing.PrivateKey(), days: 7)
        #expect(abs(leaf.notValidAfter.timeIntervalSince(leaf.notValidBefore) - 7 * 86400) < 600)
        // A relay proves its key with P-256 signatures when it renews: a P-384 key is refused at enrollment.
        let p384 = try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName("pharos-relay") }, privateKey: Certificate.PrivateKey(P384.Signing.PrivateKey()),
            attributes: CertificateSigningRequest.Attributes(), signatureAlgorithm: .ecdsaWithSHA384).serializeAsPEM().pemString
        await #expect(throws: CertificateIssueError.self) {
            _ = try await state.service.enrollRelay(csrPEM: p384, endpoint: "127.0.0.1:1", hostname: "big.example.org", name: "big",
                                                    publicAddr: nil, by: state.actor)
        }
    }

    /// The real relay (`relay run`'s code) behind the tunnel the real controller dialed: once
    /// its clock says two thirds of its leaf's life went by, it renews over the tunnel, stores
    /// the new leaf and presents it on both ports, while clients keep reaching the controller.
    @Test func aRemoteRelayRenewsItsLeafOverItsTunnel() async throws {
        let offset = Mutex<TimeInterval>(0)
        let fleet = try await AccountFleet(transport: .remote, relayNow: { Date() + offset.withLock { $0 } }, relayRenewalCheckSeconds: 1)
        do {
            let store = fleet.state.store
            let relay = try #require(try await store.read { tx in try tx.relays() }.first)
            let paths = RelayPaths(directory: "\(fleet.state.dir)/relay")
            // A client gets through: the tunnel is up.
            let user = try await fleet.userWithProfile(email: "rui@example.org")
            let accounts = AccountService(fleet: fleet.state.service)
            var device = AccountFleet.Device()
            var claimed = false
            for _ in 0..<80 where !claimed {
                do {
                    _ = try await fleet.claim(&device, token: try await accounts.invite(user: user.id, relay: fleet.relayAddr, by: fleet.state.actor).link.token)
                    claimed = true
                } catch where rpcCode(error) == .unavailable {
                    try await Task.sleep(for: .milliseconds(250))
                }
            }
            #expect(claimed, "no call reached the controller through the relay")
            #expect(!FileManager.default.fileExists(atPath: paths.renewedIdentity), "renewed before it was due")
            // The controller's handshake recorded the leaf the relay presents.
            var seen = false
            for _ in 0..<50 where !seen {
                seen = try await store.read { tx in try tx.relay(relay.id) }.presentedSerial == relay.certSerial
                if !seen { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(seen, "the enrolled leaf was not recorded as presented")

            // Enrolled less than an hour ago: the controller's hourly limit applies; move that back too.
            try store.executeRawForTesting("UPDATE relay_leaves SET issued_at = issued_at - 7200000000")
            offset.withLock { $0 = 21 * 86400 }
            var renewed: String?
            for _ in 0..<100 where renewed == nil {
                try await Task.sleep(for: .milliseconds(100))
                let serial = try await store.read { tx in try tx.relay(relay.id) }.certSerial
                if serial != relay.certSerial, FileManager.default.fileExists(atPath: paths.renewedIdentity) { renewed = serial }
            }
            let serial = try #require(renewed, "the relay did not renew within 10 s")
            try await Task.sleep(for: .milliseconds(300))  // the file first, then the ports
            let onDisk = try RelayCertificates(paths: paths, logger: AccountFleet.logger)
            #expect(onDisk.leaf.serialHex == serial)

            // The client port presents the new leaf to the next handshake, as openssl sees it.
            let presented = try OpenSSLProbe.presentedSerial(port: fleet.relayPort, clientChainPEM: device.certificatePEM,
                                                              clientKeyPEM: device.key.pemRepresentation,
                                                              rootPEM: try fleet.state.pki.authority.root.certificate.pemString())
            #expect(presented == serial)
            // Clients still reach the controller through it, over the tunnel that was up before.
            let session = try await fleet.withClient(device: device) { client in try await client.session() }
            #expect(!session.sessionToken.isEmpty)

            // A reconcile interval later the controller redials once and sees the new leaf: it
            // counts as served from then on, and clients go on through the new tunnel.
            var served: RelayRecord?
            for _ in 0..<100 where served == nil {
                try await Task.sleep(for: .milliseconds(100))
                let stored = try await store.read { tx in try tx.relay(relay.id) }
                if stored.presentedSerial == serial { served = stored }
            }
            #expect(served?.renewalNote == "renewed", "the renewed leaf was not seen at a handshake within 10 s")
            let entries = try await store.read { tx in try tx.certificateInventory() }.filter { $0.kind == .relay }
            #expect(entries.map(\.serial) == [serial])
            var again = false
            for _ in 0..<40 where !again {
                do {
                    again = try await !fleet.withClient(device: device) { client in try await client.session() }.sessionToken.isEmpty
                } catch where rpcCode(error) == .unavailable {
                    try await Task.sleep(for: .milliseconds(250))
                }
            }
            #expect(again, "no call through the redialed tunnel")
        } catch {
            await fleet.stop()
            throw error
        }
        await fleet.stop()
    }
}
