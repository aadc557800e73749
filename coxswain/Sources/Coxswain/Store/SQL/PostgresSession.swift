import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

// The controller's own PostgreSQL sessions beside the store's (#22): the fleet lease (a
// session advisory lock) and the LISTEN connection. Unlike `PostgresConnectionBox`, these run
// inside Swift concurrency (the services of `cox serve`): everything here is `async` and never
// waits on a future. Each opens its own connection on `MultiThreadedEventLoopGroup.singleton`,
// with the store's `.critical` logger (postgres-nio never logs a statement or an argument).

/// What the lease and the listener share: connecting, statements with a deadline, closing.
enum PostgresSession {
    /// The handshake's deadline (TCP connect, TLS, startup and authentication together).
    static let connectTimeoutSeconds: Int64 = 5
    /// How long a statement of the lease or a listener's ping may take before its connection is dropped.
    static let statementTimeoutSeconds: Int64 = 5

    /// The store's connection settings with this session's `application_name` (what
    /// `pg_stat_activity` shows) and `extraParameters` (server settings for the session).
    static func connectionConfiguration(_ store: PostgresStoreConfiguration, applicationName: String,
                                        extraParameters: [(String, String)] = []) throws -> PostgresConnection.Configuration {
        var configuration = try PostgresConnectionBox.makeConfiguration(store, connectTimeoutSeconds: connectTimeoutSeconds)
        configuration.options.additionalStartupParameters = [("application_name", applicationName)] + extraParameters
        return configuration
    }

    /// Opens and authenticates a connection; failures as `PostgresStoreError` (never the password).
    static func connect(_ store: PostgresStoreConfiguration, applicationName: String,
                        extraParameters: [(String, String)] = [], id: Int, logger: Logger) async throws -> PostgresConnection {
        let configuration = try connectionConfiguration(store, applicationName: applicationName, extraParameters: extraParameters)
        do {
            return try await PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.any(),
                                                        configuration: configuration, id: id, logger: logger)
        } catch {
            throw PostgresExecutor.storeError(error, statement: "(connect)")
        }
    }

    /// Runs `sql` (one statement answering one boolean; `$1` is `key` when given) and returns the
    /// boolean. Any failure, or no answer within `statementTimeoutSeconds`, closes the connection.
    static func bool(_ sql: String, key: Int64? = nil, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        var binds = PostgresBindings()
        if let key { binds.append(key) }
        let query = PostgresQuery(unsafeSQL: sql, binds: binds)
        do {
            return try await answer(within: statementTimeoutSeconds, on: connection, statement: sql) {
                let rows = try await connection.query(query, logger: logger)
                var decoded: Bool?
                for try await row in rows {
                    decoded = try row.decode(Bool.self)
                }
                guard let value = decoded else {
                    throw PostgresStoreError(sqlState: nil, message: "the statement returned no row", statement: sql)
                }
                return value
            }
        } catch let error as PostgresStoreError {
            throw error
        } catch {
            throw PostgresExecutor.storeError(error, statement: sql)
        }
    }

    /// `body`'s value (statements on `connection`). When it throws, when the calling task is
    /// cancelled, or when it has not answered within `seconds` (a connection the network lost
    /// without a word answers never), the connection is closed, which fails whatever still waits
    /// on it, and this throws.
    static func answer<T: Sendable>(within seconds: Int64, on connection: PostgresConnection, statement: String,
                                    _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self, returning: T.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return nil
            }
            do {
                if let first = try await group.next(), let value = first {
                    group.cancelAll()
                    return value
                }
            } catch {
                // Closed before the group waits for the statement, which only a closed connection ends.
                PostgresSession.closeDetached(connection)
                throw error
            }
            PostgresSession.closeDetached(connection)
            throw PostgresStoreError(sqlState: nil, message: "the server did not answer within \(seconds) s", statement: statement)
        }
    }

    /// Closes the connection and waits until it is closed.
    static func close(_ connection: PostgresConnection) async {
        let future: EventLoopFuture<Void> = connection.close()
        try? await future.get()
    }

    /// Closes without waiting; the callback keeps the connection alive until its channel has
    /// closed (postgres-nio asserts that a connection is closed when it is deinitialized).
    static func closeDetached(_ connection: PostgresConnection) {
        let future: EventLoopFuture<Void> = connection.close()
        future.whenComplete { _ in withExtendedLifetime(connection) {} }
    }
}

/// Leadership among the controllers sharing one database: a session-level advisory lock held
/// on a connection of its own. The lock lives as long as that session: when the holder's
/// process dies, or its connection is lost, PostgreSQL releases it and another controller's
/// `tryAcquire()` takes it.
actor PostgresLease {
    /// "pharos" + 0002 (the store's writers lock "pharos" + 0001).
    static let defaultKey: Int64 = 0x7068_6172_6F73_0002

    /// Server settings of the lease's session: PostgreSQL probes an idle client every 10 s and
    /// drops a session whose client stopped answering after 3 unanswered probes 5 s apart, so
    /// the lock of a controller whose host vanished (no FIN, no RST) is free within about 25 s
    /// rather than after the system's default two hours. (Ignored on a unix socket.)
    static let keepaliveParameters: [(String, String)] = [
        ("tcp_keepalives_idle", "10"), ("tcp_keepalives_interval", "5"), ("tcp_keepalives_count", "3"),
    ]

    let configuration: PostgresStoreConfiguration
    let key: Int64
    private let logger: Logger

    private var connection: PostgresConnection?
    private var held = false
    private var nextConnectionID = 1
    /// The `tryAcquire` under way: callers meanwhile share its answer (one connection, one lock call).
    private var attempt: Task<Bool, Never>?

    /// Why the last `tryAcquire` did not answer cleanly (unreachable server, lost connection, …):
    /// the server's or the network's words and the DSN without its password. `nil` when it did,
    /// including when another controller holds the lock.
    private(set) var lastError: String?

    init(configuration: PostgresStoreConfiguration, key: Int64 = PostgresLease.defaultKey) {
        self.configuration = configuration
        self.key = key
        self.logger = PostgresConnectionBox.makeLogger()
    }

    deinit {
        if let connection { PostgresSession.closeDetached(connection) }
    }

    /// Whether this controller holds the lock now: still held (its session answers), or just taken.
    func tryAcquire() async -> Bool {
        if let attempt { return await attempt.value }
        // Runs on this actor, after `attempt` is set; clears it before any waiter resumes.
        let running = Task {
            let result = await self.renew()
            self.attempt = nil
            return result
        }
        attempt = running
        return await running.value
    }

    /// Unlocks (best effort) and closes the connection. A later `tryAcquire` starts afresh.
    func release() async {
        while let attempt { _ = await attempt.value }
        let wasHeld = held
        held = false
        guard let connection else { return }
        self.connection = nil
        if wasHeld {
            _ = try? await PostgresSession.bool("SELECT pg_advisory_unlock($1)", key: key, on: connection, logger: logger)
        }
        await PostgresSession.close(connection)
    }

    private func renew() async -> Bool {
        var failure: String?

        if held, let connection {
            do {
                _ = try await PostgresSession.bool("SELECT true", on: connection, logger: logger)
                lastError = nil
                return true
            } catch {
                // The session is gone or unusable, and the lock with it (closing ends the session).
                failure = describe(error)
                drop(connection)
            }
        }
        held = false
        if let current = connection, current.isClosed { drop(current) }

        let session: PostgresConnection
        if let current = connection {
            session = current
        } else {
            let id = nextConnectionID
            nextConnectionID += 1
            do {
                session = try await PostgresSession.connect(configuration, applicationName: "coxswain-lease",
                                                            extraParameters: Self.keepaliveParameters, id: id, logger: logger)
            } catch {
                lastError = describe(error)
                return false
            }
            connection = session
        }

        do {
            // pg_try_advisory_lock stacks in a session: it is only asked while not held.
            let taken = try await PostgresSession.bool("SELECT pg_try_advisory_lock($1)", key: key, on: session, logger: logger)
            held = taken
            lastError = failure
            return taken
        } catch {
            // Whether the server took the lock or not, closing the session leaves it free.
            lastError = describe(error)
            drop(session)
            return false
        }
    }

    private func drop(_ connection: PostgresConnection) {
        if self.connection === connection {
            self.connection = nil
            held = false
        }
        PostgresSession.closeDetached(connection)
    }

    private func describe(_ error: any Error) -> String {
        "\(configuration.redacted): \(PostgresBackend.describe(error))"
    }
}

/// The notifications of a channel, on a connection of their own that is opened again whenever
/// it is lost.
final class PostgresListener: Sendable {
    /// Said once the listener listens again after its connection was lost (or its first
    /// connection failed): notifications sent meanwhile are gone, so the caller looks at
    /// everything again.
    static let reconnected = "*"
    /// The wait before the next connection after one failed or was lost.
    static let reconnectDelay = Duration.seconds(1)
    /// How often the listener asks its idle connection whether the server still answers.
    static let pingInterval = Duration.seconds(30)

    let configuration: PostgresStoreConfiguration
    private let logger: Logger

    init(configuration: PostgresStoreConfiguration) {
        self.configuration = configuration
        self.logger = PostgresConnectionBox.makeLogger()
    }

    /// Whether `channel` can be a channel name here: [a-z_]+, at most 63 bytes.
    static func isValidChannel(_ channel: String) -> Bool {
        !channel.isEmpty && channel.utf8.count <= 63
            && channel.utf8.allSatisfy { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || $0 == UInt8(ascii: "_") }
    }

    /// Every notification's payload on `channel`, and `reconnected` after each reconnection.
    /// Listening stops, and the connection closes, when the consuming task is cancelled or the
    /// stream is dropped.
    func notifications(channel: String) -> AsyncStream<String> {
        precondition(Self.isValidChannel(channel), "a notification channel is [a-z_]+ (at most 63 bytes)")
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .unbounded)
        let (configuration, logger) = (self.configuration, self.logger)
        let task = Task {
            await Self.listen(channel: channel, configuration: configuration, logger: logger, continuation: continuation)
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    private static func listen(channel: String, configuration: PostgresStoreConfiguration, logger: Logger,
                               continuation: AsyncStream<String>.Continuation) async {
        var attempts = 0
        while !Task.isCancelled {
            if attempts > 0 {
                try? await Task.sleep(for: Self.reconnectDelay)
                if Task.isCancelled { break }
            }
            attempts += 1
            let connection: PostgresConnection
            do {
                connection = try await PostgresSession.connect(configuration, applicationName: "coxswain-listen",
                                                               id: attempts, logger: logger)
            } catch {
                continue
            }
            // Also on the first LISTEN: what was committed between the startup sweep's read and
            // this moment sent its notifications to nobody.
            let announce = true
            do {
                // Sends `LISTEN "<channel>"` and returns once the server confirmed it; UNLISTEN on return.
                try await connection.listen(on: channel) { notifications in
                    if announce { continuation.yield(Self.reconnected) }
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        group.addTask {
                            // Ends with an error when the connection closes.
                            for try await notification in notifications {
                                continuation.yield(notification.payload)
                            }
                        }
                        group.addTask {
                            // A connection the network lost silently never fails the sequence above.
                            while true {
                                try await Task.sleep(for: Self.pingInterval)
                                _ = try await PostgresSession.bool("SELECT true", on: connection, logger: logger)
                            }
                        }
                        _ = try await group.next()
                        group.cancelAll()
                    }
                }
            } catch {
                // Lost, refused or cancelled: the loop decides.
            }
            await PostgresSession.close(connection)
        }
        continuation.finish()
    }
}
