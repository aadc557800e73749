import PharosRuntime
import PharosWireGuard
import Foundation
import Logging
import PharosProto
import PharosProtoMapping
import SwiftProtobuf

/// The node's state machine: what the controller pushed, applied to the data plane
/// and persisted before the answer goes back. Every mutation is serialized here.
public actor NodeAgentCore {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case staleRevision(pushed: Int64, applied: Int64)
        case invalidConfig(String)
        case unsupportedProtocol(String)
        case dataPlane(String)

        public var description: String {
            switch self {
            case .staleRevision(let pushed, let applied):
                "revision \(pushed) is older than the applied revision \(applied); refusing to go back"
            case .invalidConfig(let reason): "invalid config: \(reason)"
            case .unsupportedProtocol(let reason): reason
            case .dataPlane(let reason): "data plane: \(reason)"
            }
        }
    }

    public nonisolated let dataPlane: any DataPlane
    public nonisolated let identity: AmneziaWGIdentity
    private let store: NodeStateStore
    private let logger: Logger
    private let started = Date()
    public private(set) var state: NodeState {
        didSet { idsByHexKey = nil }
    }
    private var idsByHexKey: [String: String]?
    /// Mutations await the data plane, and an actor is reentrant at every await: without
    /// this gate a push of revision 5 could pass its fence while revision 6 is still being
    /// applied, and land after it. Mutations therefore run one at a time, in arrival order.
    private let mutations = AsyncLock()

    /// nil for the in-memory benchmark plane, which must never touch the host's firewall.
    private let networkPolicy: NetworkPolicyApplier?

    public nonisolated let xrayIdentity: XRayIdentity
    private let xray: XRayService?

    public init(dataPlane: any DataPlane, identity: AmneziaWGIdentity, statePath: String, logger: Logger,
                networkPolicy: NetworkPolicyApplier? = nil, xray: XRayService? = nil,
                xrayIdentity: XRayIdentity = .generate()) throws {
        self.dataPlane = dataPlane
        self.xray = xray
        self.xrayIdentity = xrayIdentity
        self.networkPolicy = networkPolicy
        self.identity = identity
        self.store = NodeStateStore(snapshotPath: statePath)
        self.logger = logger
        self.state = try store.load()
    }

    /// Cold start: bring the data plane up with every persisted peer, before the
    /// control port opens.
    public func restore() async throws {
        try await dataPlane.start(identity: identity, peers: state.amneziaWGPeers)
        try networkPolicy?.reapply()
        if state.xrayRevision > 0 { try await xray?.apply(state.xray, identity: xrayIdentity) }
        logger.info("restored from disk", metadata: ["revision": "\(state.amneziaWGRevision)", "peers": "\(state.amneziaWGPeers.count)"])
    }

    /// PushConfig: lower revision refused, equal a no-op, higher applied atomically.
    public func pushConfig(_ request: Pharos_Node_V1_PushConfigRequest) async throws(Failure) -> Pharos_Node_V1_PushConfigResponse {
        try await mutations.withLock { () async throws(Failure) -> Pharos_Node_V1_PushConfigResponse in try await applyingPushConfig(request) }
    }

    private func applyingPushConfig(_ request: Pharos_Node_V1_PushConfigRequest) async throws(Failure) -> Pharos_Node_V1_PushConfigResponse {
        if request.protocol == .xrayReality { return try await pushXRay(request) }
        guard request.protocol == .amneziawg else {
            throw .unsupportedProtocol("protocol \(request.protocol) is not supported")
        }
        let config: Pharos_Node_V1_AmneziaWGConfig
        do { config = try Pharos_Node_V1_AmneziaWGConfig(serializedBytes: request.config) } catch {
            throw .invalidConfig("config is not a serialized AmneziaWGConfig: \(error)")
        }
        var response = Pharos_Node_V1_PushConfigResponse()
        if request.revision < state.amneziaWGRevision {
            throw .staleRevision(pushed: request.revision, applied: state.amneziaWGRevision)
        }
        if request.revision == state.amneziaWGRevision {
            response.appliedRevision = state.amneziaWGRevision
            response.reloaded = false
            return response
        }
        let peers = try validate(config.peers)
        var next = state
        next.amneziaWGRevision = request.revision
        next.amneziaWGPeers = peers
        do {
            try await dataPlane.replacePeers(peers, previous: state.amneziaWGPeers)
        } catch {
            throw .dataPlane("\(error)")
        }
        try persist(next, as: nil)
        logger.info("applied config", metadata: ["revision": "\(request.revision)", "peers": "\(peers.count)"])
        response.appliedRevision = request.revision
        response.reloaded = true
        return response
    }

    private func pushXRay(_ request: Pharos_Node_V1_PushConfigRequest) async throws(Failure) -> Pharos_Node_V1_PushConfigResponse {
        let pushed: Pharos_Node_V1_XRayRealityConfig
        do { pushed = try Pharos_Node_V1_XRayRealityConfig(serializedBytes: request.config) } catch {
            throw .invalidConfig("config is not a serialized XRayRealityConfig: \(error)")
        }
        var response = Pharos_Node_V1_PushConfigResponse()
        if request.revision < state.xrayRevision { throw .staleRevision(pushed: request.revision, applied: state.xrayRevision) }
        response.appliedRevision = request.revision
        guard request.revision > state.xrayRevision else { return response }
        var next = state
        do { next.xray = try XRayServerConfig(validating: pushed) } catch { throw .invalidConfig(error.description) }
        next.xrayRevision = request.revision
        try await applyXRay(next)
        response.reloaded = true
        return response
    }

    private func applyXRay(_ next: NodeState) async throws(Failure) {
        do { try await xray?.apply(next.xray, identity: xrayIdentity) } catch { throw .dataPlane("xray: \(error)") }
        try persist(next, as: nil)
    }

    /// AddPeer is an upsert by public key.
    public func addPeer(_ peer: Pharos_Node_V1_Peer) async throws(Failure) -> Pharos_Node_V1_PeerResponse {
        try await mutations.withLock { () async throws(Failure) -> Pharos_Node_V1_PeerResponse in try await applyingAddPeer(peer) }
    }

    private func applyingAddPeer(_ peer: Pharos_Node_V1_Peer) async throws(Failure) -> Pharos_Node_V1_PeerResponse {
        var response = Pharos_Node_V1_PeerResponse()
        response.peerID = peer.id
        response.applied = true
        if peer.protocol == .xrayReality {
            var next = state
            let client: XRayServerConfig.Client
            do { client = try XRayServerConfig.client(peer) } catch { throw .invalidConfig(error.description) }
            next.xray.clients.removeAll { $0.id == client.id }
            next.xray.clients.append(client)
            try await applyXRay(next)
            return response
        }
        guard peer.protocol == .amneziawg || peer.protocol == .unspecified else {
            throw .unsupportedProtocol("protocol \(peer.protocol) is not supported")
        }
        let spec = try validate([peer])[0]
        var next = state
        let previous = next.amneziaWGPeers.first { $0.publicKey == spec.publicKey }
        next.amneziaWGPeers.removeAll { $0.publicKey == spec.publicKey }
        next.amneziaWGPeers.append(spec)
        do { try await dataPlane.upsertPeer(spec, previous: previous) } catch { throw .dataPlane("\(error)") }
        try persist(next, as: .upsert(spec, generation: state.generation))
        return response
    }

    /// RemovePeer answers applied whether or not the peer existed.
    public func removePeer(_ request: Pharos_Node_V1_RemovePeerRequest) async throws(Failure) -> Pharos_Node_V1_PeerResponse {
        try await mutations.withLock { () async throws(Failure) -> Pharos_Node_V1_PeerResponse in try await applyingRemovePeer(request) }
    }

    private func applyingRemovePeer(_ request: Pharos_Node_V1_RemovePeerRequest) async throws(Failure) -> Pharos_Node_V1_PeerResponse {
        var response = Pharos_Node_V1_PeerResponse()
        response.applied = true
        if request.protocol == .xrayReality {
            guard let existing = state.xray.clients.first(where: { $0.id == request.publicKey.lowercased() }) else { return response }
            var next = state
            next.xray.clients.removeAll { $0.id == existing.id }
            try await applyXRay(next)
            response.peerID = existing.peerID
            return response
        }
        guard let existing = state.amneziaWGPeers.first(where: { $0.publicKey == request.publicKey }) else { return response }
        var next = state
        next.amneziaWGPeers.removeAll { $0.publicKey == request.publicKey }
        do { try await dataPlane.removePeer(existing) } catch { throw .dataPlane("\(error)") }
        try persist(next, as: .remove(publicKey: existing.publicKey, generation: state.generation))
        response.peerID = existing.id
        return response
    }

    public func listPeers(_ request: Pharos_Node_V1_ListPeersRequest) async -> Pharos_Node_V1_ListPeersResponse {
        var response = Pharos_Node_V1_ListPeersResponse()
        if request.protocol == .unspecified || request.protocol == .xrayReality {
            response.peers = state.xray.peers.map { peer in
                var ps = Pharos_Node_V1_PeerState()
                ps.peer = peer
                return ps
            }
        }
        guard request.protocol == .unspecified || request.protocol == .amneziawg else { return response }
        let runtime = (try? await dataPlane.status())?.peers ?? []
        let byKey = Dictionary(runtime.map { ($0.publicKeyHex, $0) }, uniquingKeysWith: { a, _ in a })
        response.peers += state.amneziaWGPeers.map { spec in
            var ps = Pharos_Node_V1_PeerState()
            ps.peer = spec.proto
            if let hex = WireGuardKey.hex(fromBase64: spec.publicKey), let live = byKey[hex] {
                ps.rxBytes = live.rxBytes
                ps.txBytes = live.txBytes
                if live.lastHandshakeSeconds > 0 { ps.lastHandshake = Google_Protobuf_Timestamp(seconds: live.lastHandshakeSeconds) }
                ps.peer.endpoints = live.endpoint.isEmpty ? [] : [live.endpoint]
            }
            return ps
        }
        return response
    }

    /// Hex public key → the controller's peer id, for events. Rebuilt lazily after a
    /// change, outside the actor's hot path (the observer asks every poll).
    public func peerIDsByHexKey() -> [String: String] {
        if let cached = idsByHexKey { return cached }
        var ids: [String: String] = [:]
        ids.reserveCapacity(state.amneziaWGPeers.count)
        for peer in state.amneziaWGPeers {
            if let hex = WireGuardKey.hex(fromBase64: peer.publicKey) { ids[hex] = peer.id }
        }
        idsByHexKey = ids
        return ids
    }

    public func metrics() async -> Pharos_Node_V1_GetMetricsResponse {
        let peers = await listPeers(Pharos_Node_V1_ListPeersRequest()).peers
        var response = Pharos_Node_V1_GetMetricsResponse()
        response.peers = peers
        response.totalRxBytes = peers.reduce(0) { $0 + $1.rxBytes }
        response.totalTxBytes = peers.reduce(0) { $0 + $1.txBytes }
        return response
    }

    public func status(agentVersion: String) async -> Pharos_Node_V1_GetStatusResponse {
        var response = Pharos_Node_V1_GetStatusResponse()
        response.agentVersion = agentVersion
        response.uptimeSeconds = Int64(Date().timeIntervalSince(started))
        response.appliedRevision = max(state.amneziaWGRevision, state.xrayRevision)
        var service = Pharos_Node_V1_ServiceStatus()
        service.protocol = .amneziawg
        service.peerCount = UInt32(state.amneziaWGPeers.count)
        service.newestHandshakeAgeSeconds = -1
        do {
            let plane = try await dataPlane.status()
            service.running = plane.running
            service.listening = plane.listening
            service.detail = plane.detail
            let now = Int64(Date().timeIntervalSince1970)
            let handshakes = plane.peers.map(\.lastHandshakeSeconds).filter { $0 > 0 }
            if let newest = handshakes.max() { service.newestHandshakeAgeSeconds = max(0, now - newest) }
            service.handshakingPeers = UInt32(handshakes.filter { now - $0 < 180 }.count)
        } catch {
            service.detail = "status unavailable: \(error)"
        }
        var xrayService = Pharos_Node_V1_ServiceStatus()
        xrayService.protocol = .xrayReality
        xrayService.peerCount = UInt32(state.xray.clients.count)
        xrayService.newestHandshakeAgeSeconds = -1
        if let xray {
            let (running, detail) = xray.status(port: state.xray.port)
            (xrayService.running, xrayService.listening, xrayService.detail) = (running, running, detail)
        } else {
            xrayService.detail = "XRay/REALITY is not served by this data plane"
        }
        response.services = [service, xrayService]
        var xrayInfo = Pharos_Node_V1_XRayRealityInfo()
        xrayInfo.publicKey = xrayIdentity.publicKey
        response.xray = xrayInfo
        var info = Pharos_Node_V1_AmneziaWGInfo()
        info.publicKey = identity.publicKey
        if dataPlane.speaksObfuscation {
            info.obfuscation = identity.obfuscation.proto
        }
        response.amneziawg = info
        return response
    }

    public func stopXRay() async { await xray?.stop() }

    /// SetNetworkConfig: the old policy's exact teardown, then the new one.
    public func setNetworkConfig(_ config: Pharos_Node_V1_NetworkConfig) throws(Failure) -> Pharos_Node_V1_SetNetworkConfigResponse {
        guard let networkPolicy else {
            throw .unsupportedProtocol("the in-memory benchmark data plane does not apply network policy")
        }
        do {
            try networkPolicy.set(config)
        } catch let error as NetworkPolicyPlan.PlanError {
            throw .invalidConfig(error.description)
        } catch {
            throw .dataPlane("network policy: \(error)")
        }
        var response = Pharos_Node_V1_SetNetworkConfigResponse()
        response.applied = true
        return response
    }

    /// RestartService: stop the daemon and bring it back with the persisted peers.
    public func restart(_ request: Pharos_Node_V1_RestartServiceRequest) async throws(Failure) -> Pharos_Node_V1_RestartServiceResponse {
        try await mutations.withLock { () async throws(Failure) -> Pharos_Node_V1_RestartServiceResponse in try await applyingRestart(request) }
    }

    private func applyingRestart(_ request: Pharos_Node_V1_RestartServiceRequest) async throws(Failure) -> Pharos_Node_V1_RestartServiceResponse {
        guard request.protocol == .amneziawg else { throw .unsupportedProtocol("only AmneziaWG can be restarted on this node") }
        await dataPlane.stop()
        do { try await dataPlane.start(identity: identity, peers: state.amneziaWGPeers) } catch { throw .dataPlane("\(error)") }
        var response = Pharos_Node_V1_RestartServiceResponse()
        response.restarted = true
        return response
    }

    private func validate(_ peers: [Pharos_Node_V1_Peer]) throws(Failure) -> [PeerSpec] {
        var specs: [PeerSpec] = []
        var seen = Set<String>()
        for peer in peers {
            let spec: PeerSpec
            do { spec = try PeerSpec(validating: peer) } catch { throw .invalidConfig(error.description) }
            guard seen.insert(spec.publicKey).inserted else {
                throw .invalidConfig("public key of peer \"\(peer.id)\" appears twice")
            }
            specs.append(spec)
        }
        return specs
    }

    /// A journal entry for single-peer changes, a new snapshot for whole pushes. Memory
    /// follows the data plane even when the disk fails, and the caller hears of it.
    private func persist(_ next: NodeState, as entry: NodeStateJournal.Entry?) throws(Failure) {
        state = next
        do {
            if let entry { try store.append(entry, resulting: &state) } else { try store.saveSnapshot(&state) }
        } catch {
            logger.error("could not persist node state", metadata: ["error": "\(error)"])
            throw .dataPlane("applied to the data plane but not persisted (a restart would lose it): \(error)")
        }
    }
}
