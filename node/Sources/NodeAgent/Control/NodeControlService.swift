import Foundation
import GRPCCore
import Logging
import PharosProto
import SwiftProtobuf

/// `pharos.node.v1.NodeControl`: the protobuf edge. Translates each request to domain values
/// (refusing a protocol or a config it cannot read), calls `NodeAgentCore`, and translates the
/// answer, or the core's failure, back to the wire.
public struct NodeControlService: Pharos_Node_V1_NodeControl.SimpleServiceProtocol {
    typealias Failure = NodeAgentCore.Failure

    let core: NodeAgentCore
    let events: EventHub
    let agentVersion: String
    let logger: Logger

    public init(core: NodeAgentCore, events: EventHub, agentVersion: String, logger: Logger) {
        self.core = core
        self.events = events
        self.agentVersion = agentVersion
        self.logger = logger
    }

    public func getStatus(request: Pharos_Node_V1_GetStatusRequest, context: ServerContext) async throws -> Pharos_Node_V1_GetStatusResponse {
        Pharos_Node_V1_GetStatusResponse(await core.status(), agentVersion: agentVersion)
    }

    public func getMetrics(request: Pharos_Node_V1_GetMetricsRequest, context: ServerContext) async throws -> Pharos_Node_V1_GetMetricsResponse {
        Pharos_Node_V1_GetMetricsResponse(await core.listPeers())
    }

    public func pushConfig(request: Pharos_Node_V1_PushConfigRequest, context: ServerContext) async throws -> Pharos_Node_V1_PushConfigResponse {
        let outcome = try await mapped { () async throws(Failure) -> NodeAgentCore.PushOutcome in
            switch request.protocol {
            case .amneziawg:
                let config = try Self.decode(Pharos_Node_V1_AmneziaWGConfig.self, named: "AmneziaWGConfig", from: request.config)
                return try await core.pushAmneziaWG(revision: request.revision, peers: config.peers.map(PeerSpec.init))
            case .xrayReality:
                let config = try Self.decode(Pharos_Node_V1_XRayRealityConfig.self, named: "XRayRealityConfig", from: request.config)
                return try await core.pushXRay(revision: request.revision, config: XRayServerConfig(config))
            default:
                throw .unsupportedProtocol("protocol \(request.protocol) is not supported")
            }
        }
        var response = Pharos_Node_V1_PushConfigResponse()
        response.appliedRevision = outcome.appliedRevision
        response.reloaded = outcome.reloaded
        return response
    }

    public func addPeer(request: Pharos_Node_V1_AddPeerRequest, context: ServerContext) async throws -> Pharos_Node_V1_PeerResponse {
        let peer = request.peer
        try await mapped { () async throws(Failure) in
            switch peer.protocol {
            case .xrayReality: try await core.addXRayClient(XRayServerConfig.Client(peer))
            // A peer that names no protocol is an AmneziaWG peer, the node's default plane.
            case .amneziawg, .unspecified: try await core.addPeer(PeerSpec(peer))
            default: throw .unsupportedProtocol("protocol \(peer.protocol) is not supported")
            }
        }
        var response = Pharos_Node_V1_PeerResponse()
        response.peerID = peer.id
        response.applied = true
        return response
    }

    public func removePeer(request: Pharos_Node_V1_RemovePeerRequest, context: ServerContext) async throws -> Pharos_Node_V1_PeerResponse {
        let removed = try await mapped { () async throws(Failure) -> String? in
            request.protocol == .xrayReality ? try await core.removeXRayClient(id: request.publicKey)
                : try await core.removePeer(publicKey: request.publicKey)
        }
        var response = Pharos_Node_V1_PeerResponse()
        response.peerID = removed ?? ""
        response.applied = true
        return response
    }

    public func listPeers(request: Pharos_Node_V1_ListPeersRequest, context: ServerContext) async throws -> Pharos_Node_V1_ListPeersResponse {
        let wanted = request.protocol
        var response = Pharos_Node_V1_ListPeersResponse()
        response.peers = await core.listPeers(amneziaWG: wanted == .unspecified || wanted == .amneziawg,
                                              xrayReality: wanted == .unspecified || wanted == .xrayReality)
            .map(Pharos_Node_V1_PeerState.init)
        return response
    }

    public func restartService(request: Pharos_Node_V1_RestartServiceRequest, context: ServerContext) async throws -> Pharos_Node_V1_RestartServiceResponse {
        try await mapped { () async throws(Failure) in
            guard request.protocol == .amneziawg else { throw .unsupportedProtocol("only AmneziaWG can be restarted on this node") }
            try await core.restartAmneziaWG()
        }
        var response = Pharos_Node_V1_RestartServiceResponse()
        response.restarted = true
        return response
    }

    public func setNetworkConfig(request: Pharos_Node_V1_SetNetworkConfigRequest, context: ServerContext) async throws -> Pharos_Node_V1_SetNetworkConfigResponse {
        try await mapped { () async throws(Failure) in try await core.setNetworkPolicy(NetworkPolicy(request.config)) }
        var response = Pharos_Node_V1_SetNetworkConfigResponse()
        response.applied = true
        return response
    }

    public func configureInnerLink(request: Pharos_Node_V1_ConfigureInnerLinkRequest, context: ServerContext) async throws -> Pharos_Node_V1_ConfigureInnerLinkResponse {
        let outcome = try await mapped { () async throws(Failure) -> NodeAgentCore.PushOutcome in
            guard request.config.hasExit else { throw .invalidConfig("inner link: config.exit is missing") }
            return try await core.configureInnerLink(InnerLink(request.config, revision: request.revision))
        }
        var response = Pharos_Node_V1_ConfigureInnerLinkResponse()
        response.appliedRevision = outcome.appliedRevision
        response.reloaded = outcome.reloaded
        return response
    }

    public func removeInnerLink(request: Pharos_Node_V1_RemoveInnerLinkRequest, context: ServerContext) async throws -> Pharos_Node_V1_RemoveInnerLinkResponse {
        var response = Pharos_Node_V1_RemoveInnerLinkResponse()
        response.removed = try await mapped { () async throws(Failure) -> Bool in try await core.removeInnerLink(interface: request.interface) }
        return response
    }

    public func watchEvents(request: Pharos_Node_V1_WatchEventsRequest, response: RPCWriter<Pharos_Node_V1_Event>, context: ServerContext) async throws {
        for await event in events.subscribe() {
            try await response.write(Pharos_Node_V1_Event(event))
        }
    }

    /// PushConfig's `config` bytes as the message its protocol says they are.
    private static func decode<M: SwiftProtobuf.Message>(_ type: M.Type, named name: String, from bytes: Data) throws(Failure) -> M {
        do { return try M(serializedBytes: bytes) } catch {
            throw .invalidConfig("config is not a serialized \(name): \(error)")
        }
    }

    /// Every refusal is logged and answered with the status code its kind calls for.
    private func mapped<T>(_ body: () async throws(Failure) -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            logger.warning("request refused", metadata: ["reason": "\(error)"])
            switch error {
            case .staleRevision: throw RPCError(code: .failedPrecondition, message: error.description)
            case .invalidConfig: throw RPCError(code: .invalidArgument, message: error.description)
            case .unsupportedProtocol: throw RPCError(code: .unimplemented, message: error.description)
            case .dataPlane: throw RPCError(code: .unavailable, message: error.description)
            }
        }
    }
}
