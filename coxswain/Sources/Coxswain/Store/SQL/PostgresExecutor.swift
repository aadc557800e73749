import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

// The store's statements on PostgreSQL (`store.backend: postgres`, #22), through one postgres-nio
// connection. Everything here is synchronous: the store calls it from its own dispatch queue,
// never from a NIO event loop thread nor from a Swift-concurrency thread (`EventLoopFuture.wait()`
// blocks the calling thread until the event loop has answered).

/// A failure of PostgreSQL other than a constraint (those are `StoreError.constraint`). It names
/// the statement by its first 200 characters, never its arguments (they can hold secrets).
public struct PostgresStoreError: Error, CustomStringConvertible, Sendable {
    /// The server's SQLSTATE (`42P01`, `40001`, …); `nil` when the server did not answer (connection, protocol).
    public let sqlState: String?
    public let message: String
    /// The first 200 characters of the statement.
    public let statement: String

    public init(sqlState: String?, message: String, statement: String) {
        self.sqlState = sqlState
        self.message = message
        self.statement = String(statement.prefix(200))
    }

    public var description: String {
        let state = sqlState.map { " (SQLSTATE \($0))" } ?? ""
        return "PostgreSQL: \(message)\(state) in: \(statement)"
    }
}

/// How `PostgresConnectionBox.transaction` begins.
enum PostgresTransactionMode: Sendable {
    /// `BEGIN` (READ COMMITTED), nothing else.
    case plain
    /// `BEGIN` (READ COMMITTED), then `pg_advisory_xact_lock(writerLockKey)`: every write
    /// transaction of every controller on the database runs one after the other, as SQLite's
    /// single writer does. READ COMMITTED takes a new snapshot per statement, so the statements
    /// after the lock see everything the previous writer committed.
    case write
    /// `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`: one snapshot for the whole read.
    case read
}

/// One PostgreSQL connection, opened on `MultiThreadedEventLoopGroup.singleton`, with synchronous
/// transactions. Call it from a thread that is neither an event loop's nor a Swift-concurrency
/// thread. Transactions on one box run one at a time (a second thread waits); a connection the
/// server or the network closed is opened again by the next transaction.
final class PostgresConnectionBox: @unchecked Sendable {
    /// The advisory lock every write transaction takes ("pharos" + 0001).
    static let writerLockKey: Int64 = 0x7068_6172_6F73_0001

    let configuration: PostgresConnection.Configuration
    let logger: Logger

    // `stateLock` guards `connection`, `closed` and `nextConnectionID`; `transactionLock` is held
    // for a whole transaction and guards `inTransaction`.
    private let stateLock = NSLock()
    private let transactionLock = NSRecursiveLock()
    private var connection: PostgresConnection?
    private var closed = false
    private var inTransaction = false
    private var nextConnectionID = 1

    /// Opens the connection (blocking until the server has authenticated it).
    init(configuration: PostgresConnection.Configuration) throws {
        self.configuration = configuration
        self.logger = Self.makeLogger()
        self.connection = try Self.connect(configuration, id: 0, logger: self.logger)
    }

    deinit {
        if let connection = self.connection { Self.closeDetached(connection) }
    }

    /// A configuration for TCP (`host`, `port`), or for the server's unix socket when
    /// `unixSocketDirectory` is given (libpq's `host=/run/postgresql`: the socket is
    /// `<directory>/.s.PGSQL.<port>`; a path that already ends in `.s.PGSQL.<n>` is used as is).
    /// TLS is off.
    static func makeConfiguration(host: String, port: Int = 5432, username: String, password: String?,
                                  database: String?, unixSocketDirectory: String? = nil,
                                  connectTimeoutSeconds: Int64 = 10) -> PostgresConnection.Configuration {
        var configuration: PostgresConnection.Configuration
        if let directory = unixSocketDirectory, !directory.isEmpty {
            configuration = PostgresConnection.Configuration(
                unixSocketPath: socketPath(directory: directory, port: port),
                username: username, password: password, database: database)
        } else {
            configuration = PostgresConnection.Configuration(
                host: host, port: port, username: username, password: password, database: database, tls: .disable)
        }
        configuration.options.connectTimeout = .seconds(connectTimeoutSeconds)
        configuration.options.additionalStartupParameters = [("application_name", "coxswain")] + Self.sessionSettings
        return configuration
    }

    /// The configuration of a DSN file's `PostgresStoreConfiguration` (an empty password is none),
    /// with TLS as its `sslmode` says: `verify-full` checks the chain against `sslrootcert` (or
    /// the system's roots) and the name against the host; nothing is sent before that passes.
    static func makeConfiguration(_ store: PostgresStoreConfiguration, unixSocketDirectory: String? = nil,
                                  connectTimeoutSeconds: Int64 = 10) throws -> PostgresConnection.Configuration {
        var configuration = makeConfiguration(host: store.host, port: store.port, username: store.user,
                                              password: store.password.isEmpty ? nil : store.password, database: store.database,
                                              unixSocketDirectory: unixSocketDirectory, connectTimeoutSeconds: connectTimeoutSeconds)
        if store.tls == .verifyFull, unixSocketDirectory == nil {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            tls.certificateVerification = .fullVerification
            if let root = store.rootCertificatePath {
                guard FileManager.default.isReadableFile(atPath: root) else {
                    throw PostgresStoreError(sqlState: nil, message: "sslrootcert \(root) cannot be read", statement: "(connect)")
                }
                tls.trustRoots = .file(root)
            }
            do {
                configuration.tls = .require(try NIOSSLContext(configuration: tls))
            } catch {
                throw PostgresStoreError(sqlState: nil, message: "TLS for \(store.redacted): \(error)", statement: "(connect)")
            }
            configuration.options.tlsServerName = store.host
        }
        return configuration
    }

    static func socketPath(directory: String, port: Int) -> String {
        let last = directory.split(separator: "/").last.map(String.init) ?? ""
        if last.hasPrefix(".s.PGSQL.") { return directory }
        var directory = directory
        while directory.count > 1 && directory.hasSuffix("/") { directory.removeLast() }
        return directory == "/" ? "/.s.PGSQL.\(port)" : "\(directory)/.s.PGSQL.\(port)"
    }

    /// Server settings of every store session: TCP keepalives, so the server drops the session
    /// (and any lock it holds) of a controller whose machine vanished within ~25 s; a transaction
    /// left idle (a controller stuck between statements) ends after 60 s, releasing the writers'
    /// lock; waiting 60 s for a lock is an error, not a hang; strings are standard (the `?`
    /// numbering and `ESCAPE '\'` rely on it).
    static let sessionSettings: [(String, String)] = [
        ("tcp_keepalives_idle", "10"), ("tcp_keepalives_interval", "5"), ("tcp_keepalives_count", "3"),
        ("idle_in_transaction_session_timeout", "60000"), ("lock_timeout", "60000"),
        ("standard_conforming_strings", "on"),
    ]

    /// How long a statement may take before its connection is closed (and the statement fails):
    /// a server that vanished without a word never answers, and `wait()` has no deadline.
    static let statementDeadline = TimeAmount.seconds(120)

    /// The connection's logger: `.critical`, so postgres-nio never logs a statement or an argument.
    static func makeLogger() -> Logger {
        var logger = Logger(label: "coxswain.postgres")
        logger.logLevel = .critical
        return logger
    }

    // MARK: Transactions

    /// `BEGIN`, `body`, `COMMIT`; `ROLLBACK` when `body` throws (the error is rethrown as is).
    func transaction<T>(_ body: (PostgresExecutor) throws -> T) throws -> T {
        try transaction(mode: .plain, body)
    }

    /// A write transaction: serialized with every other writer on the database (`PostgresTransactionMode.write`).
    func writeTransaction<T>(_ body: (PostgresExecutor) throws -> T) throws -> T {
        try transaction(mode: .write, body)
    }

    /// A read-only transaction on one snapshot (`PostgresTransactionMode.read`).
    func readTransaction<T>(_ body: (PostgresExecutor) throws -> T) throws -> T {
        try transaction(mode: .read, body)
    }

    func transaction<T>(mode: PostgresTransactionMode, _ body: (PostgresExecutor) throws -> T) throws -> T {
        transactionLock.lock()
        defer { transactionLock.unlock() }
        guard !inTransaction else {
            throw PostgresStoreError(sqlState: nil, message: "a transaction is already open on this connection (nested transaction)",
                                     statement: "BEGIN")
        }
        inTransaction = true
        defer { inTransaction = false }

        var executor = try currentExecutor()
        let begin = mode == .read ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN"
        do {
            _ = try executor.run(begin, PostgresBindings())
        } catch {
            // A connection that died while idle (a server restart, a NAT's idle timeout) is found
            // here; nothing has run yet, so BEGIN is tried once more on a new connection.
            discardIfBroken(executor.connection)
            guard executor.connection.isClosed else { throw error }
            executor = try currentExecutor()
            _ = try executor.run(begin, PostgresBindings())
        }

        let value: T
        do {
            if mode == .write {
                _ = try executor.run("SELECT pg_advisory_xact_lock(\(Self.writerLockKey))", PostgresBindings())
            }
            value = try body(executor)
        } catch {
            do {
                _ = try executor.run("ROLLBACK", PostgresBindings())
                discardIfBroken(executor.connection)
            } catch {
                // The connection is in an unknown state: the next transaction opens a new one.
                discard(executor.connection)
            }
            throw error
        }

        let tag: String
        do {
            tag = try executor.run("COMMIT", PostgresBindings()).metadata.command
        } catch {
            // A failed COMMIT ends the transaction on the server; only a lost connection is kept from reuse.
            discardIfBroken(executor.connection)
            throw error
        }
        // COMMIT of a transaction a failed statement aborted answers "ROLLBACK", not an error.
        guard tag == "COMMIT" else {
            throw PostgresStoreError(sqlState: "25P02",
                                     message: "the transaction was rolled back: a statement in it failed (\(tag))",
                                     statement: "COMMIT")
        }
        return value
    }

    /// Runs `body` outside a transaction (each statement commits on its own), e.g. for
    /// `CREATE INDEX CONCURRENTLY` or a health check. Serialized with the transactions.
    func autocommit<T>(_ body: (PostgresExecutor) throws -> T) throws -> T {
        transactionLock.lock()
        defer { transactionLock.unlock() }
        guard !inTransaction else {
            throw PostgresStoreError(sqlState: nil, message: "autocommit inside a transaction", statement: "")
        }
        let executor = try currentExecutor()
        do {
            return try body(executor)
        } catch {
            discardIfBroken(executor.connection)
            throw error
        }
    }

    /// Closes the connection; later transactions throw. Idempotent.
    func close() {
        let connection: PostgresConnection? = stateLock.withLock {
            closed = true
            let current = self.connection
            self.connection = nil
            return current
        }
        guard let connection else { return }
        if connection.eventLoop.inEventLoop {
            Self.closeDetached(connection)
        } else {
            let future: EventLoopFuture<Void> = connection.close()
            _ = try? future.wait()
        }
    }

    // MARK: Connection

    /// The executor on the open connection, opening a new one when the last was closed.
    /// Called with `transactionLock` held.
    private func currentExecutor() throws -> PostgresExecutor {
        let (current, id): (PostgresConnection?, Int) = try stateLock.withLock {
            guard !closed else {
                throw PostgresStoreError(sqlState: nil, message: "the PostgreSQL store is closed", statement: "")
            }
            if let connection = self.connection, !connection.isClosed { return (connection, 0) }
            self.connection = nil
            let id = nextConnectionID
            nextConnectionID += 1
            return (nil, id)
        }
        if let current { return PostgresExecutor(connection: current, logger: self.logger) }

        let fresh = try Self.connect(self.configuration, id: id, logger: self.logger)
        let keep: Bool = stateLock.withLock {
            guard !closed else { return false }
            self.connection = fresh
            return true
        }
        guard keep else {
            Self.closeDetached(fresh)
            throw PostgresStoreError(sqlState: nil, message: "the PostgreSQL store is closed", statement: "")
        }
        return PostgresExecutor(connection: fresh, logger: self.logger)
    }

    private func discardIfBroken(_ connection: PostgresConnection) {
        if connection.isClosed { discard(connection) }
    }

    private func discard(_ connection: PostgresConnection) {
        let isCurrent: Bool = stateLock.withLock {
            guard self.connection === connection else { return false }
            self.connection = nil
            return true
        }
        if isCurrent { Self.closeDetached(connection) }
    }

    private static func connect(_ configuration: PostgresConnection.Configuration, id: Int, logger: Logger) throws -> PostgresConnection {
        let future: EventLoopFuture<PostgresConnection> = PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration, id: id, logger: logger)
        do {
            return try future.wait()
        } catch {
            throw PostgresExecutor.storeError(error, statement: "(connect)")
        }
    }

    /// Closes without blocking; the callback keeps the connection alive until its channel has
    /// closed (postgres-nio asserts that a connection is closed when it is deinitialized).
    private static func closeDetached(_ connection: PostgresConnection) {
        let future: EventLoopFuture<Void> = connection.close()
        future.whenComplete { _ in withExtendedLifetime(connection) {} }
    }
}

/// The statements of one transaction (or of `autocommit`) on PostgreSQL. Valid only inside the
/// `PostgresConnectionBox` call that made it.
struct PostgresExecutor: SQLExecutor, Sendable {
    let connection: PostgresConnection
    let logger: Logger

    var engine: SQLEngine { .postgres }

    /// unique_violation, foreign_key_violation, check_violation, not_null_violation.
    static let constraintStates: Set<String> = ["23505", "23503", "23514", "23502"]

    /// Runs `sql`: one statement, or with no arguments several separated by `;` (run one by one,
    /// as the extended query protocol takes one statement). Returns the rows the (last) statement
    /// changed or returned, from its command tag (`INSERT 0 n`, `UPDATE n`, `DELETE n`, `SELECT n`; 0 for others).
    @discardableResult
    func execute(_ sql: String, _ arguments: [(any SQLBindable)?]) throws -> Int {
        let statements = Self.splitStatements(sql)
        if statements.count > 1 {
            guard arguments.isEmpty else {
                throw PostgresStoreError(sqlState: nil, message: "several statements with arguments", statement: sql)
            }
            var changed = 0
            for statement in statements {
                changed = try run(statement, PostgresBindings()).metadata.rows ?? 0
            }
            return changed
        }
        guard let statement = statements.first else { return 0 }
        return try run(statement, Self.bindings(arguments), original: sql).metadata.rows ?? 0
    }

    func rows(_ sql: String, _ arguments: [(any SQLBindable)?]) throws -> [SQLRow] {
        let statements = Self.splitStatements(sql)
        guard statements.count <= 1 else {
            throw PostgresStoreError(sqlState: nil, message: "rows() takes one statement", statement: sql)
        }
        guard let statement = statements.first else { return [] }
        let result = try run(statement, Self.bindings(arguments), original: sql)
        return try result.rows.map { row in
            var columns: [String] = []
            var values: [SQLValue] = []
            columns.reserveCapacity(row.count)
            values.reserveCapacity(row.count)
            for cell in row {
                columns.append(cell.columnName)
                try values.append(Self.sqlValue(cell, statement: sql))
            }
            return SQLRow(columns: columns, values: values)
        }
    }

    /// One statement with `?` numbered, through the extended query protocol; server errors translated.
    func run(_ sql: String, _ binds: PostgresBindings, original: String? = nil) throws -> PostgresQueryResult {
        let query = PostgresQuery(unsafeSQL: Self.numberPlaceholders(sql), binds: binds)
        let future: EventLoopFuture<PostgresQueryResult> = connection.query(query, logger: logger)
        let connection = self.connection
        let deadline = connection.eventLoop.scheduleTask(in: PostgresConnectionBox.statementDeadline) {
            let closing: EventLoopFuture<Void> = connection.close()
            _ = closing
        }
        defer { deadline.cancel() }
        do {
            return try future.wait()
        } catch {
            throw Self.storeError(error, statement: original ?? sql)
        }
    }

    // MARK: Errors

    /// A constraint the server refused → `StoreError.constraint(<server message>)`; any other
    /// failure → `PostgresStoreError` (never the arguments: `PSQLError` holds the query and its binds).
    static func storeError(_ error: any Error, statement: String) -> any Error {
        if let error = error as? PSQLError {
            if error.code == .server, let info = error.serverInfo {
                let state = info[.sqlState]
                let message = info[.message] ?? "the server refused the statement"
                if let state, constraintStates.contains(state) { return StoreError.constraint(message) }
                return PostgresStoreError(sqlState: state, message: message, statement: statement)
            }
            var message = "\(error.code)"
            if let underlying = error.underlying { message += ": \(underlying)" }
            return PostgresStoreError(sqlState: nil, message: message, statement: statement)
        }
        if error is StoreError || error is PostgresStoreError { return error }
        return PostgresStoreError(sqlState: nil, message: "\(error)", statement: statement)
    }

    // MARK: Values

    static func bindings(_ arguments: [(any SQLBindable)?]) -> PostgresBindings {
        var bindings = PostgresBindings(capacity: arguments.count)
        for argument in arguments {
            switch argument?.sqlValue ?? SQLValue.null {
            case .null: bindings.appendNull()
            case .integer(let int): bindings.append(int)
            case .real(let real): bindings.append(real)
            case .text(let text): bindings.append(text)
            case .blob(let data): bindings.append(ByteBuffer(bytes: data))
            }
        }
        return bindings
    }

    /// A cell (postgres-nio asks for every result column in binary format) as the store's value.
    static func sqlValue(_ cell: PostgresCell, statement: String) throws -> SQLValue {
        guard let bytes = cell.bytes else { return .null }
        do {
            switch cell.dataType {
            case .int2, .int4, .int8:
                return try .integer(cell.decode(Int64.self))
            case .oid:
                var buffer = bytes
                guard buffer.readableBytes == 4, let oid = buffer.readInteger(as: UInt32.self) else { break }
                return .integer(Int64(oid))
            case .float4, .float8:
                return try .real(cell.decode(Double.self))
            case .numeric:
                if let value = numericValue(bytes) { return value }
            case .bool:
                return try cell.decode(Bool.self) ? .integer(1) : .integer(0)
            case .bytea:
                return .blob(Data(bytes.readableBytesView))
            case .text, .varchar, .name, .bpchar, .unknown, .char, .json, .xml:
                return .text(String(buffer: bytes))
            case .jsonb, .uuid:
                return try .text(cell.decode(String.self))
            case .void:
                return .null
            default:
                // User-defined types (enums, citext, …) send their text; built-in ones send binary.
                if cell.dataType.isUserDefined, let text = String(bytes: bytes.readableBytesView, encoding: .utf8) {
                    return .text(text)
                }
                throw PostgresStoreError(
                    sqlState: nil,
                    message: "column \(cell.columnName) is of type \(cell.dataType), which the store does not read (CAST it to BIGINT or TEXT)",
                    statement: statement)
            }
        } catch let error as PostgresStoreError {
            throw error
        } catch let error as PostgresDecodingError {
            throw PostgresStoreError(sqlState: nil,
                                     message: "cannot read column \(cell.columnName) of type \(cell.dataType): \(error.code)",
                                     statement: statement)
        }
        throw PostgresStoreError(sqlState: nil, message: "cannot read column \(cell.columnName) of type \(cell.dataType)",
                                 statement: statement)
    }

    /// A binary `numeric`: `.integer` when it has no fraction and fits, else `.real`.
    /// Layout: ndigits, weight, sign, dscale (Int16 each), then ndigits base-10000 digits; the
    /// first digit is worth 10000^weight.
    static func numericValue(_ buffer: ByteBuffer) -> SQLValue? {
        var buffer = buffer
        guard let count = buffer.readInteger(as: Int16.self), count >= 0,
              let weight = buffer.readInteger(as: Int16.self),
              let sign = buffer.readInteger(as: UInt16.self),
              buffer.readInteger(as: Int16.self) != nil else { return nil }
        switch sign {
        case 0xC000: return .real(.nan)
        case 0xD000: return .real(.infinity)
        case 0xF000: return .real(-.infinity)
        case 0x0000, 0x4000: break
        default: return nil
        }
        var digits: [Int] = []
        digits.reserveCapacity(Int(count))
        for _ in 0..<Int(count) {
            guard let group = buffer.readInteger(as: Int16.self), (0...9999).contains(group) else { return nil }
            digits.append(Int(group))
        }
        guard !digits.isEmpty else { return .integer(0) }

        func padded(_ value: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: 4 - text.count) + text
        }
        func group(atExponent exponent: Int) -> Int {
            let index = Int(weight) - exponent
            return index >= 0 && index < digits.count ? digits[index] : 0
        }

        var integral = ""
        if weight >= 0 {
            for exponent in stride(from: Int(weight), through: 0, by: -1) {
                let value = group(atExponent: exponent)
                if integral.isEmpty {
                    if value != 0 { integral = String(value) }
                } else {
                    integral += padded(value)
                }
            }
        }
        if integral.isEmpty { integral = "0" }

        var fraction = ""
        let lowest = Int(weight) - digits.count + 1
        if lowest < 0 {
            for exponent in stride(from: -1, through: lowest, by: -1) {
                fraction += padded(group(atExponent: exponent))
            }
        }
        while fraction.last == "0" { fraction.removeLast() }

        let negative = sign == 0x4000
        if fraction.isEmpty {
            let text = (negative ? "-" : "") + integral
            if let int = Int64(text) { return .integer(int) }
            return Double(text).map { SQLValue.real($0) }
        }
        return Double((negative ? "-" : "") + integral + "." + fraction).map { SQLValue.real($0) }
    }

    // MARK: SQL text

    /// `?` → `$1`, `$2`, … left to right, except inside '…' strings, "…" identifiers,
    /// $tag$…$tag$ strings, `--` and `/* */` comments.
    static func numberPlaceholders(_ sql: String) -> String {
        let bytes = Array(sql.utf8)
        guard bytes.contains(UInt8(ascii: "?")) else { return sql }
        let kinds = lexicalKinds(bytes)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count + 16)
        var number = 0
        for (index, byte) in bytes.enumerated() {
            if byte == UInt8(ascii: "?") && kinds[index] == .code {
                number += 1
                output.append(UInt8(ascii: "$"))
                output.append(contentsOf: String(number).utf8)
            } else {
                output.append(byte)
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// The statements of `sql`, split at each `;` outside strings, quoted identifiers and
    /// comments, trimmed; pieces with nothing but blanks and comments are dropped.
    static func splitStatements(_ sql: String) -> [String] {
        let bytes = Array(sql.utf8)
        let kinds = lexicalKinds(bytes)
        var statements: [String] = []
        var start = 0
        var hasContent = false
        func flush(upTo end: Int) {
            if hasContent {
                let text = String(decoding: bytes[start..<end], as: UTF8.self)
                statements.append(text.trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }
        for index in bytes.indices {
            switch kinds[index] {
            case .code:
                let byte = bytes[index]
                if byte == UInt8(ascii: ";") {
                    flush(upTo: index)
                    start = index + 1
                    hasContent = false
                } else if !isBlank(byte) {
                    hasContent = true
                }
            case .quoted:
                hasContent = true
            case .comment:
                break
            }
        }
        flush(upTo: bytes.count)
        return statements
    }

    enum LexicalKind: Equatable {
        case code, quoted, comment
    }

    /// What each UTF-8 byte of a statement is part of. (E'…' strings with backslash escapes are
    /// not recognised; the store does not write them.)
    static func lexicalKinds(_ bytes: [UInt8]) -> [LexicalKind] {
        let count = bytes.count
        var kinds = [LexicalKind](repeating: .code, count: count)
        func mark(_ range: Range<Int>, _ kind: LexicalKind) {
            for index in range { kinds[index] = kind }
        }
        let singleQuote = UInt8(ascii: "'"), doubleQuote = UInt8(ascii: "\""), dash = UInt8(ascii: "-")
        let slash = UInt8(ascii: "/"), star = UInt8(ascii: "*"), dollar = UInt8(ascii: "$"), newline = UInt8(ascii: "\n")

        var index = 0
        while index < count {
            let byte = bytes[index]
            let next: UInt8? = index + 1 < count ? bytes[index + 1] : nil
            if byte == singleQuote || byte == doubleQuote {
                // '…' with '' inside, "…" with "" inside.
                var end = index + 1
                while end < count {
                    if bytes[end] == byte {
                        if end + 1 < count && bytes[end + 1] == byte {
                            end += 2
                            continue
                        }
                        end += 1
                        break
                    }
                    end += 1
                }
                mark(index..<end, .quoted)
                index = end
            } else if byte == dash && next == dash {
                var end = index + 2
                while end < count && bytes[end] != newline { end += 1 }
                mark(index..<end, .comment)
                index = end
            } else if byte == slash && next == star {
                // PostgreSQL's block comments nest.
                var depth = 1
                var end = index + 2
                while end < count && depth > 0 {
                    if bytes[end] == slash && end + 1 < count && bytes[end + 1] == star {
                        depth += 1
                        end += 2
                    } else if bytes[end] == star && end + 1 < count && bytes[end + 1] == slash {
                        depth -= 1
                        end += 2
                    } else {
                        end += 1
                    }
                }
                mark(index..<end, .comment)
                index = end
            } else if byte == dollar, index == 0 || !isIdentifierByte(bytes[index - 1], allowDollar: true),
                      let tagEnd = dollarTagEnd(bytes, from: index) {
                // $$…$$ or $tag$…$tag$.
                let tag = Array(bytes[index...tagEnd])
                var end = count
                var search = tagEnd + 1
                while search + tag.count <= count {
                    if bytes[search] == dollar && Array(bytes[search..<(search + tag.count)]) == tag {
                        end = search + tag.count
                        break
                    }
                    search += 1
                }
                mark(index..<end, .quoted)
                index = end
            } else {
                index += 1
            }
        }
        return kinds
    }

    /// The index of the `$` closing a dollar-quote tag that opens at `start` (`$$` or `$name$`).
    private static func dollarTagEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        var index = start + 1
        guard index < bytes.count else { return nil }
        if bytes[index] == UInt8(ascii: "$") { return index }
        let first = bytes[index]
        guard isIdentifierByte(first, allowDollar: false), !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
            return nil
        }
        while index < bytes.count && isIdentifierByte(bytes[index], allowDollar: false) { index += 1 }
        return index < bytes.count && bytes[index] == UInt8(ascii: "$") ? index : nil
    }

    private static func isIdentifierByte(_ byte: UInt8, allowDollar: Bool) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), 0x80...0xFF:
            return true
        case UInt8(ascii: "$"):
            return allowDollar
        default:
            return false
        }
    }

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == 0x20 || (0x09...0x0D).contains(byte)
    }
}
