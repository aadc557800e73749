import Foundation
import GRPCCore
import Logging
import PharosProto
import PharosSpec
import PharosTLS
import X509

/// Keeps every node's leaf in date with no operator action (issue #20). Each pass:
///
/// - refreshes the revoked node serials the pool refuses (`revoked_certs`);
/// - for each node whose leaf reached two thirds of its life: `BeginRenewal` (the node makes
///   a fresh key and answers a CSR), the controller signs the CSR's key into a leaf whose
///   subject and SANs it assigns itself (the node's ID and the address it dials, never the
///   CSR's), `InstallCertificate`, and only then the store records the new leaf, so a lost
///   answer leaves the old leaf current and the next pass tries again;
/// - sends each node the revoked controller serials it must refuse, when they changed.
///
/// An upstream agent answers UNIMPLEMENTED: it is marked `unsupported` (shown by `cox nodes
/// list`) and keeps its enrolled leaf; it is asked again a day later (it may have been upgraded).
public actor NodeCertificateRenewer {
    public enum Outcome: Sendable, Equatable {
        case notDue(renewAt: Date)
        case renewed(serial: String, notAfter: Date)
        case unsupported
        case failed(String)
    }

    let store: Store
    let pool: NodeClientPool
    let authority: CertificateAuthority
    let logger: Logger
    let callTimeout: Duration
    /// Nodes that answered UNIMPLEMENTED, and when to ask them again.
    private var unsupportedUntil: [String: Date] = [:]
    /// The controller deny list each node acknowledged in this run.
    private var deniedSent: [String: Set<String>] = [:]

    public init(store: Store, pool: NodeClientPool, authority: CertificateAuthority, logger: Logger, callTimeout: Duration = .seconds(10)) {
        self.store = store
        self.pool = pool
        self.authority = authority
        self.logger = logger
        self.callTimeout = callTimeout
    }

    var options: CallOptions {
        var options = CallOptions.defaults
        options.timeout = callTimeout
        return options
    }

    /// One pass over the fleet (nodes one after another: renewals are rare and small).
    @discardableResult
    public func pass(now: Date = Date()) async -> [String: Outcome] {
        let snapshot: (nodes: [NodeRecord], certificates: [String: NodeCertificateState], deniedNodes: Set<String>, deniedControllers: Set<String>)
        do {
            snapshot = try await store.read { tx in
                (try tx.nodes(), Dictionary(try tx.nodeCertificates().map { ($0.nodeID, $0) }, uniquingKeysWith: { a, _ in a }),
                 Set(try tx.revokedCertificates(kind: .node).map(\.serial)), Set(try tx.revokedCertificates(kind: .controller).map(\.serial)))
            }
        } catch {
            logger.error("certificate renewal cannot read the store", metadata: ["error": "\(error)"])
            return [:]
        }
        pool.denied.replace(with: snapshot.deniedNodes)
        // A node closes every connection of a leaf the list names: one that names the leaf the
        // pool still dials with (revoked after this pass picked it up) waits for the next pass,
        // which dials with the replacement first.
        let ownLeafDenied = snapshot.deniedControllers.contains(await pool.identitySerial)
        if ownLeafDenied {
            logger.warning("the controller's own leaf is revoked; the deny list goes to the nodes once its replacement is picked up")
        }
        var outcomes: [String: Outcome] = [:]
        for node in snapshot.nodes where node.status != .stopped && node.status != .pending {
            guard let certificate = snapshot.certificates[node.id] else { continue }
            outcomes[node.id] = await renew(node, certificate: certificate, now: now)
            if !ownLeafDenied { await sendDenied(snapshot.deniedControllers, to: node) }
        }
        return outcomes
    }

    /// Renews `node`'s leaf when it is due (or at once with `force`, `cox nodes renew`).
    public func renew(_ node: NodeRecord, certificate: NodeCertificateState, now: Date = Date(), force: Bool = false) async -> Outcome {
        if !force {
            guard now >= certificate.renewAt else { return .notDue(renewAt: certificate.renewAt) }
            if let until = unsupportedUntil[node.id], now < until { return .unsupported }
        }
        let outcome: Outcome
        do {
            outcome = try await renewNow(node, days: certificate.days, previous: certificate.serial, now: now)
        } catch let error as RPCError where error.code == .unimplemented {
            unsupportedUntil[node.id] = now + 86400
            outcome = .unsupported
            logger.warning("node cannot renew its certificate (an upstream agent?): it keeps its enrolled leaf",
                           metadata: ["node": "\(node.name)", "expires": "\(certificate.notAfter)"])
        } catch {
            outcome = .failed(FleetReconciler.describe(error))
            logger.warning("node certificate renewal failed", metadata: ["node": "\(node.name)", "error": "\(FleetReconciler.describe(error))"])
        }
        let recorded: String? = switch outcome {
        case .unsupported: "unsupported"
        case .failed(let reason): "failed: " + String(reason.prefix(300))
        case .renewed, .notDue: nil
        }
        if let recorded { _ = try? await store.write { tx in try tx.recordNodeRenewal(node: node.id, outcome: recorded) } }
        return outcome
    }

    private func renewNow(_ node: NodeRecord, days: Int, previous: String, now: Date) async throws -> Outcome {
        let lifecycle = try await pool.lifecycle(for: node.id, address: node.controlAddr)
        let begun = try await lifecycle.beginRenewal(.init(), options: options)
        let host = try HostPort.parse(node.controlAddr).host
        let leaf = try authority.issue(csrPEM: begun.csrPem, profile: .node(id: node.id, addresses: [host]),
                                       validity: TimeInterval(days) * 86400, now: now)
        let chain = try leaf.pemString() + authority.fleet.certificate.pemString()
        let installed = try await lifecycle.installCertificate(.with { $0.certificateChainPem = chain }, options: options)
        guard installed.serial == leaf.serialHex else {
            return .failed("the node reports serial \(installed.serial) installed, not \(leaf.serialHex)")
        }
        try await store.write { tx in
            try tx.recordRenewedNodeCertificate(node: node.id, leaf: leaf, chainPEM: chain)
            try tx.appendAudit(AuditEntry(action: "node.cert.renew", targetType: "node", targetID: node.id,
                                          detail: FleetService.detail(["serial": leaf.serialHex, "previous": previous,
                                                                       "not_after": "\(leaf.notValidAfter)"])), by: .controller)
        }
        unsupportedUntil[node.id] = nil
        logger.info("node certificate renewed", metadata: ["node": "\(node.name)", "serial": "\(leaf.serialHex)",
                                                           "not_after": "\(leaf.notValidAfter)"])
        return .renewed(serial: leaf.serialHex, notAfter: leaf.notValidAfter)
    }

    /// SetDeniedCertificates when the node has not acknowledged this list in this run.
    private func sendDenied(_ serials: Set<String>, to node: NodeRecord) async {
        guard deniedSent[node.id] != serials, unsupportedUntil[node.id] == nil else { return }
        do {
            let lifecycle = try await pool.lifecycle(for: node.id, address: node.controlAddr)
            _ = try await lifecycle.setDeniedCertificates(.with { $0.serials = serials.sorted() }, options: options)
            deniedSent[node.id] = serials
        } catch {
            logger.warning("controller deny list not delivered", metadata: ["node": "\(node.name)", "error": "\(FleetReconciler.describe(error))"])
        }
    }
}
