import Foundation
import GRPCCore
import PharosProto
import SwiftProtobuf
import Testing
@testable import NodeAgent

/// The protobuf edge without sockets: each RPC's translation to the core and back, and the
/// status code and message of every refusal, exactly as the controller sees them.
@Suite final class NodeControlServiceTests {
    let dir: String
    let core: NodeAgentCore
    let service: NodeControlService

    init() throws {
        dir = try Support.temporaryDirectory()
        core = try NodeAgentCore(dataPlane: InMemoryDataPlane(), identity: .generate(), statePath: "\(dir)/state.json", logger: Support.logger,
                                 xray: XRayService(configPath: "\(dir)/xray.json", binary: "", logger: Support.logger))
        service = NodeControlService(core: core, events: EventHub(logger: Support.logger), agentVersion: "node test", logger: Support.logger)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: dir)
    }

    let context = ServerContext(descriptor: MethodDescriptor(fullyQualifiedService: "pharos.node.v1.NodeControl", method: "Test"),
                                remotePeer: "test", localPeer: "test", cancellation: .init())

    /// The RPC error `body` answers with.
    func refusal(_ body: () async throws -> Void) async -> RPCError? {
        await #expect(throws: RPCError.self) { try await body() }
    }

    @Test func pushConfigAnswersRevisionsAndRefusesWithTheRightCodes() async throws {
        let first = try await service.pushConfig(request: Wire.push(7, [Wire.peer("dev-1", ip: "10.86.0.2/32")]), context: context)
        #expect(first.appliedRevision == 7 && first.reloaded)
        let again = try await service.pushConfig(request: Wire.push(7, []), context: context)
        #expect(again.appliedRevision == 7 && !again.reloaded)

        let stale = await refusal { _ = try await self.service.pushConfig(request: Wire.push(6, []), context: self.context) }
        #expect(stale?.code == .failedPrecondition)
        #expect(stale?.message == "revision 6 is older than the applied revision 7; refusing to go back")

        var garbage = try Wire.push(8, [])
        garbage.config = Data([0xff, 0xff, 0xff])
        let unreadable = await refusal { _ = try await self.service.pushConfig(request: garbage, context: self.context) }
        #expect(unreadable?.code == .invalidArgument)
        #expect(unreadable?.message.hasPrefix("invalid config: config is not a serialized AmneziaWGConfig: ") == true)

        var bad = Wire.peer("dev-2", ip: "10.86.0.3/32")
        bad.publicKey = "short"
        let invalid = await refusal { _ = try await self.service.pushConfig(request: try Wire.push(8, [bad]), context: self.context) }
        #expect(invalid?.code == .invalidArgument)
        #expect(invalid?.message == #"invalid config: peer "dev-2": public_key must be a base64 32-byte key"#)

        var unspecified = try Wire.push(8, [])
        unspecified.protocol = .unspecified
        let unsupported = await refusal { _ = try await self.service.pushConfig(request: unspecified, context: self.context) }
        #expect(unsupported?.code == .unimplemented)
        #expect(unsupported?.message == "protocol unspecified is not supported")
        #expect(await core.state.amneziaWGRevision == 7)
    }

    /// The fence is applied before the content is validated, on the wire too.
    @Test func aRepeatedPushIsANoOpWhateverItCarries() async throws {
        _ = try await service.pushConfig(request: Wire.push(3, []), context: context)
        var bad = Wire.peer("dev-1", ip: "nonsense")
        bad.publicKey = "short"
        let repeated = try await service.pushConfig(request: Wire.push(3, [bad]), context: context)
        #expect(repeated.appliedRevision == 3 && !repeated.reloaded)
    }

    @Test func addAndRemovePeerAnswerThePeerID() async throws {
        let key = Support.key()
        var add = Pharos_Node_V1_AddPeerRequest()
        add.peer = Wire.peer("a", key: key, ip: "10.86.0.2/32")
        add.peer.protocol = .unspecified  // an AmneziaWG peer
        let added = try await service.addPeer(request: add, context: context)
        #expect(added.peerID == "a" && added.applied)
        add.peer = Wire.peer("a2", key: key, ip: "10.86.0.9/32")
        let updated = try await service.addPeer(request: add, context: context)
        #expect(updated.applied && updated.peerID == "a2")

        var remove = Pharos_Node_V1_RemovePeerRequest()
        remove.protocol = .amneziawg
        remove.publicKey = key
        let removed = try await service.removePeer(request: remove, context: context)
        #expect(removed.applied && removed.peerID == "a2")
        let missing = try await service.removePeer(request: remove, context: context)
        #expect(missing.applied && missing.peerID.isEmpty, "removing a missing peer still answers applied")

        add.peer.protocol = .UNRECOGNIZED(9)
        let unknown = await refusal { _ = try await self.service.addPeer(request: add, context: self.context) }
        #expect(unknown?.code == .unimplemented)
    }

    @Test func listPeersFiltersByProtocolAndMetricsAddUp() async throws {
        var add = Pharos_Node_V1_AddPeerRequest()
        add.peer = Wire.peer("a", ip: "10.86.0.2/32")
        _ = try await service.addPeer(request: add, context: context)
        (add.peer.id, add.peer.protocol, add.peer.publicKey, add.peer.flow) = ("x", .xrayReality, UUID().uuidString, "xtls-rprx-vision")
        _ = try await service.addPeer(request: add, context: context)

        func listed(_ proto: Pharos_Node_V1_Protocol) async throws -> [String] {
            var request = Pharos_Node_V1_ListPeersRequest()
            request.protocol = proto
            return try await service.listPeers(request: request, context: context).peers.map(\.peer.id)
        }
        #expect(try await listed(.unspecified) == ["x", "a"])
        #expect(try await listed(.amneziawg) == ["a"])
        #expect(try await listed(.xrayReality) == ["x"])
        #expect(try await listed(.UNRECOGNIZED(9)).isEmpty)

        let list = try await service.listPeers(request: Pharos_Node_V1_ListPeersRequest(), context: context).peers
        #expect(list[0].peer.protocol == .xrayReality && list[0].peer.flow == "xtls-rprx-vision")
        #expect(list[1].peer.protocol == .amneziawg && list[1].peer.allowedIps == ["10.86.0.2/32"])
        #expect(!list[1].hasLastHandshake, "no handshake, no timestamp")
        let metrics = try await service.getMetrics(request: Pharos_Node_V1_GetMetricsRequest(), context: context)
        #expect(metrics.peers == list && metrics.totalRxBytes == 0)
    }

    @Test func getStatusCarriesBothServicesAndTheKeys() async throws {
        _ = try await service.pushConfig(request: Wire.push(2, [Wire.peer("a", ip: "10.86.0.2/32")]), context: context)
        let status = try await service.getStatus(request: Pharos_Node_V1_GetStatusRequest(), context: context)
        #expect(status.agentVersion == "node test")
        #expect(status.appliedRevision == 2)
        #expect(status.services.map(\.protocol) == [.amneziawg, .xrayReality])
        #expect(status.services.first?.peerCount == 1)
        #expect(status.services.first?.newestHandshakeAgeSeconds == -1, "no handshake yet is -1")
        #expect(status.amneziawg.publicKey == core.identity.publicKey)
        #expect(status.amneziawg.obfuscation.h1 == core.identity.obfuscation.h1)
        #expect(status.xray.publicKey == core.xrayIdentity.publicKey)
    }

    @Test func restartAndNetworkPolicyRefusalsKeepTheirCodes() async throws {
        var restart = Pharos_Node_V1_RestartServiceRequest()
        restart.protocol = .xrayReality
        let notRestartable = await refusal { _ = try await self.service.restartService(request: restart, context: self.context) }
        #expect(notRestartable?.code == .unimplemented)
        #expect(notRestartable?.message == "only AmneziaWG can be restarted on this node")
        restart.protocol = .amneziawg
        #expect(try await service.restartService(request: restart, context: context).restarted)

        let noPolicy = await refusal {
            _ = try await self.service.setNetworkConfig(request: Pharos_Node_V1_SetNetworkConfigRequest(), context: self.context)
        }
        #expect(noPolicy?.code == .unimplemented)
        #expect(noPolicy?.message == "the in-memory benchmark data plane does not apply network policy")
    }

    @Test func eventsGoOutAsTheirProtobufMessage() {
        let at = Date(timeIntervalSince1970: 1_700_000_000)
        let event = Pharos_Node_V1_Event(NodeEvent(at: at, type: .peerConnected, peerID: "dev-1", message: "connected",
                                                   sourceEndpoint: "192.0.2.2:51000", rxBytes: 148, txBytes: 92))
        #expect(event.at == Google_Protobuf_Timestamp(seconds: 1_700_000_000))
        #expect(event.type == .peerConnected && event.protocol == .amneziawg)
        #expect(event.peerID == "dev-1" && event.message == "connected" && event.sourceEndpoint == "192.0.2.2:51000")
        #expect(event.rxBytes == 148 && event.txBytes == 92)
    }
}
