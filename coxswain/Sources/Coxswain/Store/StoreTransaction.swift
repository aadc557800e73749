import Foundation
import GRDB

/// The typed operations of one read or write transaction.
public struct StoreTransaction {
    let db: Database
    public let now: Int64

    init(db: Database) {
        self.db = db
        self.now = StoreClock.now()
    }

    /// Optimistic concurrency for editable rows: fails with `.staleWrite` unless the row is
    /// still at `expectedVersion`, then writes it with the next version.
    func checkVersion(table: String, kind: String, id: String, expected: Int64) throws -> Int64 {
        guard let current = try Int64.fetchOne(db, sql: "SELECT version FROM \(table) WHERE id = ?", arguments: [id]) else {
            throw StoreError.notFound(kind: kind, id: id)
        }
        guard current == expected else {
            throw StoreError.staleWrite(kind: kind, id: id, expected: expected, current: current)
        }
        return current + 1
    }
}
