import Foundation
import GRPCCore
import Logging
import PharosProto
import PharosRuntime

/// Brings every node to the revision the store intends for it.
///
/// - After a mutation commits, `push(_:)` sends the affected nodes their full config at the
///   revision read in the same transaction as the content, so content and revision agree.
/// - `sweep()` asks every node for its status, caches its keys, and heals drift: a node behind
///   its intended revision gets a push; a node *ahead* of the store (a restored backup) gets the
///   store's state at a revision above the node's, so the store stays the source of truth.
/// - Pushes to one node are serialized and coalesced; a node that fails backs off (1 s doubling
///   to 60 s) and is marked unreachable after `fleet.unreachable_after_polls` failed polls.
/// - The node fences revisions itself: a lower revision is refused, so a delayed push can never
///   roll a node back past a newer one.
public actor FleetReconciler {
    public enum Outcome: Sendable, Equatable {
        case applied(revision: Int64)
        case upToDate(revision: Int64)
        /// The node already serves a newer revision than this push carried (another pusher won).
        case nodeAhead(applied: Int64)
        case failed(String)
        case backingOff
        case removed
    }

    public struct SweepReport: Sendable {
        public var polled = 0
        public var healed: [String] = []
        public var failed: [String: String] = [:]
    }

    let store: Store
    let pool: NodeClientPool
    let config: CoxConfig
    let logger: Logger
    let metrics: ControllerMetrics?
    let live: LiveHub?
    /// Pushes to one node run one at a time, in arrival order; nodes run in parallel.
    private let nodeLocks = KeyedAsyncLock<String>()
    /// What is known of each node and decides the next call (pure: NodeReconcileState).
    private var nodes: [String: NodeReconcileState] = [:]

    public init(store: Store, pool: NodeClientPool, config: CoxConfig, logger: Logger, metrics: ControllerMetrics? = nil,
                live: LiveHub? = nil) {
        self.store = store
        self.pool = pool
        self.config = config
        self.logger = logger
        self.metrics = metrics
        self.live = live
    }

    var callOptions: CallOptions {
        var options = CallOptions.defaults
        options.timeout = .seconds(config.nodeCallTimeoutSeconds)
        return options
    }

    // MARK: push

    /// Pushes each node's current intended config, concurrently across nodes.
    public func push(_ nodeIDs: Set<String>, ignoringBackoff: Bool = true) async -> [String: Outcome] {
        await withTaskGroup(of: (String, Outcome).self) { group in
            for nodeID in nodeIDs { group.addTask { (nodeID, await self.push(node: nodeID, ignoringBackoff: ignoringBackoff)) } }
            var outcomes: [String: Outcome] = [:]
            for await (nodeID, outcome) in group { outcomes[nodeID] = outcome }
            return outcomes
        }
    }

    public func push(node nodeID: String, ignoringBackoff: Bool = true) async -> Outcome {
        let started = ContinuousClock.now
        let outcome = await pushUnmeasured(node: nodeID, ignoringBackoff: ignoringBackoff)
        metrics?.recordPush(outcome, duration: ContinuousClock.now - started)
        return outcome
    }

    private func pushUnmeasured(node nodeID: String, ignoringBackoff: Bool) async -> Outcome {
        if !ignoringBackoff, nodes[nodeID, default: .init()].blocksAutomaticPush(now: .now) { return .backingOff }
        return await nodeLocks.withLock(nodeID) { await pushLocked(node: nodeID) }
    }

    private func pushLocked(node nodeID: String) async -> Outcome {
        let config = self.config
        let plan: (NodeConfigPlan, String)?
        do {
            plan = try await store.read { tx -> (NodeConfigPlan, String)? in
                guard let node = try? tx.node(nodeID) else { return nil }
                return (try NodeConfigPlan.build(node: node, peers: try tx.peers(node: node.id), config: config,
                                                 cascade: try tx.cascade(for: node.id)), node.controlAddr)
            }
        } catch {
            return .failed("cannot read the node's config from the store: \(error)")
        }
        guard let (configPlan, address) = plan else {
            nodes[nodeID] = nil
            await pool.drop(nodeID)
            return .removed
        }
        if case .upToDate(let revision) = nodes[nodeID, default: .init()].pushDecision(intended: configPlan.revision) {
            return .upToDate(revision: revision)
        }
        do {
            let client = try await pool.client(for: nodeID, address: address)
            var reloaded = false
            for request in configPlan.requests {
                do {
                    let response = try await client.pushConfig(request, options: callOptions)
                    reloaded = reloaded || response.reloaded
                } catch let error as RPCError where error.code == .failedPrecondition {
                    let status = try await client.getStatus(Pharos_Node_V1_GetStatusRequest(), options: callOptions)
                    nodes[nodeID, default: .init()].nodeAhead(applied: status.appliedRevision)
                    try await store.write { tx in try tx.recordApplied(node: nodeID, revision: status.appliedRevision) }
                    return .nodeAhead(applied: status.appliedRevision)
                }
            }
            do {
                try await applyCascade(configPlan, node: nodeID, client: client)
            } catch {
                // The node already reports this revision for its peers, so a sweep would find it
                // in step: move the intended revision on, and the next sweep pushes it all again.
                try await store.write { tx in try tx.bumpRevision(node: nodeID) }
                throw error
            }
            nodes[nodeID, default: .init()].applied(configPlan.revision)
            try await store.write { tx in try tx.recordApplied(node: nodeID, revision: configPlan.revision) }
            logger.debug("pushed", metadata: ["node": "\(nodeID)", "revision": "\(configPlan.revision)", "reloaded": "\(reloaded)"])
            return reloaded ? .applied(revision: configPlan.revision) : .upToDate(revision: configPlan.revision)
        } catch {
            let reason = Self.describe(error)
            await noteFailure(nodeID, reason)
            logger.warning("push failed", metadata: ["node": "\(nodeID)", "error": "\(reason)"])
            return .failed(reason)
        }
    }

    // MARK: status and sweep

    /// GetStatus: caches the node's keys and applied revision in the store.
    @discardableResult
    public func refreshStatus(node nodeID: String) async throws -> Pharos_Node_V1_GetStatusResponse {
        let node = try await store.read { tx in try tx.node(nodeID) }
        do {
            let client = try await pool.client(for: node.id, address: node.controlAddr)
            let status = try await client.getStatus(Pharos_Node_V1_GetStatusRequest(), options: callOptions)
            let obfuscation = try status.amneziawg.obfuscation.jsonString()
            // A hop whose key or obfuscation set changed (a reinstalled node): the hops next to
            // it on a path dial it or admit it with the old ones until they are pushed again.
            let rekeyed = node.wgPublicKey?.isEmpty == false
                && (node.wgPublicKey != status.amneziawg.publicKey || (node.wgObfuscation ?? "") != obfuscation)
            let (healed, partners) = try await store.write { tx -> (AlertRecord?, Set<String>) in
                try tx.recordStatus(node: node.id, agentVersion: status.agentVersion, wgPublicKey: status.amneziawg.publicKey,
                                    wgObfuscation: obfuscation, xrayPublicKey: status.xray.publicKey,
                                    appliedRevision: status.appliedRevision)
                let partners = rekeyed ? try tx.pathPartners(of: [node.id]) : []
                for partner in partners { try tx.bumpRevision(node: partner) }
                return (try tx.resolveAlert(dedupKey: Self.healthAlertKey(node.id)), partners)
            }
            if !partners.isEmpty {
                logger.notice("a hop's key changed: its path partners will be pushed",
                              metadata: ["node": "\(node.id)", "partners": "\(partners.sorted().joined(separator: ","))"])
            }
            if node.status != .active, node.status != .stopped {
                live?.publish(.nodeStatus(nodeID: node.id, name: node.name, status: .active, at: StoreClock.now()))
            }
            if let healed { live?.publish(.alert(healed)) }
            if nodes[node.id, default: .init()].statusSeen(applied: status.appliedRevision) { await configureNetwork(node, client: client) }
            return status
        } catch {
            await noteFailure(node.id, Self.describe(error))
            throw error
        }
    }

    /// SetNetworkConfig once per node per controller run (and again after the node is
    /// re-enrolled, or when its transit routes change): forwarding, masquerade and isolation
    /// from the node's row, and the transit routes of the devices it sends into inner links.
    /// The node persists it and re-applies it at its own restarts, so one push is enough; a
    /// refusal (no egress interface, say) is logged and not retried every sweep.
    private func configureNetwork(_ node: NodeRecord, client: NodeClientPool.Client) async {
        guard let request = try? await store.read({ tx in
            NodeConfigPlan.network(node: node, cascade: try tx.cascade(for: node.id))
        }) else { return }
        do { try await sendNetwork(request, node: node.id, client: client) } catch {
            logger.warning("network policy not applied", metadata: ["node": "\(node.id)", "error": "\(Self.describe(error))"])
        }
    }

    private func sendNetwork(_ request: Pharos_Node_V1_SetNetworkConfigRequest, node nodeID: String,
                             client: NodeClientPool.Client) async throws {
        _ = try await client.setNetworkConfig(request, options: callOptions)
        nodes[nodeID, default: .init()].sentNetwork = request.config
        logger.info("network policy applied", metadata: ["node": "\(nodeID)", "forwarding": "\(request.config.forwarding)",
                                                        "masquerade": "\(request.config.masquerade)",
                                                        "transits": "\(request.config.transits.count)"])
    }

    /// After a push: the inner links this node starts (fenced by the node per link, at the
    /// node's revision), the retired ones removed, and the network policy when it differs
    /// from what this reconciler last sent (the node skips a policy equal to its own).
    private func applyCascade(_ plan: NodeConfigPlan, node nodeID: String, client: NodeClientPool.Client) async throws {
        for link in plan.innerLinks {
            _ = try await client.configureInnerLink(link, options: callOptions)
        }
        for interface in plan.retiredLinks {
            var request = Pharos_Node_V1_RemoveInnerLinkRequest()
            request.interface = interface
            _ = try await client.removeInnerLink(request, options: callOptions)
            try await store.write { tx in try tx.forgetRetiredLink(entry: nodeID, interface: interface) }
        }
        // Transit routes changed (or a CLI's reconciler, which has sent nothing yet, pushes a
        // node that has some): the policy goes with the push, and its failure fails the push.
        // A node with no transits, now or last sent, gets its policy from the status path as before.
        let sent = nodes[nodeID, default: .init()].sentNetwork
        let transits = !plan.network.config.transits.isEmpty || sent?.transits.isEmpty == false || !plan.innerLinks.isEmpty
        if transits, sent != plan.network.config {
            try await sendNetwork(plan.network, node: nodeID, client: client)
        }
    }

    /// Forwarding, masquerade or isolation of a node changed: send SetNetworkConfig again now.
    public func networkPolicyChanged(_ nodeID: String) async {
        nodes[nodeID, default: .init()].networkPolicyChanged()
        _ = try? await refreshStatus(node: nodeID)
    }

    /// One pass over the fleet; at most `concurrency` nodes are talked to at once.
    public func sweep(concurrency: Int = 64) async -> SweepReport {
        let started = ContinuousClock.now
        let report = await sweepUnmeasured(concurrency: concurrency)
        metrics?.recordSweep(duration: ContinuousClock.now - started, polled: report.polled, healed: report.healed.count,
                             failed: report.failed.count)
        return report
    }

    private func sweepUnmeasured(concurrency: Int) async -> SweepReport {
        let nodes: [NodeRecord]
        do { nodes = try await store.read { tx in try tx.nodes() } } catch {
            logger.error("sweep cannot read nodes", metadata: ["error": "\(error)"])
            return SweepReport()
        }
        return await withTaskGroup(of: (String, String?, Bool).self) { group in
            var report = SweepReport()
            var next = 0
            func collect(_ result: (String, String?, Bool)) {
                report.polled += 1
                if let failure = result.1 { report.failed[result.0] = failure }
                if result.2 { report.healed.append(result.0) }
            }
            while next < nodes.count || !group.isEmpty {
                while next < nodes.count, next - report.polled < concurrency {
                    let node = nodes[next]
                    next += 1
                    group.addTask { await self.heal(node) }
                }
                if let result = await group.next() { collect(result) }
            }
            return report
        }
    }

    /// (node, failure, healed)
    private func heal(_ node: NodeRecord) async -> (String, String?, Bool) {
        switch nodes[node.id, default: .init()].sweepDecision(stopped: node.status == .stopped, now: .now) {
        case .skipStopped: return (node.id, nil, false)
        case .backingOff(let failures): return (node.id, "backing off after \(failures) failures", false)
        case .poll: break
        }
        let status: Pharos_Node_V1_GetStatusResponse
        do { status = try await refreshStatus(node: node.id) } catch {
            return (node.id, Self.describe(error), false)
        }
        switch NodeReconcileState.healAction(reported: status.appliedRevision, intended: node.configRevision) {
        case .inSync: return (node.id, nil, false)
        case .push: break
        case .raiseStoreThenPush(let applied):
            do {
                try await store.write { tx in try tx.raiseRevision(node: node.id, above: applied) }
            } catch { return (node.id, "\(error)", false) }
        }
        nodes[node.id, default: .init()].forgetApplied()
        switch await push(node: node.id) {
        case .applied, .upToDate: return (node.id, nil, true)
        case .nodeAhead: return (node.id, nil, false)
        case .failed(let reason): return (node.id, reason, false)
        case .backingOff, .removed: return (node.id, nil, false)
        }
    }

    /// One round of `cox serve`'s periodic sweep; logs only what it changed or could not reach.
    public func sweepAndLog() async {
        let report = await sweep()
        if !report.healed.isEmpty || !report.failed.isEmpty {
            logger.info("sweep", metadata: ["nodes": "\(report.polled)", "healed": "\(report.healed.count)",
                                            "failed": "\(report.failed.count)"])
        }
    }

    private func noteFailure(_ nodeID: String, _ reason: String) async {
        let limit = config.unreachableAfterPolls
        let backoff = nodes[nodeID, default: .init()].failed(now: .now, unreachableAfter: limit)
        let key = Self.healthAlertKey(nodeID)
        let detail = FleetService.detail(["status": "unreachable", "error": String(reason.prefix(300))])
        // fleet_health: a node that stopped answering opens one alert (refreshed while it
        // lasts); its next good GetStatus resolves it.
        let outcome = try? await store.write { tx -> (NodeStatus?, String, AlertRecord?) in
            let status = try tx.recordMissedPoll(node: nodeID, error: reason, limit: limit)
            let name = (try? tx.node(nodeID).name) ?? nodeID
            guard status == .unreachable else { return (status, name, nil) }
            let (alert, isNew) = try tx.raiseAlert(kind: "fleet_health", severity: .warning, dedupKey: key, nodeID: nodeID, detail: detail)
            return (status, name, isNew ? alert : nil)
        }
        guard let (status, name, alert) = outcome else { return }
        if status == .unreachable, backoff.becameUnreachable {
            logger.warning("node unreachable", metadata: ["node": "\(nodeID)", "error": "\(reason)"])
            live?.publish(.nodeStatus(nodeID: nodeID, name: name, status: .unreachable, at: StoreClock.now()))
        }
        if let alert { live?.publish(.alert(alert)) }
    }

    static func healthAlertKey(_ nodeID: String) -> String { "fleet_health:\(nodeID)" }

    /// An operator's explicit push (`cox nodes push`, `POST /api/nodes/{id}/push`): back-off
    /// cleared, GetStatus first (so new keys are known), then the full config.
    public func explicitPush(node nodeID: String) async -> Outcome {
        nodes[nodeID]?.failures = 0
        nodes[nodeID]?.retryAt = nil
        do { try await refreshStatus(node: nodeID) } catch { return .failed(Self.describe(error)) }
        nodes[nodeID, default: .init()].forgetApplied()
        return await push(node: nodeID)
    }

    static func describe(_ error: any Error) -> String {
        if let rpc = error as? RPCError { return "\(rpc.code): \(rpc.message)" }
        return "\(error)"
    }
}
