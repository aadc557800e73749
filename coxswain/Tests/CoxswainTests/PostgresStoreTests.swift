import Foundation
import Testing
@testable import Coxswain

/// The PostgreSQL store (#22) against a real PostgreSQL 15 (`PostgresCluster`): its schema is
/// SQLite's, its DSN file is guarded like a key, and its transactions behave like SQLite's
/// for what the controller relies on. The rest of the store's behaviour on PostgreSQL is the
/// whole controller suite run with `PHAROS_TEST_STORE=postgres` (`make test-postgres`).
@Suite struct PostgresStoreTests {
    @Test func placeholdersAreNumberedOutsideLiteralsIdentifiersAndComments() {
        #expect(PostgresExecutor.numberPlaceholders("SELECT a FROM t WHERE b = ? AND c = ?") == "SELECT a FROM t WHERE b = $1 AND c = $2")
        #expect(PostgresExecutor.numberPlaceholders("SELECT '?', 'it''s ?', \"q?\" FROM t WHERE x = ? -- why?\nAND y = ?")
                == "SELECT '?', 'it''s ?', \"q?\" FROM t WHERE x = $1 -- why?\nAND y = $2")
    }

    @Test func aDSNIsParsedAndItsPasswordDecoded() throws {
        let parsed = try PostgresStoreConfiguration.parse(dsn: "postgresql://cox:p%40ss%2Fword@db.internal:6432/pharos\n")
        #expect(parsed == PostgresStoreConfiguration(host: "db.internal", port: 6432, user: "cox", password: "p@ss/word", database: "pharos",
                                                     tls: .verifyFull))
        #expect(parsed.redacted == "postgres://cox@db.internal:6432/pharos?sslmode=verify-full")
        #expect(try PostgresStoreConfiguration.parse(dsn: "postgres://cox:pw@[::1]/pharos").host == "::1")
        #expect(try PostgresStoreConfiguration.parse(dsn: "postgres://cox:pw@db/pharos").port == 5432)
    }

    @Test func aMalformedDSNIsRefusedWithoutEchoingIt() {
        for dsn in ["mysql://cox:secret-pw@db/pharos", "postgres://cox:secret-pw@db", "postgres://:secret-pw@db/pharos",
                    "postgres://cox:secret-pw@/pharos", "secret-pw"] {
            #expect {
                try PostgresStoreConfiguration.parse(dsn: dsn)
            } throws: { error in
                "\(error)".contains("malformed") && !"\(error)".contains("secret-pw")
            }
        }
    }

    @Test func aDSNFileOthersCanReadIsRefused() throws {
        let dir = "/tmp/cox-dsn-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/postgres.dsn"
        _ = FileManager.default.createFile(atPath: path, contents: Data("postgres://cox:secret-pw@db/pharos\n".utf8),
                                       attributes: [.posixPermissions: 0o644])
        #expect {
            try PostgresStoreConfiguration.load(dsnFile: path)
        } throws: { error in
            "\(error)".contains("0644") && "\(error)".contains("chmod 600") && !"\(error)".contains("secret-pw")
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        #expect(try PostgresStoreConfiguration.load(dsnFile: path).password == "secret-pw")
        #expect(throws: PostgresConfigurationError.self) { try PostgresStoreConfiguration.load(dsnFile: "\(dir)/missing") }
    }

    @Test func onlyATLSModeThatChecksTheServerIsAccepted() throws {
        let checked = try PostgresStoreConfiguration.parse(dsn: "postgres://cox:pw@db.internal/pharos?sslmode=verify-full&sslrootcert=/etc/pharos/pg-ca.pem")
        #expect(checked.tls == .verifyFull && checked.rootCertificatePath == "/etc/pharos/pg-ca.pem")
        #expect(try PostgresStoreConfiguration.parse(dsn: "postgres://cox:pw@db.internal/pharos").tls == .verifyFull)
        #expect(try PostgresStoreConfiguration.parse(dsn: "postgres://cox:pw@127.0.0.1/pharos").tls == .disable)
        #expect(try PostgresStoreConfiguration.parse(dsn: "postgres://cox:pw@10.0.0.5/pharos?sslmode=disable").tls == .disable)
        for (dsn, words) in [("postgres://cox:pw@db.internal/pharos?sslmode=require", "does not check"),
                             ("postgres://cox:pw@10.0.0.5/pharos", "host name"),
                             ("postgres://cox:pw@db.internal/pharos?sslrootcert=ca.pem", "absolute"),
                             ("postgres://cox:pw@db.internal/pharos?password=x", "unknown parameter")] {
            #expect(throws: PostgresConfigurationError.self, "\(dsn)") { try PostgresStoreConfiguration.parse(dsn: dsn) }
            #expect(((try? PostgresStoreConfiguration.parse(dsn: dsn)) == nil))
            do { _ = try PostgresStoreConfiguration.parse(dsn: dsn) } catch { #expect("\(error)".contains(words), "\(error)") }
        }
    }

    /// verify-full over real TLS: the server's certificate from the trusted CA is accepted and
    /// the session is encrypted (pg_stat_ssl); one from another CA, as a man in the middle would
    /// present, is refused before the password is sent.
    @Test func theServerCertificateIsVerifiedAndAnotherCAIsRefused() throws {
        let cluster = try PostgresCluster.shared()
        var configuration = cluster.configuration(database: try cluster.createDatabase())
        configuration.host = "localhost"
        configuration.tls = .verifyFull
        configuration.rootCertificatePath = cluster.caPath
        let dir = "/tmp/cox-pgtls-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Store.open(postgres: configuration, stateDirectory: dir)
        defer { try? store.close() }
        #expect(try store.readNow { tx in try tx.sql.value(Bool.self, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") } == true)

        var forged = configuration
        forged.rootCertificatePath = cluster.otherCAPath
        #expect {
            try Store.open(postgres: forged, stateDirectory: dir)
        } throws: { error in
            let text = "\(error)"
            return text.lowercased().contains("certificate") && !text.contains(configuration.password)
        }
    }

    /// Every table and column SQLite's migrations end in exists on PostgreSQL with the same
    /// nullability, and nothing more: a migration added to one engine only fails here.
    @Test func thePostgresSchemaHasSQLitesTablesAndColumns() throws {
        let dir = "/tmp/cox-parity-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sqlite = try TestState.openStore(stateDirectory: "\(dir)/sqlite", engine: .sqlite)
        let postgres = try TestState.openStore(stateDirectory: "\(dir)/postgres", engine: .postgres)
        defer { try? postgres.close() }
        let sqliteColumns = try sqlite.readNow { tx in
            var columns: Set<String> = []
            let tables = try tx.sql.values(String.self, """
                SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'grdb_migrations'
                """)
            for table in tables {
                for row in try tx.sql.rows("PRAGMA table_info(\(table))") {
                    let notNull: Int = row["notnull"]
                    let primary: Int = row["pk"]
                    columns.insert("\(table).\(row["name"] as String) \(notNull == 1 || primary > 0 ? "NOT NULL" : "NULL")")
                }
            }
            return columns
        }
        let postgresColumns = try postgres.readNow { tx in
            Set(try tx.sql.rows("""
                SELECT table_name, column_name, is_nullable FROM information_schema.columns
                WHERE table_schema = 'public' AND table_name != 'pharos_migrations'
                """).map { row in
                    "\(row["table_name"] as String).\(row["column_name"] as String) \((row["is_nullable"] as String) == "YES" ? "NULL" : "NOT NULL")"
                })
        }
        #expect(sqliteColumns.count > 150)
        #expect(sqliteColumns.subtracting(postgresColumns).sorted() == [])
        #expect(postgresColumns.subtracting(sqliteColumns).sorted() == [])
    }
}
