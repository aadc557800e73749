import Foundation
import PharosRuntime
import PharosTestSupport
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
        #expect(try PostgresStoreConfiguration.parse(dsn: "postgres://cox:50%25off%2541@db/pharos").password == "50%off%41")
        // Only real loopback addresses get plain TCP by default, not names that look like them.
        #expect(try PostgresStoreConfiguration.parse(dsn: "postgres://cox:pw@127.db.example.com/pharos").tls == .verifyFull)
        #expect(try PostgresStoreConfiguration.parse(dsn: "postgres://cox:pw@localhost/pharos").tls == .disable)
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
        // Someone else's file, even 0600, could point the controller (and its CA keys) at their database.
        try FileManager.default.setAttributes([.ownerAccountID: 65_534], ofItemAtPath: path)
        #expect { try PostgresStoreConfiguration.load(dsnFile: path) } throws: { "\($0)".contains("uid 65534") }
        try FileManager.default.setAttributes([.ownerAccountID: 0], ofItemAtPath: path)
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/link.dsn", withDestinationPath: path)
        #expect { try PostgresStoreConfiguration.load(dsnFile: "\(dir)/link.dsn") } throws: { "\($0)".contains("symbolic link") }
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

    /// `cox init --enterprise --postgres-dsn-file`: the real binary writes a config naming the
    /// file (never the DSN) and creates the CA in PostgreSQL; a file others can read is refused
    /// before anything is written.
    @Test func coxInitPointsAControllerAtPostgres() throws {
        let cluster = try PostgresCluster.shared()
        let database = try cluster.createDatabase()
        let postgres = cluster.configuration(database: database)
        let dir = "/tmp/cox-pginit-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dsn = "postgres://\(postgres.user):\(postgres.password)@\(postgres.host):\(postgres.port)/\(database)\n"
        #expect(FileManager.default.createFile(atPath: "\(dir)/pg.dsn", contents: Data(dsn.utf8), attributes: [.posixPermissions: 0o644]))
        let cox = TestBinaries.path("cox", package: "coxswain")
        let refused = try Command.status([cox, "init", "--enterprise", "--postgres-dsn-file", "\(dir)/pg.dsn", "--config", "\(dir)/cox.yaml"])
        #expect(refused.status != 0 && refused.output.contains("chmod 600") && !refused.output.contains(postgres.password), "\(refused.output)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/cox.yaml"))

        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: "\(dir)/pg.dsn")
        let made = try Command.status([cox, "init", "--enterprise", "--postgres-dsn-file", "\(dir)/pg.dsn", "--config", "\(dir)/cox.yaml"])
        #expect(made.status == 0, "\(made.output)")
        #expect(made.output.contains("state: postgres://\(postgres.user)@127.0.0.1:\(postgres.port)/\(database)"), "\(made.output)")
        let yaml = try String(contentsOfFile: "\(dir)/cox.yaml", encoding: .utf8)
        #expect(yaml.contains("backend: postgres") && yaml.contains("dsn_file: \"\(dir)/pg.dsn\"") && !yaml.contains(postgres.password))
        #expect(try cluster.psql("SELECT count(*) FROM ca", database: database).trimmingCharacters(in: .whitespacesAndNewlines) == "3")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/state/app.db"))
    }

    /// Two controllers' stores on one database: of two edits made from the same version, at the
    /// same moment, through each, exactly one lands and the other is a stale write (409); 200
    /// audit rows appended concurrently through both make one chain that verifies.
    @Test func twoStoresOnOneDatabaseKeepVersionChecksAndOneAuditChain() async throws {
        let state = try TestState(engine: .postgres)
        let other = try Store.open(postgres: try #require(state.store.postgresConfiguration), stateDirectory: "\(state.dir)/other")
        defer { try? other.close() }
        let node = try await state.readyNode(name: "n1")
        for round in 0..<10 {
            let current = try await state.store.read { tx in try tx.node(node.id) }
            let results = await withTaskGroup(of: Result<NodeRecord, any Error>.self) { group in
                for (store, region) in [(state.store, "a\(round)"), (other, "b\(round)")] {
                    var edit = current
                    edit.region = region
                    let edited = edit
                    group.addTask {
                        do {
                            return .success(try await store.write { tx in try tx.update(edited, expectedVersion: current.version) })
                        } catch {
                            return .failure(error)
                        }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            let saved = results.compactMap { try? $0.get() }
            #expect(saved.count == 1, "round \(round): \(results)")
            #expect(results.contains { if case .failure(StoreError.staleWrite) = $0 { true } else { false } }, "round \(round)")
            #expect(try await other.read { tx in try tx.node(node.id) } == saved.first)
        }

        await withTaskGroup(of: Void.self) { group in
            for (index, store) in [state.store, other].enumerated() {
                for n in 0..<100 {
                    group.addTask {
                        _ = try? await store.write { tx in
                            try tx.appendAudit(AuditEntry(action: "test.concurrent", targetType: "test", targetID: "\(index)-\(n)"),
                                               by: AuditActor(name: "controller-\(index)", kind: .cli))
                        }
                    }
                }
            }
        }
        let chain = try await other.read { tx in try tx.auditChain() }
        #expect(chain.filter { $0.action == "test.concurrent" }.count == 200)
        #expect(AuditChain.verify(chain) == nil)
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
