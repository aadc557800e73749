import Foundation

/// Where a PostgreSQL store is and how to log in: read from a DSN file (0600, owned by the
/// controller's user), never from argv or the environment, since the DSN holds the password.
/// The file holds one libpq URI: `postgres://USER:PASSWORD@HOST:PORT/DATABASE`.
public struct PostgresStoreConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    public var database: String

    public init(host: String, port: Int = 5432, user: String, password: String, database: String) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    /// What logs and errors may show: everything but the password.
    public var redacted: String { "postgres://\(user)@\(host):\(port)/\(database)" }

    /// Parses a `postgres://` or `postgresql://` URI. Percent-escapes in the user and password
    /// are decoded (a password may hold `@` or `/`).
    public static func parse(dsn text: String) throws(PostgresConfigurationError) -> PostgresStoreConfiguration {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let components = URLComponents(string: trimmed), let scheme = components.scheme,
              scheme == "postgres" || scheme == "postgresql" else {
            throw .malformed("expected postgres://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        guard let host = components.host, !host.isEmpty else { throw .malformed("no host") }
        guard let user = components.user.flatMap({ $0.removingPercentEncoding }), !user.isEmpty else { throw .malformed("no user") }
        let password = components.password.flatMap { $0.removingPercentEncoding } ?? ""
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else { throw .malformed("no database name after the host") }
        let port = components.port ?? 5432
        guard (1...65_535).contains(port) else { throw .malformed("port \(port) is out of range") }
        return PostgresStoreConfiguration(host: host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port: port,
                                          user: user, password: password, database: database)
    }

    /// Reads the DSN file at `path`, refusing one that others than its owner can read.
    public static func load(dsnFile path: String) throws(PostgresConfigurationError) -> PostgresStoreConfiguration {
        let attributes: [FileAttributeKey: Any]
        do { attributes = try FileManager.default.attributesOfItem(atPath: path) } catch {
            throw .unreadable(path: path, reason: "it does not exist or cannot be read")
        }
        let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0o777
        guard mode & 0o077 == 0 else {
            throw .unreadable(path: path, reason: String(format: "its mode is %04o; it holds a password, so make it 0600 (chmod 600 %@)", mode, path))
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw .unreadable(path: path, reason: "it cannot be read as text")
        }
        do { return try parse(dsn: text) } catch {
            throw .unreadable(path: path, reason: error.description)
        }
    }
}

public enum PostgresConfigurationError: Error, Equatable, CustomStringConvertible {
    case malformed(String)
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case .malformed(let reason): "the PostgreSQL DSN is malformed: \(reason)"
        case .unreadable(let path, let reason): "cannot use the PostgreSQL DSN file \(path): \(reason)"
        }
    }
}
