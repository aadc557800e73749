import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where a PostgreSQL store is and how to log in: read from a DSN file (0600, owned by the
/// controller's user), never from argv or the environment, since the DSN holds the password.
/// The file holds one libpq URI: `postgres://USER:PASSWORD@HOST:PORT/DATABASE`, optionally
/// `?sslmode=verify-full&sslrootcert=/etc/pharos/pg-ca.pem`.
public struct PostgresStoreConfiguration: Sendable, Equatable {
    /// How the connection is protected (libpq's `sslmode` names).
    public enum TLSMode: String, Sendable, Equatable {
        /// Plain TCP: only for a server on this machine or a network the operator trusts.
        case disable
        /// TLS, the server's certificate checked against `rootCertificatePath` (or the
        /// system's roots) and its name against `host`: what a MITM cannot pass.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    public var database: String
    public var tls: TLSMode
    /// The CA that signed the server's certificate (PEM); nil: the system's trusted roots.
    public var rootCertificatePath: String?

    /// `tls` defaults to `disable` for a loopback host and `verify-full` for any other.
    public init(host: String, port: Int = 5432, user: String, password: String, database: String,
                tls: TLSMode? = nil, rootCertificatePath: String? = nil) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls ?? (Self.isLoopback(host) ? .disable : .verifyFull)
        self.rootCertificatePath = rootCertificatePath
    }

    static func isIPAddress(_ host: String) -> Bool {
        host.contains(":") || (host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." })
    }

    /// `localhost`, `::1` or an IPv4 address in 127/8; never a name that merely starts with "127.".
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || (isIPAddress(host) && !host.contains(":") && host.hasPrefix("127."))
    }

    /// What logs and errors may show: everything but the password.
    public var redacted: String {
        "postgres://\(user)@\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)?sslmode=\(tls.rawValue)"
    }

    /// Parses a `postgres://` or `postgresql://` URI. Percent-escapes in the user and password
    /// are decoded (a password may hold `@` or `/`).
    public static func parse(dsn text: String) throws(PostgresConfigurationError) -> PostgresStoreConfiguration {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let components = URLComponents(string: trimmed), let scheme = components.scheme,
              scheme == "postgres" || scheme == "postgresql" else {
            throw .malformed("expected postgres://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        guard let host = components.host, !host.isEmpty else { throw .malformed("no host") }
        // Decoded once: `%25` in the file is a `%` in the password.
        guard let user = components.percentEncodedUser.flatMap({ $0.removingPercentEncoding }), !user.isEmpty else {
            throw .malformed("no user")
        }
        var password = ""
        if let encoded = components.percentEncodedPassword {
            guard let decoded = encoded.removingPercentEncoding else { throw .malformed("the password has a stray %; write it as %25") }
            password = decoded
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else { throw .malformed("no database name after the host") }
        let port = components.port ?? 5432
        guard (1...65_535).contains(port) else { throw .malformed("port \(port) is out of range") }
        var tls: TLSMode?
        var rootCertificate: String?
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                switch item.value ?? "" {
                case "disable": tls = .disable
                case "verify-full": tls = .verifyFull
                case "allow", "prefer", "require", "verify-ca":
                    throw .malformed("sslmode=\(item.value ?? "") does not check that the server is the one named; use verify-full "
                                     + "(with sslrootcert=FILE for a private CA), or disable on a network you trust")
                default: throw .malformed("sslmode is disable or verify-full")
                }
            case "sslrootcert":
                guard let path = item.value, path.hasPrefix("/") else { throw .malformed("sslrootcert must be an absolute path") }
                rootCertificate = path
            default:
                throw .malformed("unknown parameter \(item.name) (known: sslmode, sslrootcert)")
            }
        }
        let bareHost = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let configuration = PostgresStoreConfiguration(host: bareHost, port: port, user: user, password: password, database: database,
                                                       tls: tls, rootCertificatePath: rootCertificate)
        if configuration.tls == .verifyFull, Self.isIPAddress(bareHost) {
            throw .malformed("sslmode=verify-full needs the server's host name (the name its certificate holds), not the address \(bareHost)")
        }
        return configuration
    }

    /// Reads the DSN file at `path`: a regular file of ours (or root's) that nobody else can
    /// read or write, checked on the descriptor it is read from (no swap between check and read).
    public static func load(dsnFile path: String) throws(PostgresConfigurationError) -> PostgresStoreConfiguration {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            throw .unreadable(path: path, reason: errno == ELOOP ? "it is a symbolic link" : "it does not exist or cannot be read")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { throw .unreadable(path: path, reason: "it is not a regular file") }
        let mode = Int(info.st_mode & 0o7777)
        guard mode & 0o077 == 0 else {
            throw .unreadable(path: path, reason: String(format: "its mode is %04o; it holds a password, so make it 0600 (chmod 600 %@)", mode, path))
        }
        guard info.st_uid == geteuid() || info.st_uid == 0 else {
            throw .unreadable(path: path, reason: "it belongs to uid \(info.st_uid), neither this user nor root; chown it to the controller's user")
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count < 0 { throw .unreadable(path: path, reason: "it cannot be read") }
            if count == 0 { break }
            bytes += buffer[0..<count]
            if bytes.count > 65_536 { throw .unreadable(path: path, reason: "it is larger than 64 KiB; it should hold one DSN line") }
        }
        guard let text = String(bytes: bytes, encoding: .utf8) else {
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
