import Foundation
import Logging
import PharosLifecycle
import PharosRuntime
import PharosSpec
import ServiceLifecycle
import Synchronization

extension Controller {
    /// What `cox serve` listens on once it is ready.
    public struct Served: Sendable {
        /// The relay tier's endpoints; nil when accounts are off.
        public var relay: RelayTier.Endpoints?
        /// The admin API and UI's port; nil when `ui.listen` is empty.
        public var adminPort: Int?
        /// Each enrolled remote relay's tunnel, by relay ID: up or not (none while standing by).
        public var relayTunnels: @Sendable () -> [String: Bool] = { [:] }
    }

    /// `cox serve`, the controller's composition root: the one place its graph is assembled.
    /// One ServiceGroup runs, in start order, the relay tier (account socket, deny-list
    /// refresh, embedded relay, remote relays' tunnels; `accounts.sync`), the admin API and UI
    /// (`ui.listen`), the reconcile sweep (at once, then every `fleet.reconcile_interval`),
    /// the WatchEvents streams kept in step with the node list, the daily retention purge and
    /// the systemd watchdog. SIGTERM/SIGINT (`signals`) or cancellation stops them in reverse
    /// order; the first failure (a port that cannot be bound, say) stops everything and is
    /// thrown. `ready` is called once everything listens.
    public func serve(logger: Logger, signals: Bool = false, ready: @escaping @Sendable (Served) -> Void = { _ in }) async throws {
        let (store, config) = (self.store, self.config)
        let pool = try NodeClientPool(pki: pki)
        let live = LiveHub()
        let metrics = ControllerMetrics()
        let reconciler = FleetReconciler(store: store, pool: pool, config: config, logger: logger, metrics: metrics, live: live)
        let watchers = EventWatchers(store: store, pool: pool, logger: logger, live: live)
        let renewer = NodeCertificateRenewer(store: store, pool: pool, authority: pki.authority, logger: logger,
                                             callTimeout: .seconds(config.nodeCallTimeoutSeconds))
        let leadership = FleetLeadership(store: store, logger: logger)
        let nodes = try await store.read { tx in try tx.nodes() }
        logger.info("serving", metadata: ["state": "\(store.postgresDescription ?? store.path)", "nodes": "\(nodes.count)",
                                          "sweep_seconds": "\(config.reconcileInterval)"])
        _ = await leadership.renew()
        if leadership.isLeader { await watchers.sync(with: nodes) }
        // From here on every mutation pushes and publishes after commit, whoever asked for it.
        let controller = with(effects: ServeEffects(reconciler: reconciler, live: live))
        let accounts = AccountService(fleet: controller.service)
        let tier = config.accountsSync ? RelayTier(controller: controller, accounts: accounts, logger: logger,
                                                   leads: { leadership.isLeader }) : nil
        let adminAddress = config.uiListen.isEmpty ? nil : try HostPort.listen(config.uiListen)
        let admin = AdminService(fleet: controller.service)
        var api = try AdminAPI(controller: controller, admin: admin, accounts: accounts,
                               live: live, metrics: metrics, relayTier: tier, logger: logger)
        api.leadership = leadership
        let readiness = ServeReadiness(waitingForRelay: tier != nil, waitingForAdmin: adminAddress != nil) { served in
            var status = "reconciling \(nodes.count) nodes"
            if let relay = served.relay { status += "; accounts on \(relay.socketPath)" }
            if let port = served.adminPort { status += "; admin API on port \(port)" }
            SystemdNotify.send("READY=1\nSTATUS=\(status)")
            var served = served
            served.relayTunnels = { tier?.tunnelStates ?? [:] }
            ready(served)
        }
        let interval = Duration.seconds(config.reconcileInterval)
        var services: [(name: String, service: any Service)] = tier?.services { readiness.relayListening($0) } ?? []
        if let adminAddress {
            services.append(("admin API", api.application(host: adminAddress.host, port: adminAddress.port) { readiness.adminListening($0) }))
        }
        if !config.siemListen.isEmpty {
            let socketPath = URL(fileURLWithPath: store.stateDirectory).appendingPathComponent("monitor.sock").path
            services.append(("SIEM stream", MonitorListener(pki: pki, config: config, socketPath: socketPath,
                                                             service: MonitorStreamService(live: live, admin: admin, logger: logger),
                                                             logger: logger)))
        }
        if let postgres = store.postgresConfiguration {
            // A standby takes over within one renewal of the lease after the leader's session ends.
            services.append(("fleet lease", PeriodicService(every: FleetLeadership.renewInterval) {
                switch await leadership.renew() {
                case .gained:
                    // Off the lease's loop, which must go on renewing while the sweep runs.
                    Task {
                        if let nodes = try? await store.read({ tx in try tx.nodes() }) { await watchers.sync(with: nodes) }
                        await reconciler.sweepAndLog()
                    }
                case .lost:
                    await watchers.stopAll()
                case .none:
                    break
                }
            }))
            services.append(("node notifications", NodeNotificationService(configuration: postgres, leadership: leadership,
                                                                           reconciler: reconciler)))
        }
        services += [
            ("reconcile sweep", PeriodicService(every: interval, start: .immediately) {
                guard leadership.isLeader else { return }
                await reconciler.sweepAndLog()
            }),
            // New and removed nodes get (or lose) their event stream within one interval.
            ("event watchers", PeriodicService(every: interval) {
                guard leadership.isLeader else { return }
                if let nodes = try? await store.read({ tx in try tx.nodes() }) { await watchers.sync(with: nodes) }
            }),
            ("retention", PeriodicService(every: .seconds(86_400), start: .immediately) {
                guard leadership.isLeader else { return }
                await Self.purgeExpired(store, config, logger)
            }),
            // The controller's own leaf first (nodes are dialed with it; every controller loads
            // the stored one), then the nodes' (the leader's job).
            ("certificate renewal", PeriodicService(every: .seconds(min(config.reconcileInterval, 300)), start: .immediately) {
                await Self.renewControllerLeaf(store, pool: pool, logger: logger)
                guard leadership.isLeader else { return }
                await renewer.pass()
            }),
            ("certificate watch", PeriodicService(every: .seconds(3600), start: .immediately) {
                guard leadership.isLeader else { return }
                do {
                    for alert in try await CertificateWatch.check(store) {
                        logger.warning("certificate expiring", metadata: ["detail": "\(alert.detail)"])
                        live.publish(.alert(alert))
                    }
                } catch {
                    logger.error("certificate watch failed", metadata: ["error": "\(error)"])
                }
            }),
            ("watchdog", WatchdogService()),
        ]
        if !config.analyticsDisabled {
            let (settings, window) = (config.anomaly, Int64(config.analyticsWindowHours) * 3_600_000_000)
            // A database that does not open stops `cox serve` with the reason, as a bad key does.
            let geo = config.geoipDB.isEmpty ? nil : try GeoIPSource(path: config.geoipDB)
            if let geo {
                let meta = await geo.current()?.metadata
                logger.info("GeoIP rules on", metadata: ["geoip_db": "\(geo.path)", "type": "\(meta?.databaseType ?? "")"])
            }
            // Before the watchdog, which stays last.
            services.insert(("anomaly sweep", PeriodicService(every: .seconds(config.analyticsIntervalSeconds)) {
                guard leadership.isLeader else { return }
                do {
                    for alert in try await AnomalyEngine.sweep(store, settings: settings, window: window, geo: await geo?.current()) {
                        logger.warning("anomaly", metadata: ["kind": "\(alert.kind)", "device": "\(alert.deviceID ?? "")",
                                                             "detail": "\(alert.detail)"])
                        live.publish(.alert(alert))
                    }
                } catch {
                    logger.error("anomaly sweep failed", metadata: ["error": "\(error)"])
                }
            }), at: services.count - 1)
        }
        readiness.checkNothingToWaitFor()
        defer { SystemdNotify.send("STOPPING=1") }
        // Whatever ended the group, the event streams and node connections are closed.
        do {
            try await DaemonServiceGroup.make(services, signals: signals, logger: logger).run()
        } catch {
            await watchers.stopAll()
            await leadership.release()
            await pool.shutdown()
            throw error
        }
        await watchers.stopAll()
        await leadership.release()
        await pool.shutdown()
    }

    /// Renews the controller's leaf in the store when a third of its life is left (FleetPKI)
    /// and hands a changed one to the node pool; the relay tunnels read it from the store.
    static func renewControllerLeaf(_ store: Store, pool: NodeClientPool, logger: Logger) async {
        do {
            // Most passes: the pool already presents the stored leaf and it is not due; the
            // CAs are not loaded.
            if let stored = try await store.read({ tx in try tx.controllerCertificate() }),
               !FleetPKI.controllerLeafIsDue(notAfter: stored.notAfter, now: Date()),
               stored.certificatePEM == (await pool.certificateChainPEM) { return }
            let pki = try FleetPKI.loadOrCreate(in: store)
            guard pki.controllerCertificatePEM != (await pool.certificateChainPEM) else { return }
            await pool.replaceIdentity(certificateChainPEM: pki.controllerCertificatePEM, keyPEM: pki.controllerKeyPEM)
            let serial = await pool.identitySerial
            logger.info("controller certificate renewed", metadata: ["serial": "\(serial)"])
        } catch {
            logger.error("controller certificate renewal failed", metadata: ["error": "\(error)"])
        }
    }

    /// Audit rows and removed devices' peers past `retention.audit_days`; connection history and resolved alerts past
    /// `retention.metrics_days`; expired device and admin sessions.
    static func purgeExpired(_ store: Store, _ config: CoxConfig, _ logger: Logger) async {
        let cutoff = StoreClock.now() - Int64(config.auditRetentionDays) * 86_400_000_000
        if let purged = try? await store.write({ tx in try tx.purgeAudit(olderThan: cutoff) }), purged > 0 {
            logger.info("audit retention", metadata: ["purged_rows": "\(purged)", "days": "\(config.auditRetentionDays)"])
        }
        let history = StoreClock.now() - Int64(config.metricsRetentionDays) * 86_400_000_000
        if let (events, alerts) = try? await store.write({ tx in
            (try tx.purgeConnectionEvents(olderThan: history), try tx.purgeResolvedAlerts(olderThan: history))
        }), events + alerts > 0 {
            logger.info("history retention", metadata: ["connection_events": "\(events)", "resolved_alerts": "\(alerts)",
                                                        "days": "\(config.metricsRetentionDays)"])
        }
        _ = try? await store.write { tx in
            // A removed device's peers are remembered as long as the audit row of its removal.
            _ = try tx.purgeRemovedPeers(olderThan: cutoff)
            try tx.purgeExpiredSessions()
            try tx.purgeExpiredAdminSessions()
        }
    }
}

/// Collects the ports of `cox serve`'s listeners and calls `ready` once, when all are known.
final class ServeReadiness: Sendable {
    private struct State {
        var served = Controller.Served()
        var waitingForRelay: Bool
        var waitingForAdmin: Bool
        var told = false
    }

    private let state: Mutex<State>
    private let ready: @Sendable (Controller.Served) -> Void

    init(waitingForRelay: Bool, waitingForAdmin: Bool, ready: @escaping @Sendable (Controller.Served) -> Void) {
        state = Mutex(State(waitingForRelay: waitingForRelay, waitingForAdmin: waitingForAdmin))
        self.ready = ready
    }

    func relayListening(_ endpoints: RelayTier.Endpoints) {
        update { $0.served.relay = endpoints; $0.waitingForRelay = false }
    }

    func adminListening(_ port: Int) {
        update { $0.served.adminPort = port; $0.waitingForAdmin = false }
    }

    func checkNothingToWaitFor() {
        update { _ in }
    }

    private func update(_ change: (inout State) -> Void) {
        let served = state.withLock { state -> Controller.Served? in
            change(&state)
            guard !state.told, !state.waitingForRelay, !state.waitingForAdmin else { return nil }
            state.told = true
            return state.served
        }
        if let served { ready(served) }
    }
}
