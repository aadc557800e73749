import Foundation
import GRDB

/// The controller's state: one SQLite file in WAL mode (`<state_dir>/app.db`, 0600).
/// Every read and write goes through a `StoreTransaction`; no SQL lives outside `Store/`.
public final class Store: Sendable {
    public let path: String
    let pool: DatabasePool

    private init(path: String, pool: DatabasePool) {
        self.path = path
        self.pool = pool
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
            return Store(path: path, pool: pool)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.unreadable(path: path, reason: "\(error)")
        }
    }

    public func read<T: Sendable>(_ body: @escaping @Sendable (StoreTransaction) throws -> T) async throws -> T {
        try await pool.read { db in try body(StoreTransaction(db: db)) }
    }

    /// One write transaction: everything in `body` commits together or not at all.
    @discardableResult
    public func write<T: Sendable>(_ body: @escaping @Sendable (StoreTransaction) throws -> T) async throws -> T {
        do {
            return try await pool.write { db in try body(StoreTransaction(db: db)) }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw StoreError.constraint(error.message ?? "\(error)")
        }
    }

    /// Blocking variants for the CLI's synchronous paths and tests.
    public func readNow<T>(_ body: (StoreTransaction) throws -> T) throws -> T {
        try pool.read { db in try body(StoreTransaction(db: db)) }
    }

    @discardableResult
    public func writeNow<T>(_ body: (StoreTransaction) throws -> T) throws -> T {
        try pool.write { db in try body(StoreTransaction(db: db)) }
    }

    /// A consistent copy of the whole database at `path` (a new file, 0600), taken with
    /// SQLite's online backup inside one read transaction: writers carry on meanwhile, and the
    /// copy holds exactly the transactions committed when it began.
    public func snapshot(to path: String) throws {
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
        _ = try pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
        try pool.close()
    }

    /// For tests that tamper with the file the way an attacker with write access would.
    public func executeRawForTesting(_ sql: String, _ arguments: [(any DatabaseValueConvertible)?] = []) throws {
        try pool.write { db in try db.execute(sql: sql, arguments: StatementArguments(arguments)) }
    }
}

/// Microseconds since 1970 UTC, the store's unit of time.
public enum StoreClock {
    public static func now() -> Int64 { Int64((Date().timeIntervalSince1970 * 1_000_000).rounded(.down)) }
    public static func date(_ micros: Int64) -> Date { Date(timeIntervalSince1970: Double(micros) / 1_000_000) }
}
