import Foundation

/// Which engine runs a statement: the store's SQL is written once, in the subset both
/// understand (see `Store/SQL/README.md`); the few places that must differ ask this.
public enum SQLEngine: String, Sendable {
    case sqlite, postgres
}

/// One row of a result, read by column name.
public struct SQLRow: Sendable {
    public let columns: [String]
    public let values: [SQLValue]

    public init(columns: [String], values: [SQLValue]) {
        self.columns = columns
        self.values = values
    }

    public func value(named name: String) -> SQLValue? {
        guard let index = columns.firstIndex(of: name) else { return nil }
        return values[index]
    }

    /// The column `name` as `T` (NULL reads as `nil` for an optional `T`). A missing column or a
    /// value of another type is a programming error or a corrupted database: it stops the
    /// process with the column's name, as GRDB's row subscripts do.
    public subscript<T: SQLDecodable>(_ name: String) -> T {
        guard let value = value(named: name) else { fatalError("no column \(name) in \(columns)") }
        guard let decoded = T.decode(sql: value) else { fatalError("column \(name) holds \(value), not \(T.self)") }
        return decoded
    }

    public subscript<T: SQLDecodable>(_ index: Int) -> T {
        guard let decoded = T.decode(sql: values[index]) else { fatalError("column \(index) holds \(values[index]), not \(T.self)") }
        return decoded
    }
}

/// What a `StoreTransaction` runs its statements through: GRDB's `Database` for SQLite, a
/// PostgreSQL connection inside one transaction for PostgreSQL. Statements use `?` for every
/// argument; the PostgreSQL side numbers them.
public protocol SQLExecutor {
    var engine: SQLEngine { get }
    /// Runs `sql` (one statement, or several without arguments); returns the rows it changed.
    @discardableResult
    func execute(_ sql: String, _ arguments: [(any SQLBindable)?]) throws -> Int
    func rows(_ sql: String, _ arguments: [(any SQLBindable)?]) throws -> [SQLRow]
}

extension SQLExecutor {
    @discardableResult
    public func execute(_ sql: String) throws -> Int { try execute(sql, []) }

    public func rows(_ sql: String) throws -> [SQLRow] { try rows(sql, []) }

    public func row(_ sql: String, _ arguments: [(any SQLBindable)?] = []) throws -> SQLRow? {
        try rows(sql, arguments).first
    }

    /// The first column of the first row, or `nil` without a row (or for NULL).
    public func value<T: SQLDecodable>(_ type: T.Type = T.self, _ sql: String, _ arguments: [(any SQLBindable)?] = []) throws -> T? {
        guard let row = try rows(sql, arguments).first, let first = row.values.first else { return nil }
        if case .null = first { return nil }
        guard let decoded = T.decode(sql: first) else { throw StoreError.damaged("\(sql): \(first) is not \(T.self)") }
        return decoded
    }

    /// The first column of every row.
    public func values<T: SQLDecodable>(_ type: T.Type = T.self, _ sql: String, _ arguments: [(any SQLBindable)?] = []) throws -> [T] {
        try rows(sql, arguments).map { row in
            guard let first = row.values.first, let decoded = T.decode(sql: first) else {
                throw StoreError.damaged("\(sql): \(row.values.first ?? .null) is not \(T.self)")
            }
            return decoded
        }
    }

    public func count(_ sql: String, _ arguments: [(any SQLBindable)?] = []) throws -> Int {
        try value(Int.self, sql, arguments) ?? 0
    }

    // MARK: records

    public func records<R: SQLRecord>(_ type: R.Type, _ sql: String, _ arguments: [(any SQLBindable)?] = []) throws -> [R] {
        try rows(sql, arguments).map { try R(sqlRow: $0) }
    }

    public func record<R: SQLRecord>(_ type: R.Type, _ sql: String, _ arguments: [(any SQLBindable)?] = []) throws -> R? {
        try rows(sql, arguments).first.map { try R(sqlRow: $0) }
    }

    /// `SELECT * FROM <table> [WHERE …] [ORDER BY …]`.
    public func all<R: SQLRecord>(_ type: R.Type, where condition: String? = nil, _ arguments: [(any SQLBindable)?] = [],
                                  orderBy: String? = nil) throws -> [R] {
        try records(type, R.selectSQL(where: condition, orderBy: orderBy), arguments)
    }

    public func first<R: SQLRecord>(_ type: R.Type, where condition: String, _ arguments: [(any SQLBindable)?] = [],
                                    orderBy: String? = nil) throws -> R? {
        try record(type, R.selectSQL(where: condition, orderBy: orderBy) + " LIMIT 1", arguments)
    }

    /// The row whose primary key is `key`.
    public func find<R: SQLRecord>(_ type: R.Type, key: any SQLBindable) throws -> R? {
        try first(type, where: "\(R.primaryKey) = ?", [key])
    }

    public func insert<R: SQLRecord>(_ record: R) throws {
        let columns = try SQLRecordEncoder.encode(record)
        let names = columns.map(\.name).joined(separator: ", ")
        let marks = Array(repeating: "?", count: columns.count).joined(separator: ", ")
        try execute("INSERT INTO \(R.tableName) (\(names)) VALUES (\(marks))", columns.map(\.value))
    }

    /// Writes every column of `record` over the row with its primary key; `false` without one.
    @discardableResult
    public func update<R: SQLRecord>(_ record: R) throws -> Bool {
        let columns = try SQLRecordEncoder.encode(record)
        guard let key = columns.first(where: { $0.name == R.primaryKey }) else {
            throw StoreError.damaged("\(R.self) has no \(R.primaryKey)")
        }
        let others = columns.filter { $0.name != R.primaryKey }
        let assignments = others.map { "\($0.name) = ?" }.joined(separator: ", ")
        return try execute("UPDATE \(R.tableName) SET \(assignments) WHERE \(R.primaryKey) = ?",
                           others.map(\.value) + [key.value]) > 0
    }

    /// Deletes the row with primary key `key`; `false` when there was none.
    @discardableResult
    public func delete<R: SQLRecord>(_ type: R.Type, key: any SQLBindable) throws -> Bool {
        try execute("DELETE FROM \(R.tableName) WHERE \(R.primaryKey) = ?", [key]) > 0
    }
}

/// A `Codable` struct stored as one row of `tableName`; its coding keys are the column names.
public protocol SQLRecord: Codable {
    static var tableName: String { get }
    static var primaryKey: String { get }
}

extension SQLRecord {
    public static var primaryKey: String { "id" }

    static func selectSQL(where condition: String?, orderBy: String?) -> String {
        var sql = "SELECT * FROM \(tableName)"
        if let condition { sql += " WHERE \(condition)" }
        if let orderBy { sql += " ORDER BY \(orderBy)" }
        return sql
    }

    public init(sqlRow row: SQLRow) throws {
        try self.init(from: SQLRowDecoder(row: row))
    }
}
