import Foundation
import Logging
import PharosRuntime

/// What every `cox` command opens: the config, the store beside it, the key material and
/// the service layer. `cox serve` adds the reconcile loop on top.
public struct Controller: Sendable {
    public let config: CoxConfig
    public let store: Store
    public let pki: FleetPKI
    public let service: FleetService

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

    /// `cox serve`: re-reconciles the whole fleet at once, then sweeps every
    /// `fleet.reconcile_interval` seconds until cancelled; keeps one WatchEvents stream per
    /// node feeding `connection_events`; runs the account service behind the relay tier
    /// (`accounts.sync`); purges audit rows past `retention.audit_days` daily. `ready` gets the
    /// relay tier's endpoints (nil when accounts are off) once everything listens.
    public func serve(logger: Logger, ready: @escaping @Sendable (RelayTier.Endpoints?) -> Void = { _ in }) async throws {
        let pool = try NodeClientPool(pki: pki)
        let reconciler = FleetReconciler(store: store, pool: pool, config: config, logger: logger)
        let watchers = EventWatchers(store: store, pool: pool, logger: logger)
        let (store, config) = (self.store, self.config)
        let nodes = try await store.read { tx in try tx.nodes() }
        logger.info("serving", metadata: ["state": "\(store.path)", "nodes": "\(nodes.count)",
                                          "sweep_seconds": "\(config.reconcileInterval)"])
        await watchers.sync(with: nodes)
        let accounts = AccountService(fleet: service) { affected in _ = await reconciler.push(affected) }
        let tier = config.accountsSync ? RelayTier(controller: self, accounts: accounts, logger: logger) : nil
        defer {
            SystemdNotify.send("STOPPING=1")
        }
        // The first failure (the relay tier cannot bind, say) stops everything; either way the
        // event streams and node connections are closed before returning.
        var failure: (any Error)?
        do { try await withThrowingTaskGroup(of: Void.self) { group in
            if let tier {
                group.addTask {
                    try await tier.run { endpoints in
                        SystemdNotify.send("READY=1\nSTATUS=reconciling \(nodes.count) nodes; accounts on \(endpoints.socketPath)")
                        ready(endpoints)
                    }
                }
            } else {
                SystemdNotify.send("READY=1\nSTATUS=reconciling \(nodes.count) nodes")
                ready(nil)
            }
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
                    _ = try? await store.write { tx in try tx.purgeExpiredSessions() }
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
