import Foundation

/// The PostgreSQL side of `Store`: one connection for write transactions and one for reads,
/// each driven from a thread of its own (postgres-nio's futures are waited on there, never on
/// an event loop or a Swift-concurrency thread). Every write transaction of every controller
/// on the database takes one advisory lock first (`PostgresConnectionBox.writeTransaction`),
/// so writes are serialized as SQLite serializes them: version checks cannot interleave and
/// the audit chain stays one chain.
final class PostgresBackend: Sendable {
    let configuration: PostgresStoreConfiguration
    private let writer: PostgresConnectionBox
    private let reader: PostgresConnectionBox
    private let writeQueue = DispatchQueue(label: "coxswain.postgres.write")
    private let readQueue = DispatchQueue(label: "coxswain.postgres.read")

    init(configuration: PostgresStoreConfiguration) throws {
        self.configuration = configuration
        do {
            writer = try PostgresConnectionBox(configuration: try PostgresConnectionBox.makeConfiguration(configuration))
            reader = try PostgresConnectionBox(configuration: try PostgresConnectionBox.makeConfiguration(configuration))
        } catch {
            throw StoreError.unreadable(path: configuration.redacted, reason: Self.describe(error))
        }
    }

    /// What a connection failure says, without the password (postgres-nio's errors never hold it).
    static func describe(_ error: any Error) -> String {
        if let error = error as? PostgresStoreError { return error.description }
        return String(describing: error)
    }

    func transaction<T: Sendable>(write: Bool, _ body: @escaping @Sendable (PostgresExecutor) throws -> T) async throws -> T {
        let (box, queue) = write ? (writer, writeQueue) : (reader, readQueue)
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try write ? box.writeTransaction(body) : box.readTransaction(body) })
            }
        }
    }

    /// The blocking form, on the caller's thread (the CLI's synchronous paths and tests).
    func transactionNow<T>(write: Bool, _ body: (PostgresExecutor) throws -> T) throws -> T {
        try write ? writer.writeTransaction(body) : reader.readTransaction(body)
    }

    /// Applies the migrations this build knows and the database lacks, each in the write
    /// transaction that records it. A database migrated by a newer build is refused.
    func migrate() throws {
        try writer.writeTransaction { sql in
            try sql.execute("CREATE TABLE IF NOT EXISTS pharos_migrations (identifier TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)")
            let applied = Set(try sql.values(String.self, "SELECT identifier FROM pharos_migrations"))
            let known = Set(PostgresSchema.migrations.map(\.identifier))
            let unknown = applied.subtracting(known).sorted()
            guard unknown.isEmpty else {
                throw StoreError.unreadable(path: configuration.redacted,
                                            reason: "its schema is newer than this coxswain (migrations \(unknown.joined(separator: ", "))); upgrade coxswain")
            }
            for migration in PostgresSchema.migrations where !applied.contains(migration.identifier) {
                try sql.execute(migration.sql)
                try sql.execute("INSERT INTO pharos_migrations (identifier, applied_at) VALUES (?, ?)",
                                [migration.identifier, StoreClock.now()])
            }
        }
    }

    func close() {
        writer.close()
        reader.close()
    }
}
