import Foundation
import Logging
import PharosSpec
import PharosRuntime
import Relay

/// What every `cox` command opens: the config, the store beside it, the key material and
/// the service layer. `cox serve` adds the reconcile loop on top.
public struct Controller: Sendable {
    public let config: CoxConfig
    public let store: Store
    public let pki: FleetPKI
    public let service: FleetService

    public init(config: CoxConfig, store: Store, pki: FleetPKI, service: FleetService) {
        self.config = config
        self.store = store
        self.pki = pki
        self.service = service
    }

    /// `configPath`'s directory anchors a relative `state_dir`.
    public static func open(configPath: String) throws -> Controller {
        let config = try CoxConfig.load(path: configPath)
        let store = try Store.open(path: config.databasePath(relativeTo: base(of: configPath)))
        let pki = try FleetPKI.loadOrCreate(in: store)
        return Controller(config: config, store: store, pki: pki, service: FleetService(store: store, pki: pki, config: config))
    }

    /// Root running `cox` against a state directory owned by another user (the packaged
    /// daemon's `pharos-coxswain`) becomes that user, so no file in it ends up root's.
    public static func adoptStateOwner(configPath: String) throws {
        let config = try CoxConfig.load(path: configPath)
        let database = config.databasePath(relativeTo: base(of: configPath))
        try Privileges.adoptOwner(of: URL(fileURLWithPath: database).deletingLastPathComponent().path)
    }

    static func base(of configPath: String) -> String {
        URL(fileURLWithPath: configPath).deletingLastPathComponent().path
    }

    /// Runs a reconciler for one short job (a CLI command's push) and shuts its connections.
    public func withReconciler<T: Sendable>(logger: Logger, _ body: (FleetReconciler) async throws -> T) async throws -> T {
        let pool = try NodeClientPool(pki: pki)
        let reconciler = FleetReconciler(store: store, pool: pool, config: config, logger: logger)
        do {
            let value = try await body(reconciler)
            await pool.shutdown()
            return value
        } catch {
            await pool.shutdown()
            throw error
        }
    }

    /// What `cox serve` listens on once it is ready.
    public struct Served: Sendable {
        /// The relay tier's endpoints; nil when accounts are off.
        public var relay: RelayTier.Endpoints?
        /// The admin API and UI's port; nil when `ui.listen` is empty.
        public var adminPort: Int?
    }

    /// `cox serve`: re-reconciles the whole fleet at once, then sweeps every
    /// `fleet.reconcile_interval` seconds until cancelled; keeps one WatchEvents stream per
    /// node feeding `connection_events` and the live plane; runs the account service behind
    /// the relay tier (`accounts.sync`) and the admin API and UI (`ui.listen`); purges audit
    /// rows past `retention.audit_days` daily. `ready` is called once everything listens.
    public func serve(logger: Logger, ready: @escaping @Sendable (Served) -> Void = { _ in }) async throws {
        let pool = try NodeClientPool(pki: pki)
        let live = LiveHub()
        let metrics = ControllerMetrics()
        let reconciler = FleetReconciler(store: store, pool: pool, config: config, logger: logger, metrics: metrics, live: live)
        let watchers = EventWatchers(store: store, pool: pool, logger: logger, live: live)
        let (store, config) = (self.store, self.config)
        let nodes = try await store.read { tx in try tx.nodes() }
        logger.info("serving", metadata: ["state": "\(store.path)", "nodes": "\(nodes.count)",
                                          "sweep_seconds": "\(config.reconcileInterval)"])
        await watchers.sync(with: nodes)
        let accounts = AccountService(fleet: service) { affected in _ = await reconciler.push(affected) }
        let tier = config.accountsSync ? RelayTier(controller: self, accounts: accounts, logger: logger) : nil
        let adminAddress = config.uiListen.isEmpty ? nil : try HostPort.listen(config.uiListen)
        let api = try AdminAPI(controller: self, admin: AdminService(fleet: service), accounts: accounts, reconciler: reconciler,
                               live: live, metrics: metrics, relayTier: tier, logger: logger)
        defer {
            SystemdNotify.send("STOPPING=1")
        }
        // The first failure (the relay tier cannot bind, say) stops everything; either way the
        // event streams and node connections are closed before returning.
        var failure: (any Error)?
        do { try await withThrowingTaskGroup(of: Void.self) { group in
            // Ready (and READY=1 for systemd) once both the relay tier and the admin API listen.
            let (parts, partSink) = AsyncStream.makeStream(of: Served.self)
            group.addTask {
                var served = Served()
                var waiting = (relay: tier != nil, admin: adminAddress != nil)
                for await part in parts {
                    if let relay = part.relay { served.relay = relay; waiting.relay = false }
                    if let port = part.adminPort { served.adminPort = port; waiting.admin = false }
                    if !waiting.relay && !waiting.admin { break }
                }
                var status = "reconciling \(nodes.count) nodes"
                if let relay = served.relay { status += "; accounts on \(relay.socketPath)" }
                if let port = served.adminPort { status += "; admin API on port \(port)" }
                SystemdNotify.send("READY=1\nSTATUS=\(status)")
                ready(served)
            }
            if let tier {
                group.addTask { try await tier.run { endpoints in partSink.yield(Served(relay: endpoints)) } }
            }
            if let adminAddress {
                group.addTask {
                    try await api.run(host: adminAddress.host, port: adminAddress.port) { port in partSink.yield(Served(adminPort: port)) }
                }
            }
            if tier == nil && adminAddress == nil { partSink.yield(Served()) }
            group.addTask { await reconciler.run() }
            group.addTask {
                // New and removed nodes get (or lose) their event stream within one interval.
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(config.reconcileInterval))
                    if let nodes = try? await store.read({ tx in try tx.nodes() }) { await watchers.sync(with: nodes) }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    let cutoff = StoreClock.now() - Int64(config.auditRetentionDays) * 86_400_000_000
                    if let purged = try? await store.write({ tx in try tx.purgeAudit(olderThan: cutoff) }), purged > 0 {
                        logger.info("audit retention", metadata: ["purged_rows": "\(purged)", "days": "\(config.auditRetentionDays)"])
                    }
                    _ = try? await store.write { tx in
                        try tx.purgeExpiredSessions()
                        try tx.purgeExpiredAdminSessions()
                    }
                    try? await Task.sleep(for: .seconds(86_400))
                }
            }
            group.addTask { await SystemdNotify.feedWatchdog() }
            for try await _ in group {}
        } } catch { failure = error }
        await watchers.stopAll()
        await pool.shutdown()
        if let failure { throw failure }
    }
}
