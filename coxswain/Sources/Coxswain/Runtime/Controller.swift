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

    /// The same controller whose service layer runs `effects` after every commit.
    public func with(effects: any FleetEffects) -> Controller {
        Controller(config: config, store: store, pki: pki, service: service.with(effects: effects))
    }

    /// `configPath`'s directory anchors a relative `state_dir` and `geoip_db`.
    public static func open(configPath: String) throws -> Controller {
        var config = try CoxConfig.load(path: configPath)
        if !config.geoipDB.isEmpty, !config.geoipDB.hasPrefix("/") {
            config.geoipDB = URL(fileURLWithPath: base(of: configPath)).appendingPathComponent(config.geoipDB).standardizedFileURL.path
        }
        let store = try openStore(config: config, configPath: configPath)
        let pki = try FleetPKI.loadOrCreate(in: store)
        return Controller(config: config, store: store, pki: pki, service: FleetService(store: store, pki: pki, config: config))
    }

    /// Root running `cox` against a state directory owned by another user (the packaged
    /// daemon's `pharos-coxswain`) becomes that user, so no file in it ends up root's.
    public static func adoptStateOwner(configPath: String) throws {
        let config = try CoxConfig.load(path: configPath)
        let database = databasePath(of: config, configPath: configPath)
        try Privileges.adoptOwner(of: URL(fileURLWithPath: database).deletingLastPathComponent().path)
    }

    /// The store `config` names: `app.db` in the state directory, or the PostgreSQL database
    /// of its DSN file (the state directory still holds sockets and packages).
    static func openStore(config: CoxConfig, configPath: String) throws -> Store {
        let database = databasePath(of: config, configPath: configPath)
        guard config.backend == "postgres" else { return try Store.open(path: database) }
        let dsn = try PostgresStoreConfiguration.load(dsnFile: config.dsnFilePath(relativeTo: base(of: configPath)))
        return try Store.open(postgres: dsn, stateDirectory: URL(fileURLWithPath: database).deletingLastPathComponent().path)
    }

    /// `app.db` of the config at `configPath` (a relative `state_dir` is beside the file).
    public static func databasePath(of config: CoxConfig, configPath: String) -> String {
        config.databasePath(relativeTo: base(of: configPath))
    }

    static func base(of configPath: String) -> String {
        URL(fileURLWithPath: configPath).deletingLastPathComponent().path
    }

    /// SSH as the controller's own identity, pinning host keys in the store; its per-call
    /// files go in the state directory.
    public var ssh: SSHClient {
        SSHClient(store: store, workDirectory: store.stateDirectory)
    }

    /// Runs a reconciler for one short job (a CLI command's push) and shuts its connections.
    public func withReconciler<T: Sendable>(logger: Logger, _ body: (FleetReconciler) async throws -> T) async throws -> T {
        try await withPool { pool in try await body(FleetReconciler(store: store, pool: pool, config: config, logger: logger)) }
    }

    /// Runs a certificate renewer for one short job (`cox nodes renew`).
    public func withRenewer<T: Sendable>(logger: Logger, _ body: (NodeCertificateRenewer) async throws -> T) async throws -> T {
        try await withPool { pool in
            try await body(NodeCertificateRenewer(store: store, pool: pool, authority: pki.authority, logger: logger,
                                                  callTimeout: .seconds(config.nodeCallTimeoutSeconds)))
        }
    }

    /// A node pool that refuses revoked node leaves, closed after `body`.
    func withPool<T: Sendable>(_ body: (NodeClientPool) async throws -> T) async throws -> T {
        let pool = try NodeClientPool(pki: pki)
        do {
            pool.denied.replace(with: Set(try await store.read { tx in try tx.revokedCertificates(kind: .node).map(\.serial) }))
            let value = try await body(pool)
            await pool.shutdown()
            return value
        } catch {
            await pool.shutdown()
            throw error
        }
    }
}
