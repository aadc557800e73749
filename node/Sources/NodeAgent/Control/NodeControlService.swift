import GRPCCore
import Logging
import PharosProto

/// `pharos.node.v1.NodeControl`: translates RPCs to `NodeAgentCore` calls and its
/// failures to gRPC status codes.
public struct NodeControlService: Pharos_Node_V1_NodeControl.SimpleServiceProtocol {
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
        await core.status(agentVersion: agentVersion)
    }

    public func getMetrics(request: Pharos_Node_V1_GetMetricsRequest, context: ServerContext) async throws -> Pharos_Node_V1_GetMetricsResponse {
        await core.metrics()
    }

    public func pushConfig(request: Pharos_Node_V1_PushConfigRequest, context: ServerContext) async throws -> Pharos_Node_V1_PushConfigResponse {
        try await mapped { () async throws(NodeAgentCore.Failure) in try await core.pushConfig(request) }
    }

    public func addPeer(request: Pharos_Node_V1_AddPeerRequest, context: ServerContext) async throws -> Pharos_Node_V1_PeerResponse {
        try await mapped { () async throws(NodeAgentCore.Failure) in try await core.addPeer(request.peer) }
    }

    public func removePeer(request: Pharos_Node_V1_RemovePeerRequest, context: ServerContext) async throws -> Pharos_Node_V1_PeerResponse {
        try await mapped { () async throws(NodeAgentCore.Failure) in try await core.removePeer(request) }
    }

    public func listPeers(request: Pharos_Node_V1_ListPeersRequest, context: ServerContext) async throws -> Pharos_Node_V1_ListPeersResponse {
        await core.listPeers(request)
    }

    public func restartService(request: Pharos_Node_V1_RestartServiceRequest, context: ServerContext) async throws -> Pharos_Node_V1_RestartServiceResponse {
        try await mapped { () async throws(NodeAgentCore.Failure) in try await core.restart(request) }
    }

    public func setNetworkConfig(request: Pharos_Node_V1_SetNetworkConfigRequest, context: ServerContext) async throws -> Pharos_Node_V1_SetNetworkConfigResponse {
        try await mapped { () async throws(NodeAgentCore.Failure) in try await core.setNetworkConfig(request.config) }
    }

    public func configureInnerLink(request: Pharos_Node_V1_ConfigureInnerLinkRequest, context: ServerContext) async throws -> Pharos_Node_V1_ConfigureInnerLinkResponse {
        throw RPCError(code: .unimplemented, message: "inner links belong to the cascade work and are not built yet")
    }

    public func removeInnerLink(request: Pharos_Node_V1_RemoveInnerLinkRequest, context: ServerContext) async throws -> Pharos_Node_V1_RemoveInnerLinkResponse {
        throw RPCError(code: .unimplemented, message: "inner links belong to the cascade work and are not built yet")
    }

    public func watchEvents(request: Pharos_Node_V1_WatchEventsRequest, response: RPCWriter<Pharos_Node_V1_Event>, context: ServerContext) async throws {
        for await event in events.subscribe() {
            try await response.write(event)
        }
    }

    private func mapped<T>(_ body: () async throws(NodeAgentCore.Failure) -> T) async throws -> T {
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
