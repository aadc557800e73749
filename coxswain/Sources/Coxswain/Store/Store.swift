import Foundation
import GRDB

/// The controller's state: one SQLite file in WAL mode (`<state_dir>/app.db`, 0600) by
/// default, or a PostgreSQL database (`store.backend: postgres`, #22). Every read and write
/// goes through a `StoreTransaction`, whose statements run on either; no SQL lives outside
/// `Store/`.
public final class Store: Sendable {
    /// The SQLite file; for PostgreSQL, `<state_dir>/app.db` is never created and this names
    /// only where the state directory is.
    public let path: String
    let engine: Engine

    enum Engine: Sendable {
        case sqlite(DatabasePool)
        case postgres(PostgresBackend)
    }

    /// The controller's own directory (keys, sockets, packages), whichever engine holds the rows.
    public var stateDirectory: String { URL(fileURLWithPath: path).deletingLastPathComponent().path }

    public var backend: SQLEngine {
        switch engine {
        case .sqlite: .sqlite
        case .postgres: .postgres
        }
    }

    /// `postgres://USER@HOST:PORT/DATABASE?sslmode=…` (no password) for a PostgreSQL store.
    public var postgresDescription: String? { postgresConfiguration?.redacted }

    /// Where a PostgreSQL store is (nil for SQLite).
    var postgresConfiguration: PostgresStoreConfiguration? {
        guard case .postgres(let backend) = engine else { return nil }
        return backend.configuration
    }

    private init(path: String, engine: Engine) {
        self.path = path
        self.engine = engine
    }

    /// GRDB's pool, for what only SQLite has (online backup, checkpoints).
    var pool: DatabasePool {
        get throws {
            guard case .sqlite(let pool) = engine else { throw StoreError.sqliteOnly }
            return pool
        }
    }

    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    public static func open(path: String) throws -> Store {
        let url = URL(fileURLWithPath: path)
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true,
                                   attributes: [.posixPermissions: 0o700])
            if !fm.fileExists(atPath: path) {
                guard fm.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                    throw StoreError.unreadable(path: path, reason: "cannot create the file")
                }
            }
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            configuration.label = "coxswain"
            let pool = try DatabasePool(path: path, configuration: configuration)
            try Schema.migrator.migrate(pool)
            return Store(path: path, engine: .sqlite(pool))
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.unreadable(path: path, reason: "\(error)")
        }
    }

    /// Connects to the PostgreSQL database of `configuration` and applies pending migrations;
    /// `stateDirectory` keeps what is not rows (keys on disk, sockets, packages).
    public static func open(postgres configuration: PostgresStoreConfiguration, stateDirectory: String) throws -> Store {
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let backend = try PostgresBackend(configuration: configuration)
        do {
            try backend.migrate()
        } catch {
            backend.close()
            throw error
        }
        return Store(path: URL(fileURLWithPath: stateDirectory).appendingPathComponent("app.db").path, engine: .postgres(backend))
    }

    public func read<T: Sendable>(_ body: @escaping @Sendable (StoreTransaction) throws -> T) async throws -> T {
        switch engine {
        case .sqlite(let pool):
            return try await pool.read { db in try body(StoreTransaction(sql: SQLiteExecutor(db: db))) }
        case .postgres(let backend):
            return try await backend.transaction(write: false) { try body(StoreTransaction(sql: $0)) }
        }
    }

    /// One write transaction: everything in `body` commits together or not at all.
    @discardableResult
    public func write<T: Sendable>(_ body: @escaping @Sendable (StoreTransaction) throws -> T) async throws -> T {
        switch engine {
        case .sqlite(let pool):
            do {
                return try await pool.write { db in try body(StoreTransaction(sql: SQLiteExecutor(db: db))) }
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                throw StoreError.constraint(error.message ?? "\(error)")
            }
        case .postgres(let backend):
            return try await backend.transaction(write: true) { try body(StoreTransaction(sql: $0)) }
        }
    }

    /// Blocking variants for the CLI's synchronous paths and tests.
    public func readNow<T>(_ body: (StoreTransaction) throws -> T) throws -> T {
        switch engine {
        case .sqlite(let pool):
            return try pool.read { db in try body(StoreTransaction(sql: SQLiteExecutor(db: db))) }
        case .postgres(let backend):
            return try backend.transactionNow(write: false) { try body(StoreTransaction(sql: $0)) }
        }
    }

    @discardableResult
    public func writeNow<T>(_ body: (StoreTransaction) throws -> T) throws -> T {
        switch engine {
        case .sqlite(let pool):
            do {
                return try pool.write { db in try body(StoreTransaction(sql: SQLiteExecutor(db: db))) }
            } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
                throw StoreError.constraint(error.message ?? "\(error)")
            }
        case .postgres(let backend):
            return try backend.transactionNow(write: true) { try body(StoreTransaction(sql: $0)) }
        }
    }

    /// A consistent copy of the whole database at `path` (a new file, 0600), taken with
    /// SQLite's online backup inside one read transaction: writers carry on meanwhile, and the
    /// copy holds exactly the transactions committed when it began.
    public func snapshot(to path: String) throws {
        let pool = try self.pool
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw StoreError.unreadable(path: path, reason: "cannot create the snapshot file")
        }
        let copy = try DatabaseQueue(path: path)
        try pool.backup(to: copy)
        try copy.close()
    }

    /// Moves everything the WAL holds into the database file, then closes every connection;
    /// the store is unusable after. (Closing alone is not enough: when a read-only reader is
    /// the last connection to close, SQLite leaves the WAL beside the file.)
    public func close() throws {
        switch engine {
        case .sqlite(let pool):
            _ = try pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
            try pool.close()
        case .postgres(let backend):
            backend.close()
        }
    }

    /// For tests that tamper with the file the way an attacker with write access would.
    public func executeRawForTesting(_ sql: String, _ arguments: [(any SQLBindable)?] = []) throws {
        try writeNow { tx in try tx.sql.execute(sql, arguments) }
    }
}

/// Microseconds since 1970 UTC, the store's unit of time.
public enum StoreClock {
    public static func now() -> Int64 { Int64((Date().timeIntervalSince1970 * 1_000_000).rounded(.down)) }
    public static func date(_ micros: Int64) -> Date { Date(timeIntervalSince1970: Double(micros) / 1_000_000) }
}
