import Foundation
import GRDB

extension Store {
    /// What `cox restore` proves about a decrypted database before it becomes the state:
    /// SQLite finds it intact, its schema is one this build knows (an older one is migrated
    /// on open), and it holds the CAs every controller has.
    static func checkRestorable(copy path: String, backup: String) throws {
        let queue: DatabaseQueue
        do { queue = try DatabaseQueue(path: path) } catch {
            throw BackupError.damaged(path: backup, reason: "its database does not open: \(error)")
        }
        defer { try? queue.close() }
        do {
            try queue.read { db in
                let integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check")
                guard integrity == ["ok"] else {
                    throw BackupError.damaged(path: backup, reason: "SQLite's integrity check of its database: \(integrity.prefix(3).joined(separator: "; "))")
                }
                let unknown = try Schema.migrator.appliedIdentifiers(db).subtracting(Schema.migrator.migrations).sorted()
                guard unknown.isEmpty else { throw BackupError.newerSchema(path: backup, migrations: unknown) }
                guard try db.tableExists("ca"), try Int.fetchOne(db, sql: "SELECT count(*) FROM ca") ?? 0 > 0 else {
                    throw BackupError.damaged(path: backup, reason: "its database holds no certificate authority")
                }
            }
        } catch let error as BackupError {
            throw error
        } catch {
            throw BackupError.damaged(path: backup, reason: "its database: \(error)")
        }
    }
}
