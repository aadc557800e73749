import Foundation
import PharosRuntime
import PharosTestSupport
@testable import Coxswain

/// A real PostgreSQL 15 from Debian (`postgresql-15`, which `make deps` and `.ci/run`
/// install) for the tests: one cluster per test process in a temporary directory, owned by
/// the `postgres` user (initdb refuses root), listening on a free loopback port with
/// password (SCRAM) logins; each caller gets a database of its own. Stopped when the
/// process exits.
final class PostgresCluster: @unchecked Sendable {
    static let binaries = "/usr/lib/postgresql/15/bin"
    static let user = "pharos"

    let dir: String
    let port: Int
    let password: String

    private static let lock = NSLock()
    nonisolated(unsafe) private static var started: Result<PostgresCluster, any Error>?

    /// The cluster of this test process, started on first use.
    static func shared() throws -> PostgresCluster {
        lock.lock()
        defer { lock.unlock() }
        if let started { return try started.get() }
        let result = Result { try PostgresCluster() }
        started = result
        return try result.get()
    }

    private init() throws {
        guard FileManager.default.isExecutableFile(atPath: "\(Self.binaries)/initdb") else {
            throw PostgresClusterError("PostgreSQL 15 is not installed (apt-get install postgresql-15; `make deps` does it)")
        }
        dir = "/tmp/pharos-pg-\(UUID().uuidString.prefix(8))"
        password = UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let passwordFile = "\(dir)/initdb-password"
        guard FileManager.default.createFile(atPath: passwordFile, contents: Data((password + "\n").utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw PostgresClusterError("cannot write \(passwordFile)")
        }
        try Command.run(["/usr/bin/chown", "-R", "postgres:postgres", dir])
        try Command.run(["/usr/sbin/runuser", "-u", "postgres", "--", "/usr/bin/env", "-C", "/", "\(Self.binaries)/initdb", "-D", "\(dir)/data",
                         "-U", Self.user, "--pwfile=\(passwordFile)", "--auth-local=trust", "--auth-host=scram-sha-256",
                         "--locale=C", "--encoding=UTF8", "--no-sync"])
        try FileManager.default.removeItem(atPath: passwordFile)
        try Self.makeCertificates(in: dir)
        var lastError: (any Error)?
        for _ in 0..<5 {
            let (port, socket) = LoopbackPorts.hold()
            close(socket)
            do {
                try Command.run(["/usr/sbin/runuser", "-u", "postgres", "--", "/usr/bin/env", "-C", "/", "\(Self.binaries)/pg_ctl", "-D", "\(dir)/data",
                                 "-l", "\(dir)/server.log", "-w", "-t", "30",
                                 "-o", "-p \(port) -k \(dir) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200 "
                                    + "-c ssl=on -c ssl_cert_file=\(dir)/server.crt -c ssl_key_file=\(dir)/server.key",
                                 "start"])
                self.port = port
                Self.stopAtExit(dataDirectory: "\(dir)/data")
                return
            } catch {
                lastError = error
            }
        }
        let log = (try? String(contentsOfFile: "\(dir)/server.log", encoding: .utf8)) ?? ""
        throw PostgresClusterError("pg_ctl start failed: \(lastError.map { "\($0)" } ?? "") \(log.suffix(2000))")
    }

    /// The CA of the server's certificate (for `localhost`), and a CA that did not sign it: a
    /// client trusting only the second is what a man in the middle with his own CA meets.
    var caPath: String { "\(dir)/ca.crt" }
    var otherCAPath: String { "\(dir)/other-ca.crt" }

    /// A CA and the server's leaf for DNS:localhost (key 0600, owned by postgres), and a second,
    /// unrelated CA, all by the real `openssl`.
    private static func makeCertificates(in dir: String) throws {
        let openssl = "/usr/bin/openssl"
        for ca in ["ca", "other-ca"] {
            try Command.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                             "-keyout", "\(dir)/\(ca).key", "-out", "\(dir)/\(ca).crt", "-days", "2", "-subj", "/CN=pharos test \(ca)"])
        }
        try Command.run([openssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                         "-keyout", "\(dir)/server.key", "-out", "\(dir)/server.csr", "-subj", "/CN=localhost"])
        try "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n".write(toFile: "\(dir)/server.ext", atomically: true, encoding: .utf8)
        try Command.run([openssl, "x509", "-req", "-in", "\(dir)/server.csr", "-CA", "\(dir)/ca.crt", "-CAkey", "\(dir)/ca.key",
                         "-CAcreateserial", "-days", "2", "-extfile", "\(dir)/server.ext", "-out", "\(dir)/server.crt"])
        try Command.run(["/usr/bin/chown", "postgres:postgres", "\(dir)/server.key", "\(dir)/server.crt"])
        try Command.run(["/usr/bin/chmod", "600", "\(dir)/server.key"])
    }

    /// A new empty database, owned by `user`.
    func createDatabase(_ prefix: String = "t") throws -> String {
        let name = "\(prefix)_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))"
        try psql("CREATE DATABASE \(name)")
        return name
    }

    /// How the controller logs in to `database`: over TCP, with the password.
    func configuration(database: String) -> PostgresStoreConfiguration {
        PostgresStoreConfiguration(host: "127.0.0.1", port: port, user: Self.user, password: password, database: database)
    }

    /// Runs `sql` as the cluster's superuser over the unix socket (trusted locally).
    @discardableResult
    func psql(_ sql: String, database: String = "postgres") throws -> String {
        try Command.run(["/usr/sbin/runuser", "-u", "postgres", "--", "/usr/bin/env", "-C", "/", "\(Self.binaries)/psql", "-X", "-q", "-A", "-t",
                         "-v", "ON_ERROR_STOP=1", "-h", dir, "-p", String(port), "-U", Self.user, "-d", database, "-c", sql])
    }

    nonisolated(unsafe) private static var dataDirectoryToStop: String?

    private static func stopAtExit(dataDirectory: String) {
        dataDirectoryToStop = dataDirectory
        atexit {
            guard let data = PostgresCluster.dataDirectoryToStop else { return }
            _ = try? Command.run(["/usr/sbin/runuser", "-u", "postgres", "--", "/usr/bin/env", "-C", "/", "\(PostgresCluster.binaries)/pg_ctl",
                                  "-D", data, "-m", "immediate", "-w", "stop"])
            try? FileManager.default.removeItem(atPath: (data as NSString).deletingLastPathComponent)
        }
    }
}

struct PostgresClusterError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
