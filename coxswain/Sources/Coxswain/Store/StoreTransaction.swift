import Foundation

/// The typed operations of one read or write transaction.
public struct StoreTransaction {
    /// The transaction's statements, on whichever engine holds the store.
    public let sql: any SQLExecutor
    public let now: Int64

    init(sql: any SQLExecutor) {
        self.sql = sql
        self.now = StoreClock.now()
    }

    /// Optimistic concurrency for editable rows: fails with `.staleWrite` unless the row is
    /// still at `expectedVersion`, then writes it with the next version.
    func checkVersion(table: String, kind: String, id: String, expected: Int64) throws -> Int64 {
        guard let current = try sql.value(Int64.self, "SELECT version FROM \(table) WHERE id = ?", [id]) else {
            throw StoreError.notFound(kind: kind, id: id)
        }
        guard current == expected else {
            throw StoreError.staleWrite(kind: kind, id: id, expected: expected, current: current)
        }
        return current + 1
    }
}
