import Foundation
import GRDB

/// The store's statements on SQLite, through GRDB's connection of the current transaction.
struct SQLiteExecutor: SQLExecutor {
    let db: Database
    var engine: SQLEngine { .sqlite }

    @discardableResult
    func execute(_ sql: String, _ arguments: [(any SQLBindable)?]) throws -> Int {
        try db.execute(sql: sql, arguments: StatementArguments(arguments.map { Self.databaseValue($0?.sqlValue ?? .null) }))
        return db.changesCount
    }

    func rows(_ sql: String, _ arguments: [(any SQLBindable)?]) throws -> [SQLRow] {
        let arguments = StatementArguments(arguments.map { Self.databaseValue($0?.sqlValue ?? .null) })
        return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
            SQLRow(columns: Array(row.columnNames), values: row.databaseValues.map(Self.sqlValue))
        }
    }

    static func databaseValue(_ value: SQLValue) -> DatabaseValue {
        switch value {
        case .null: .null
        case .integer(let int): int.databaseValue
        case .real(let real): real.databaseValue
        case .text(let text): text.databaseValue
        case .blob(let data): data.databaseValue
        }
    }

    static func sqlValue(_ value: DatabaseValue) -> SQLValue {
        switch value.storage {
        case .null: .null
        case .int64(let int): .integer(int)
        case .double(let real): .real(real)
        case .string(let text): .text(text)
        case .blob(let data): .blob(data)
        }
    }
}
