import Crypto
import Foundation
import PharosProto
import PharosSpec
import Testing
@testable import NodeAgent

@Suite struct XRayTests {
    static let uuid = "0b6f9a2e-7c1d-4e5f-8a9b-1c2d3e4f5a6b"

    static func config(port: UInt32 = 443, peers: [String] = [uuid]) -> Pharos_Node_V1_XRayRealityConfig {
        var c = Pharos_Node_V1_XRayRealityConfig()
        c.dest = "www.microsoft.com:443"
        c.serverNames = ["www.microsoft.com"]
        c.shortIds = ["", "0123abcd"]
        c.port = port
        c.peers = peers.enumerated().map { i, id in
            var p = Pharos_Node_V1_Peer()
            p.id = "dev-\(i)"
            p.protocol = .xrayReality
            p.publicKey = id
            p.flow = "xtls-rprx-vision"
            return p
        }
        return c
    }

    @Test func identityIsClampedAndItsPublicKeyMatchesX25519() throws {
        let identity = XRayIdentity.generate()
        let raw = try #require(Base64.decodeRawURL(identity.privateKey))
        #expect(raw[0] & 7 == 0 && raw[31] & 128 == 0 && raw[31] & 64 == 64)
        let expected = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw).publicKey.rawRepresentation
        #expect(Base64.decodeRawURL(identity.publicKey) == Array(expected))
        #expect(!identity.publicKey.contains("=") && !identity.publicKey.contains("+"))
    }

    @Test func rendersTheVLESSRealityServer() throws {
        let config = try XRayServerConfig(Self.config()).validated()
        let json = try JSONValue(parsing: config.rendered(privateKey: "PRIVATE"))
        guard case .array(let inbounds) = json["inbounds"], let inbound = inbounds.first else { Issue.record("no inbound"); return }
        #expect(inbound["protocol"] == .string("vless"))
        #expect(inbound["port"] == .number("443"))
        #expect(inbound["settings"]?["clients"] == .array([.object([JSONMember("id", .string(Self.uuid)), JSONMember("flow", .string("xtls-rprx-vision"))])]))
        #expect(inbound["settings"]?["decryption"] == .string("none"))
        let reality = inbound["streamSettings"]?["realitySettings"]
        #expect(reality?["dest"] == .string("www.microsoft.com:443"))
        #expect(reality?["privateKey"] == .string("PRIVATE"))
        #expect(reality?["shortIds"] == .array([.string(""), .string("0123abcd")]))
        #expect(json["outbounds"] == .array([.object([JSONMember("protocol", .string("freedom"))])]))
    }

    @Test(arguments: ["not-a-uuid"])
    func rejectsBadClients(id: String) {
        #expect(throws: PeerValidationError.self) { _ = try XRayServerConfig(Self.config(peers: [id])).validated() }
    }

    @Test func rejectsBadPolicy() {
        var c = Self.config()
        c.dest = "nowhere"
        #expect(throws: PeerValidationError.self) { _ = try XRayServerConfig(c).validated() }
        c = Self.config()
        c.shortIds = ["xyz"]
        #expect(throws: PeerValidationError.self) { _ = try XRayServerConfig(c).validated() }
    }

    @Test func pushIsFencedRenderedAt0600AndStatusIsHonestWithoutABinary() async throws {
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let service = XRayService(configPath: "\(dir)/xray.json", binary: "", logger: Support.logger)
        let core = try NodeAgentCore(dataPlane: InMemoryDataPlane(), identity: .generate(), statePath: "\(dir)/state.json",
                                     logger: Support.logger, xray: service)
        let pushed = XRayServerConfig(Self.config())
        #expect(try await core.pushXRay(revision: 3, config: pushed).reloaded)
        #expect(try Support.mode("\(dir)/xray.json") == 0o600)
        #expect(try String(contentsOfFile: "\(dir)/xray.json", encoding: .utf8).contains(core.xrayIdentity.privateKey))
        await #expect(throws: NodeAgentCore.Failure.staleRevision(pushed: 2, applied: 3)) { _ = try await core.pushXRay(revision: 2, config: pushed) }

        try await core.addXRayClient(XRayServerConfig.Client(peerID: "dev-9", id: UUID().uuidString))
        #expect(await core.listPeers(amneziaWG: false).map(\.peerID) == ["dev-0", "dev-9"])

        let status = await core.status()
        #expect(status.xrayReality.running == false && status.xrayReality.listening == false)
        #expect(status.xrayReality.detail.contains("not configured"))
        #expect(status.xrayPublicKey == core.xrayIdentity.publicKey)

        let restarted = try NodeAgentCore(dataPlane: InMemoryDataPlane(), identity: .generate(), statePath: "\(dir)/state.json",
                                          logger: Support.logger, xray: service)
        #expect(await restarted.state.xrayRevision == 3)
        #expect(await restarted.state.xray.clients.count == 2)
    }

    @Test func clientsAreUpsertedAndRemovedByTheirUUIDWhateverItsCase() async throws {
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let core = try NodeAgentCore(dataPlane: InMemoryDataPlane(), identity: .generate(), statePath: "\(dir)/state.json",
                                     logger: Support.logger, xray: XRayService(configPath: "\(dir)/xray.json", binary: "", logger: Support.logger))
        let uuid = UUID().uuidString
        try await core.addXRayClient(XRayServerConfig.Client(peerID: "a", id: uuid, flow: "xtls-rprx-vision"))
        try await core.addXRayClient(XRayServerConfig.Client(peerID: "a2", id: uuid.lowercased()))
        #expect(await core.state.xray.clients == [XRayServerConfig.Client(peerID: "a2", id: uuid.lowercased())])
        await #expect(throws: NodeAgentCore.Failure.invalidConfig(#"peer "b": flow "udp" is not a supported VLESS flow"#)) {
            try await core.addXRayClient(XRayServerConfig.Client(peerID: "b", id: UUID().uuidString, flow: "udp"))
        }
        #expect(try await core.removeXRayClient(id: uuid) == "a2")
        #expect(try await core.removeXRayClient(id: uuid) == nil, "removing a missing client succeeds and names nobody")
        #expect(await core.state.xray.clients.isEmpty)
    }
}
