import Crypto
import Foundation
import PharosProto
import PharosSpec
import PharosTestSupport
import Testing
@testable import Coxswain

@Suite struct ProvisioningTests {
    @Test func subnetAllocationSkipsNetworkGatewayAndBroadcast() throws {
        let subnet = try #require(IPv4Subnet("10.9.0.0/29"))
        var used = Set<String>()
        while let next = subnet.firstFree(excluding: used) { used.insert(next) }
        #expect(used == ["10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"])
        #expect(subnet.gateway == "10.9.0.1")
        #expect(IPv4Subnet("10.9.0.1/29") == nil, "host bits set")
        #expect(IPv4Subnet("10.9.0.0/33") == nil && IPv4Subnet("10.9.0/24") == nil && IPv4Subnet("010.9.0.0/24") == nil)
        #expect(subnet.contains("10.9.0.7") && !subnet.contains("10.9.0.8"))
    }

    @Test func deviceGetsAPeerOnEveryNodeOfItsSpecsAndASealedBundleOnlyItCanOpen() async throws {
        let state = try TestState()
        let (n1, n2, _) = try await state.aliceWithTwoSpecs()
        let deviceKey = Curve25519.KeyAgreement.PrivateKey()
        let added = try await state.service.addDevice(user: "alice@example.com", name: "laptop",
                                                      encryptionKey: Array(deviceKey.publicKey.rawRepresentation), by: state.actor)
        #expect(added.affectedNodes == [n1.id, n2.id])
        let (peers, nodes, profile) = try await state.store.read { tx in
            (try tx.peers(device: added.value.id), try tx.nodes(), try tx.profile(device: added.value.id))
        }
        #expect(peers.count == 3, "AmneziaWG on both nodes, VLESS on n2")
        #expect(Set(peers.map(\.allowedIP)) == ["10.86.0.2/32"])
        #expect(nodes.allSatisfy { $0.configRevision == 1 }, "each affected node's revision moved once")
        let awg = peers.filter { $0.protocol == .amneziawg }
        #expect(Set(awg.map(\.presharedKey)).count == 2, "one PSK per device x node")
        #expect(awg.allSatisfy { Data(base64Encoded: $0.presharedKey)?.count == 32 })

        // The bundle opens with the device's key only, carries a valid signature, and matches the peers.
        let sealed = try #require(profile)
        let plaintext = try SealedBundle.open(Array(sealed.ciphertext), with: deviceKey,
                                              signingPublicKey: state.pki.signingKey.publicKey)
        let bundle = try ProfileBundle(jsonBytes: plaintext)
        #expect(bundle.revision == 1 && bundle.user == "alice@example.com" && bundle.profiles.count == 2)
        guard case .amneziaWG(let params) = try #require(bundle.profiles.first?.nodes.first?.protocols.first) else {
            Issue.record("no AmneziaWG params"); return
        }
        let derived = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: try #require(Data(base64Encoded: params.privateKey)))
        #expect(derived.publicKey.rawRepresentation.base64EncodedString() == awg.first?.publicKey)
        #expect(params.publicKey == n1.wgPublicKey && params.endpoints.first?.ip == "198.51.100.1")
        #expect(throws: (any Error).self) {
            try SealedBundle.open(Array(sealed.ciphertext), with: Curve25519.KeyAgreement.PrivateKey(),
                                  signingPublicKey: state.pki.signingKey.publicKey)
        }
        let stored = String(decoding: sealed.ciphertext, as: UTF8.self)
        #expect(!stored.contains(params.privateKey) && !stored.contains("alice@example.com"), "the store holds ciphertext only")
    }

    @Test func devicesAreNotPlacedOnNodesWhoseKeysAreUnknown() async throws {
        let state = try TestState()
        let csr = try NodeCSRFixture.csr(for: .init())
        let pending = try await state.service.enrollNode(csrPEM: csr, controlAddress: "192.0.2.9", name: "fresh", region: "", by: state.actor)
        #expect(pending.node.controlAddr == "192.0.2.9:8444")
        _ = try await state.service.addUser(name: "A", email: "a@example.com", by: state.actor)
        await #expect(throws: ProvisioningError.nodeNotReady(node: "fresh")) {
            try await state.service.createProfileSpec(user: "a@example.com", name: "p", node: "fresh", protocol: .amneziawg, by: state.actor)
        }
        let plain = try await state.readyNode(name: "plain")
        await #expect(throws: ProvisioningError.protocolUnavailable(node: "plain", protocol: "xray-reality")) {
            try await state.service.createProfileSpec(user: "a@example.com", name: "p", node: plain.id, protocol: .both, by: state.actor)
        }
    }

    @Test func removingADeviceTakesItsPeersOffAndMovesRevisions() async throws {
        let state = try TestState()
        let node = try await state.readyNode(name: "n1")
        _ = try await state.service.addUser(name: "A", email: "a@example.com", by: state.actor)
        _ = try await state.service.createProfileSpec(user: "a@example.com", name: "p", node: node.id, protocol: .amneziawg, by: state.actor)
        let a = try await state.service.addDevice(user: "a@example.com", name: "a", by: state.actor)
        let b = try await state.service.addDevice(user: "a@example.com", name: "b", by: state.actor)
        #expect(a.value.tunnelIP == "10.86.0.2" && b.value.tunnelIP == "10.86.0.3")
        let removed = try await state.service.removeDevice(a.value.id, by: state.actor)
        #expect(removed.affectedNodes == [node.id])
        let (peers, revision) = try await state.store.read { tx in (try tx.peers(node: node.id), try tx.node(node.id).configRevision) }
        #expect(peers.map(\.deviceID) == [b.value.id])
        #expect(revision == 3)
        let plan = try await state.store.read { tx in try NodeConfigPlan.build(node: try tx.node(node.id), peers: peers, config: state.config) }
        #expect(plan.revision == 3 && plan.requests.count == 1)
        let awg = try Pharos_Node_V1_AmneziaWGConfig(serializedBytes: plan.requests[0].config)
        #expect(awg.peers.map(\.allowedIps) == [["10.86.0.3/32"]])
        // A freed address is reused.
        let c = try await state.service.addDevice(user: "a@example.com", name: "c", by: state.actor)
        #expect(c.value.tunnelIP == "10.86.0.2")
        await #expect(throws: ProvisioningError.self) {
            try await state.service.addDevice(user: "a@example.com", name: "d", encryptionKey: [1, 2, 3], by: state.actor)
        }
    }

    /// Found by the e2e run: deleting a spec cascades to its peers, and the node that lost
    /// them was never bumped, so it kept serving the device.
    @Test func movingADeviceToAnotherNodeTellsTheNodeItLeft() async throws {
        let state = try TestState()
        let (n1, n2) = (try await state.readyNode(name: "n1"), try await state.readyNode(name: "n2"))
        _ = try await state.service.addUser(name: "A", email: "a@example.com", by: state.actor)
        let spec = try await state.service.createProfileSpec(user: "a@example.com", name: "p", node: n1.id, protocol: .amneziawg, by: state.actor)
        _ = try await state.service.addDevice(user: "a@example.com", name: "a", by: state.actor)
        let removed = try await state.service.removeProfileSpec(spec.value.id, by: state.actor)
        #expect(removed.affectedNodes == [n1.id])
        let moved = try await state.service.createProfileSpec(user: "a@example.com", name: "q", node: n2.id, protocol: .amneziawg, by: state.actor)
        #expect(moved.affectedNodes == [n2.id])
        let (peers1, revision1) = try await state.store.read { tx in (try tx.peers(node: n1.id), try tx.node(n1.id).configRevision) }
        #expect(peers1.isEmpty && revision1 == 2, "n1 got the device at revision 1 and must be told at 2 that it lost it")
    }

    @Test func nodeCertificateNamesTheDialedAddressNotTheCSR() async throws {
        let state = try TestState()
        let csr = try NodeCSRFixture.csr(for: .init(), commonName: "controller", san: "coxswain.example")
        let enrolled = try await state.service.enrollNode(csrPEM: csr, controlAddress: "203.0.113.7:8444", name: nil, region: "", by: state.actor)
        let dir = "\(state.dir)/certs"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try enrolled.certificateChainPEM.write(toFile: "\(dir)/node.crt", atomically: true, encoding: .utf8)
        try enrolled.rootPEM.write(toFile: "\(dir)/ca.crt", atomically: true, encoding: .utf8)
        let verify = try Tool.run("/usr/bin/openssl", ["verify", "-purpose", "sslserver", "-CAfile", "\(dir)/ca.crt",
                                                   "-untrusted", "\(dir)/node.crt", "\(dir)/node.crt"]).output
        #expect(verify.contains("OK"), "\(verify)")
        let text = try Tool.run("/usr/bin/openssl", ["x509", "-in", "\(dir)/node.crt", "-noout", "-text"]).output
        #expect(text.contains("IP Address:203.0.113.7"))
        #expect(!text.contains("coxswain.example") && !text.contains("CN = controller"))
        #expect(enrolled.node.name == "203.0.113.7" && enrolled.node.publicIP == "203.0.113.7")
    }
}
