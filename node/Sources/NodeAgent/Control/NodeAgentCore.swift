import Foundation
import Logging
import PharosRuntime
import PharosWireGuard

/// The node's state machine: what the controller pushed, applied to the data plane and
/// persisted before the answer goes back. Every mutation is serialized here. It speaks domain
/// values only; `NodeControlService` translates the wire to them.
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

    /// What a push did: `reloaded` is false when its revision was already applied.
    public struct PushOutcome: Sendable, Equatable {
        public var appliedRevision: Int64
        public var reloaded: Bool

        public init(appliedRevision: Int64, reloaded: Bool) {
            self.appliedRevision = appliedRevision
            self.reloaded = reloaded
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

    /// Makes the interface of a cascade hop; nil where inner links are not served (the
    /// in-memory benchmark plane).
    public typealias InnerLinkPlanes = @Sendable (InnerLink) -> any DataPlane
    private let makeInnerPlane: InnerLinkPlanes?
    /// The node's own tunnel, which an inner link may not take over.
    private let mainInterface: (name: String, port: Int)
    private var innerPlanes: [String: any DataPlane] = [:]

    public init(dataPlane: any DataPlane, identity: AmneziaWGIdentity, statePath: String, logger: Logger,
                networkPolicy: NetworkPolicyApplier? = nil, xray: XRayService? = nil,
                xrayIdentity: XRayIdentity = .generate(), innerLinks: InnerLinkPlanes? = nil,
                mainInterface: (name: String, port: Int) = ("awg0", 443)) throws {
        self.dataPlane = dataPlane
        self.makeInnerPlane = innerLinks
        self.mainInterface = mainInterface
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
        // Before the policy: its transit routes name these interfaces. A link that fails to
        // come back is logged and left to the controller's next push; the node still serves.
        var down = Set<String>()
        for link in state.innerLinks {
            do { try await startInnerPlane(link) } catch {
                down.insert(link.interface)
                logger.error("inner link not restored", metadata: ["interface": "\(link.interface)", "error": "\(error)"])
            }
        }
        try networkPolicy?.reapply(unavailable: down)
        if state.xrayRevision > 0 { try await xray?.apply(state.xray, identity: xrayIdentity) }
        logger.info("restored from disk", metadata: ["revision": "\(state.amneziaWGRevision)", "peers": "\(state.amneziaWGPeers.count)"])
    }

    // MARK: Pushes: a lower revision is refused, an equal one is a no-op, a higher one is
    // validated completely, then applied atomically and persisted.

    public func pushAmneziaWG(revision: Int64, peers: [PeerSpec]) async throws(Failure) -> PushOutcome {
        try await mutations.withLock { () async throws(Failure) -> PushOutcome in try await applyingAmneziaWG(revision: revision, peers: peers) }
    }

    private func applyingAmneziaWG(revision: Int64, peers: [PeerSpec]) async throws(Failure) -> PushOutcome {
        if revision < state.amneziaWGRevision {
            throw .staleRevision(pushed: revision, applied: state.amneziaWGRevision)
        }
        if revision == state.amneziaWGRevision { return PushOutcome(appliedRevision: revision, reloaded: false) }
        try validate(peers)
        var next = state
        next.amneziaWGRevision = revision
        next.amneziaWGPeers = peers
        do {
            try await dataPlane.replacePeers(peers, previous: state.amneziaWGPeers)
        } catch {
            throw .dataPlane("\(error)")
        }
        try persist(next, as: nil)
        logger.info("applied config", metadata: ["revision": "\(revision)", "peers": "\(peers.count)"])
        return PushOutcome(appliedRevision: revision, reloaded: true)
    }

    public func pushXRay(revision: Int64, config: XRayServerConfig) async throws(Failure) -> PushOutcome {
        try await mutations.withLock { () async throws(Failure) -> PushOutcome in try await applyingXRay(revision: revision, config: config) }
    }

    private func applyingXRay(revision: Int64, config: XRayServerConfig) async throws(Failure) -> PushOutcome {
        if revision < state.xrayRevision { throw .staleRevision(pushed: revision, applied: state.xrayRevision) }
        guard revision > state.xrayRevision else { return PushOutcome(appliedRevision: revision, reloaded: false) }
        var next = state
        do { next.xray = try config.validated() } catch { throw .invalidConfig(error.description) }
        next.xrayRevision = revision
        try await applyXRay(next)
        return PushOutcome(appliedRevision: revision, reloaded: true)
    }

    private func applyXRay(_ next: NodeState) async throws(Failure) {
        do { try await xray?.apply(next.xray, identity: xrayIdentity) } catch { throw .dataPlane("xray: \(error)") }
        try persist(next, as: nil)
    }

    // MARK: Single peers: AddPeer is an upsert by public key (or VLESS UUID); RemovePeer
    // succeeds whether or not the peer existed and answers the id of the one it removed.

    public func addPeer(_ peer: PeerSpec) async throws(Failure) {
        try await mutations.withLock { () async throws(Failure) in try await applyingAddPeer(peer) }
    }

    private func applyingAddPeer(_ peer: PeerSpec) async throws(Failure) {
        try validate([peer])
        var next = state
        let previous = next.amneziaWGPeers.first { $0.publicKey == peer.publicKey }
        next.amneziaWGPeers.removeAll { $0.publicKey == peer.publicKey }
        next.amneziaWGPeers.append(peer)
        do { try await dataPlane.upsertPeer(peer, previous: previous) } catch { throw .dataPlane("\(error)") }
        try persist(next, as: .upsert(peer, generation: state.generation))
    }

    public func addXRayClient(_ client: XRayServerConfig.Client) async throws(Failure) {
        try await mutations.withLock { () async throws(Failure) in try await applyingAddXRayClient(client) }
    }

    private func applyingAddXRayClient(_ client: XRayServerConfig.Client) async throws(Failure) {
        let valid: XRayServerConfig.Client
        do { valid = try client.validated() } catch { throw .invalidConfig(error.description) }
        var next = state
        next.xray.clients.removeAll { $0.id == valid.id }
        next.xray.clients.append(valid)
        try await applyXRay(next)
    }

    public func removePeer(publicKey: String) async throws(Failure) -> String? {
        try await mutations.withLock { () async throws(Failure) -> String? in try await applyingRemovePeer(publicKey: publicKey) }
    }

    private func applyingRemovePeer(publicKey: String) async throws(Failure) -> String? {
        guard let existing = state.amneziaWGPeers.first(where: { $0.publicKey == publicKey }) else { return nil }
        var next = state
        next.amneziaWGPeers.removeAll { $0.publicKey == publicKey }
        do { try await dataPlane.removePeer(existing) } catch { throw .dataPlane("\(error)") }
        try persist(next, as: .remove(publicKey: existing.publicKey, generation: state.generation))
        return existing.id
    }

    public func removeXRayClient(id: String) async throws(Failure) -> String? {
        try await mutations.withLock { () async throws(Failure) -> String? in try await applyingRemoveXRayClient(id: id) }
    }

    private func applyingRemoveXRayClient(id: String) async throws(Failure) -> String? {
        guard let existing = state.xray.clients.first(where: { $0.id == id.lowercased() }) else { return nil }
        var next = state
        next.xray.clients.removeAll { $0.id == existing.id }
        try await applyXRay(next)
        return existing.peerID
    }

    // MARK: Reads

    /// XRay clients first, then AmneziaWG peers with what the data plane knows of each.
    public func listPeers(amneziaWG: Bool = true, xrayReality: Bool = true) async -> [PeerReport] {
        var reports = xrayReality ? state.xray.clients.map(PeerReport.xrayReality) : []
        guard amneziaWG else { return reports }
        let runtime = (try? await dataPlane.status())?.peers ?? []
        let byKey = Dictionary(runtime.map { ($0.publicKeyHex, $0) }, uniquingKeysWith: { a, _ in a })
        reports += state.amneziaWGPeers.map { spec in
            .amneziaWG(spec, live: WireGuardKey.hex(fromBase64: spec.publicKey).flatMap { byKey[$0] })
        }
        return reports
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

    public func status() async -> NodeStatus {
        let uptime = Int64(Date().timeIntervalSince(started))
        let appliedRevision = max(state.amneziaWGRevision, state.xrayRevision)
        var amneziaWG = NodeStatus.ServiceStatus(peerCount: state.amneziaWGPeers.count)
        do {
            let plane = try await dataPlane.status()
            (amneziaWG.running, amneziaWG.listening, amneziaWG.detail) = (plane.running, plane.listening, plane.detail)
            let now = Int64(Date().timeIntervalSince1970)
            let handshakes = plane.peers.map(\.lastHandshakeSeconds).filter { $0 > 0 }
            if let newest = handshakes.max() { amneziaWG.newestHandshakeAge = max(0, now - newest) }
            amneziaWG.handshakingPeers = handshakes.filter { now - $0 < HandshakeTracker.staleAfter }.count
        } catch {
            amneziaWG.detail = "status unavailable: \(error)"
        }
        var xrayReality = NodeStatus.ServiceStatus(peerCount: state.xray.clients.count)
        if let xray {
            let (running, detail) = xray.status(port: state.xray.port)
            (xrayReality.running, xrayReality.listening, xrayReality.detail) = (running, running, detail)
        } else {
            xrayReality.detail = "XRay/REALITY is not served by this data plane"
        }
        return NodeStatus(uptimeSeconds: uptime, appliedRevision: appliedRevision, amneziaWG: amneziaWG, xrayReality: xrayReality,
                          amneziaWGPublicKey: identity.publicKey,
                          obfuscation: dataPlane.speaksObfuscation ? identity.obfuscation : nil,
                          xrayPublicKey: xrayIdentity.publicKey)
    }

    // MARK: Inner links (cascade hops): per-link revision fence, validated, applied, persisted.

    public func configureInnerLink(_ link: InnerLink) async throws(Failure) -> PushOutcome {
        try await mutations.withLock { () async throws(Failure) -> PushOutcome in try await applyingInnerLink(link) }
    }

    private func applyingInnerLink(_ link: InnerLink) async throws(Failure) -> PushOutcome {
        guard makeInnerPlane != nil else {
            throw .unsupportedProtocol("the in-memory benchmark data plane does not serve inner links")
        }
        let current = state.innerLinks.first { $0.interface == link.interface }
        if let current {
            if link.revision < current.revision { throw .staleRevision(pushed: link.revision, applied: current.revision) }
            if link.revision == current.revision { return PushOutcome(appliedRevision: link.revision, reloaded: false) }
        }
        do {
            try link.validate(mainInterface: mainInterface.name, mainPort: mainInterface.port,
                              others: state.innerLinks.filter { $0.interface != link.interface },
                              obfuscationRequired: dataPlane.speaksObfuscation)
        } catch { throw .invalidConfig(error.description) }
        // A new link never takes over an interface the host already has (an operator's own
        // awg-quick tunnel, say): only links this node made are adopted, at its own restart.
        if current == nil, FileManager.default.fileExists(atPath: "/sys/class/net/\(link.interface)") {
            throw .invalidConfig("inner link: interface \(link.interface) already exists on this host and is not one of this node's links")
        }
        var next = state
        next.innerLinks.removeAll { $0.interface == link.interface }
        next.innerLinks.append(link)
        do {
            if let current, let plane = innerPlanes[link.interface], current.listenPort == link.listenPort,
               current.mtu == link.mtu, current.peerObfuscation == link.peerObfuscation {
                // Only the next hop changed: swap the peer in place, the interface stays up.
                try await plane.replacePeers([link.exit], previous: [current.exit])
            } else {
                try await startInnerPlane(link)
                // The interface is new: the kernel holds no route into it yet.
                networkPolicy?.routeTransits(through: link.interface)
            }
        } catch {
            throw .dataPlane("inner link \(link.interface): \(error)")
        }
        try persist(next, as: nil)
        logger.info("inner link applied", metadata: ["interface": "\(link.interface)", "revision": "\(link.revision)",
                                                     "exit": "\(link.exit.endpoint ?? "")"])
        return PushOutcome(appliedRevision: link.revision, reloaded: true)
    }

    /// Stops the link's daemon (its interface goes with it). False when there was none.
    public func removeInnerLink(interface: String) async throws(Failure) -> Bool {
        try await mutations.withLock { () async throws(Failure) -> Bool in try await applyingRemoveInnerLink(interface: interface) }
    }

    private func applyingRemoveInnerLink(interface: String) async throws(Failure) -> Bool {
        guard state.innerLinks.contains(where: { $0.interface == interface }) else { return false }
        var next = state
        next.innerLinks.removeAll { $0.interface == interface }
        await innerPlanes.removeValue(forKey: interface)?.destroy()
        try persist(next, as: nil)
        logger.info("inner link removed", metadata: ["interface": "\(interface)"])
        return true
    }

    /// At shutdown: every inner link's daemon.
    public func stopInnerLinks() async {
        for plane in innerPlanes.values { await plane.stop() }
        innerPlanes.removeAll()
    }

    /// (Re)starts the link's interface with this node's key and the next hop's obfuscation.
    private func startInnerPlane(_ link: InnerLink) async throws {
        guard let makeInnerPlane else { return }
        await innerPlanes.removeValue(forKey: link.interface)?.stop()
        let plane = makeInnerPlane(link)
        let linkIdentity = AmneziaWGIdentity(privateKey: identity.privateKey, obfuscation: link.peerObfuscation ?? identity.obfuscation)
        do {
            try await plane.start(identity: linkIdentity, peers: [link.exit])
        } catch {
            await plane.stop()
            throw error
        }
        innerPlanes[link.interface] = plane
    }

    // MARK: Host and daemons

    public func stopXRay() async { await xray?.stop() }

    /// SetNetworkConfig: the old policy's exact teardown, then the new one.
    public func setNetworkPolicy(_ policy: NetworkPolicy) throws(Failure) {
        guard let networkPolicy else {
            throw .unsupportedProtocol("the in-memory benchmark data plane does not apply network policy")
        }
        do {
            try networkPolicy.set(policy)
        } catch let error as NetworkPolicyPlan.PlanError {
            throw .invalidConfig(error.description)
        } catch {
            throw .dataPlane("network policy: \(error)")
        }
    }

    /// RestartService: stop the daemon and bring it back with the persisted peers.
    public func restartAmneziaWG() async throws(Failure) {
        try await mutations.withLock { () async throws(Failure) in try await applyingRestart() }
    }

    private func applyingRestart() async throws(Failure) {
        await dataPlane.stop()
        do { try await dataPlane.start(identity: identity, peers: state.amneziaWGPeers) } catch { throw .dataPlane("\(error)") }
    }

    /// Every peer valid and no public key twice; nothing is applied otherwise.
    private func validate(_ peers: [PeerSpec]) throws(Failure) {
        var seen = Set<String>()
        for peer in peers {
            do { try peer.validate() } catch { throw .invalidConfig(error.description) }
            guard seen.insert(peer.publicKey).inserted else {
                throw .invalidConfig("public key of peer \"\(peer.id)\" appears twice")
            }
        }
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
