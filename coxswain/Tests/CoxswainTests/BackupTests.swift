import Foundation
import PharosSpec
import Testing
@testable import Coxswain

/// `cox backup` / `cox restore` on real SQLite files: what a restore brings back, and what
/// it refuses (a wrong passphrase, any altered, cut or reordered byte, a hostile header, a
/// newer schema, an occupied target) with the target left exactly as it was.
@Suite struct BackupTests {
    static let passphrase = Array("correct horse battery staple".utf8)

    /// A controller as `cox init` leaves it plus Alice, its config carrying an operator's comment.
    final class BackupSource: @unchecked Sendable {
        let dir = "/tmp/cox-backup-\(UUID().uuidString.prefix(8))"
        let controller: Controller
        var configPath: String { "\(dir)/cox.yaml" }

        init() async throws {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try CoxConfig.writeInitial(CoxConfig(), to: "\(dir)/cox.yaml", force: false)
            let text = try String(contentsOfFile: "\(dir)/cox.yaml", encoding: .utf8)
            try (text + "# kept by the operator: the relay is behind the office NAT\n").write(toFile: "\(dir)/cox.yaml", atomically: true, encoding: .utf8)
            controller = try Controller.open(configPath: "\(dir)/cox.yaml")
            _ = try controller.store.writeNow { tx in
                try tx.appendAudit(AuditEntry(action: "controller.init", targetType: "controller", targetID: "", detail: "{}"), by: .cliUser)
            }
            _ = try await controller.service.addUser(name: "Alice", email: "alice@example.org", by: .cliUser)
        }

        deinit { try? FileManager.default.removeItem(atPath: dir) }

        /// Writes a backup to `<dir>/<name>` and returns its path.
        func backup(_ name: String = "fleet.backup", passphrase: [UInt8] = BackupTests.passphrase,
                    chunkSize: Int = ControllerBackup.maximumChunk, config: [UInt8]? = nil, caFingerprint: String? = nil) throws -> String {
            let path = "\(dir)/\(name)"
            #expect(FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]))
            let out = try #require(FileHandle(forWritingAtPath: path))
            defer { try? out.close() }
            _ = try ControllerBackup.write(store: controller.store, caFingerprint: try caFingerprint ?? controller.pki.authority.fingerprint,
                                           configBytes: try config ?? Array(try Data(contentsOf: URL(fileURLWithPath: configPath))),
                                           passphrase: passphrase, to: out, chunkSize: chunkSize)
            return path
        }
    }

    /// A fresh machine's directory to restore into.
    final class RestoreTarget: @unchecked Sendable {
        let dir = "/tmp/cox-restore-\(UUID().uuidString.prefix(8))"
        var configPath: String { "\(dir)/etc/cox.yaml" }

        init() throws { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        deinit { try? FileManager.default.removeItem(atPath: dir) }

        /// Every path under the directory with its mode and contents: "nothing written" is this unchanged.
        func listing() throws -> [String] {
            let fm = FileManager.default
            return (fm.subpaths(atPath: dir) ?? []).sorted().map { path in
                let attributes = (try? fm.attributesOfItem(atPath: "\(dir)/\(path)")) ?? [:]
                let contents = fm.contents(atPath: "\(dir)/\(path)")?.base64EncodedString() ?? "-"
                return "\(path) \(attributes[.posixPermissions] ?? "-") \(contents)"
            }
        }

        /// A package's default config at the target, naming its own state directory.
        func packaged() throws -> CoxConfig {
            try FileManager.default.createDirectory(atPath: "\(dir)/etc", withIntermediateDirectories: true)
            var packaged = CoxConfig()
            packaged.stateDir = "\(dir)/var/lib/coxswain"
            try CoxConfig.writeInitial(packaged, to: configPath, force: false)
            try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: configPath)
            try FileManager.default.createDirectory(atPath: packaged.stateDir, withIntermediateDirectories: true)
            return packaged
        }

        func restore(_ backup: String, passphrase: [UInt8] = BackupTests.passphrase, stateDir: String? = nil) throws -> RestorePlan.Restored {
            try RestorePlan(backup: backup, configPath: configPath, stateDir: stateDir, environment: [:]).run(passphrase: passphrase)
        }
    }

    @Test func aRestoredControllerHoldsTheSameKeysDataAndConfig() async throws {
        let source = try await BackupSource()
        let backup = try source.backup()
        let mode = try FileManager.default.attributesOfItem(atPath: backup)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let target = try RestoreTarget()
        let restored = try target.restore(backup)
        #expect(restored.users == 1)
        #expect(restored.previousConfig == nil)
        #expect(restored.caFingerprint == (try source.controller.pki.authority.fingerprint))

        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(target.dir)/etc/state") == ["app.db"])  // no WAL, no work directory left
        let again = try Controller.open(configPath: target.configPath)
        #expect(again.store.path == "\(target.dir)/etc/state/app.db")
        #expect(try again.pki.authority.fingerprint == source.controller.pki.authority.fingerprint)
        let keys = { (store: Store) in
            try store.readNow { tx in (try tx.profileSigningKey(), try tx.controllerCertificate()?.keyPEM, try tx.authorities().map(\.keyPEM)) }
        }
        let (signing, controllerKey, caKeys) = try keys(again.store)
        let (signing0, controllerKey0, caKeys0) = try keys(source.controller.store)
        #expect(signing == signing0 && controllerKey == controllerKey0 && caKeys == caKeys0)
        #expect(try again.store.readNow { tx in try tx.users().map(\.email) } == ["alice@example.org"])
        let config = try String(contentsOfFile: target.configPath, encoding: .utf8)
        #expect(config.contains("# kept by the operator: the relay is behind the office NAT"))
        #expect(config.contains("state_dir: \"\(target.dir)/etc/state\""))
        let verification = try await again.service.verifyAudit()
        let actions = try again.store.readNow { tx in try tx.auditChain().map(\.action) }
        #expect(verification.intact && actions == ["controller.init", "user.add", "controller.restore"], "\(actions)")
        #expect(try again.store.readNow { tx in try tx.auditChain().last?.action } == "controller.restore")
    }

    @Test func theSnapshotHoldsWritesStillInTheWriteAheadLog() async throws {
        let source = try await BackupSource()
        _ = try await source.controller.service.addUser(name: "Bob", email: "bob@example.org", by: .cliUser)
        // app.db alone (no WAL) does not hold Bob yet: only the WAL does.
        let bare = "\(source.dir)/bare.db"
        try FileManager.default.copyItem(atPath: source.controller.store.path, toPath: bare)
        let inFileOnly = try Store.open(path: bare).readNow { tx in try tx.users().compactMap(\.email) }
        #expect(!inFileOnly.contains("bob@example.org"), "the test needs Bob's row still in the WAL")
        let target = try RestoreTarget()
        _ = try target.restore(try source.backup())
        let restored = try Controller.open(configPath: target.configPath)
        #expect(try restored.store.readNow { tx in try tx.users().compactMap(\.email).sorted() } == ["alice@example.org", "bob@example.org"])
    }

    /// Chunks that divide the database exactly, and an empty cox.yaml (the defaults): the
    /// final tag still lands on the last chunk, and the config gets a state_dir of its own.
    @Test func exactChunksAndAnEmptyConfigRoundTrip() async throws {
        let source = try await BackupSource()
        let backup = try source.backup(chunkSize: 4096, config: [])
        let target = try RestoreTarget()
        #expect(try target.restore(backup).users == 1)
        #expect(try String(contentsOfFile: target.configPath, encoding: .utf8).hasPrefix("state_dir: "))
        #expect(try Controller.open(configPath: target.configPath).store.path == "\(target.dir)/etc/state/app.db")
    }

    /// A header naming another CA than the database holds (a writer that lied, or a bug):
    /// the restored database's own CA decides, and this one is refused.
    @Test func aDatabaseWhoseCAIsNotTheHeadersIsRefused() async throws {
        let source = try await BackupSource()
        let other = String(repeating: "ab", count: 32)
        let backup = try source.backup(caFingerprint: other)
        let target = try RestoreTarget()
        let before = try target.listing()
        #expect {
            try target.restore(backup)
        } throws: { error in
            guard case BackupError.damaged(_, let reason) = error else { return false }
            return reason.contains("not the \(other) its header names")
        }
        #expect(try target.listing() == before)
    }

    @Test func aWrongPassphraseWritesNothing() async throws {
        let source = try await BackupSource()
        let backup = try source.backup()
        let target = try RestoreTarget()
        let before = try target.listing()
        #expect(throws: BackupError.wrongPassphrase(path: backup)) {
            try target.restore(backup, passphrase: Array("correct horse battery stapler".utf8))
        }
        #expect(try target.listing() == before)
    }

    /// The backup split into its header lines and its length-prefixed chunks.
    static func parts(_ bytes: [UInt8]) -> (header: [UInt8], chunks: [[UInt8]]) {
        let second = bytes.indices.filter { bytes[$0] == 0x0A }[1]
        var chunks: [[UInt8]] = [], offset = second + 1
        while offset < bytes.count {
            let length = Int(bytes[offset..<offset + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            chunks.append(Array(bytes[offset..<offset + 4 + length]))
            offset += 4 + length
        }
        return (Array(bytes[0...second]), chunks)
    }

    /// Writes each case's bytes as the backup and restores it into a fresh target: refused
    /// with the expected error, and the target unchanged.
    static func expectRefused(_ cases: [(String, [UInt8], BackupError)], writtenTo backup: String, packaged: Bool = false) throws {
        for (name, bytes, expected) in cases {
            try Data(bytes).write(to: URL(fileURLWithPath: backup))
            let target = try RestoreTarget()
            if packaged { _ = try target.packaged() }
            let before = try target.listing()
            #expect(throws: expected, "\(name)") { try target.restore(backup) }
            #expect(try target.listing() == before, "\(name) left something behind")
        }
    }

    @Test func everyAlterationIsRefusedAndWritesNothing() async throws {
        let source = try await BackupSource()
        let backup = try source.backup(chunkSize: 64 << 10)
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: backup)))
        let (header, chunks) = Self.parts(original)
        #expect(chunks.count > 4)
        let headerText = String(decoding: header, as: UTF8.self)
        func edited(_ from: String, _ to: String) -> [UInt8] { Array(headerText.replacingOccurrences(of: from, with: to).utf8) + chunks.joined() }
        let created = headerText.split(separator: "\"created_at_ms\":")[1].prefix(13)
        let salt = headerText.split(separator: "\"salt\":\"")[1].prefix(4)

        var flipped = original
        flipped[header.count + chunks[0..<3].map(\.count).reduce(0, +) + 100] ^= 0x01
        let cases: [(String, [UInt8], BackupError)] = [
            ("a flipped byte in the database", flipped, .damaged(path: backup, reason: "chunk 4 does not authenticate")),
            ("another creation time", edited(String(created), String(Int64(created)! - 1)), .damaged(path: backup, reason: "chunk 1 does not authenticate")),
            ("another salt", edited(String(salt), salt == "AAAA" ? "BBBB" : "AAAA"), .wrongPassphrase(path: backup)),
            ("the last chunk dropped", header + chunks.dropLast().joined(), .truncated(path: backup)),
            ("cut inside a chunk", Array(original.dropLast(100)), .truncated(path: backup)),
            ("two chunks swapped", header + chunks[0..<2].joined() + chunks[3] + chunks[2] + chunks[4...].joined(),
             .damaged(path: backup, reason: "chunk 3 does not authenticate")),
            ("a chunk repeated", header + chunks[0..<3].joined() + chunks[2] + chunks[3...].joined(),
             .damaged(path: backup, reason: "chunk 4 does not authenticate")),
            ("a byte appended", original + [0], .damaged(path: backup, reason: "bytes follow its last chunk")),
        ]
        try Self.expectRefused(cases, writtenTo: backup)
        try Self.expectRefused(cases, writtenTo: backup, packaged: true)
        try Data(original).write(to: URL(fileURLWithPath: backup))
        #expect(try RestoreTarget().restore(backup).users == 1)
    }

    @Test func hostileHeadersAreRefusedBeforeAnyKeyIsDerived() async throws {
        let source = try await BackupSource()
        let backup = try source.backup()
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: backup)))
        let (header, chunks) = Self.parts(original)
        let text = String(decoding: header, as: UTF8.self)
        let cases: [(String, [UInt8], BackupError)] = [
            ("4 GiB of Argon2id memory", Array(text.replacingOccurrences(of: "\"m\":65536", with: "\"m\":4194304").utf8) + chunks.joined(),
             .kdfRejected(path: backup, reason: PharosFormatError.kdfRejected(reason: "m=4194304 KiB is outside 32...1048576").description)),
            ("a later format", Array(text.replacingOccurrences(of: "{\"v\":1,", with: "{\"v\":2,").utf8) + chunks.joined(),
             .unsupportedVersion(path: backup, version: "2")),
            ("512 MiB of Argon2id memory", Array(text.replacingOccurrences(of: "\"m\":65536", with: "\"m\":524288").utf8) + chunks.joined(),
             .kdfRejected(path: backup, reason: "t=1 m=524288 KiB p=4 exceeds t=8 m=262144 KiB p=8")),
            ("a later magic line", Array("PHAROS-COX-BACKUP 2\n{}\n".utf8), .unsupportedVersion(path: backup, version: "2")),
            ("a terminal escape as fingerprint", Array(text.replacingOccurrences(
                of: String(text.split(separator: "\"ca_fingerprint\":\"")[1].prefix(64)),
                with: #"\u001b[2J"# + String(repeating: "0", count: 60)).utf8) + chunks.joined(),
             .notABackup(path: backup, reason: "its ca_fingerprint is not a SHA-256 in hex")),
            ("a .pharos file", Array("{\"v\":1,\"enc\":\"password\"}".utf8),
             .notABackup(path: backup, reason: "it does not start with PHAROS-COX-BACKUP 1")),
            ("no end to its header", Array("PHAROS-COX-BACKUP 1\n".utf8) + [UInt8](repeating: 0x41, count: 8192),
             .notABackup(path: backup, reason: "its header line is missing or longer than 4096 bytes")),
        ]
        try Self.expectRefused(cases, writtenTo: backup)
    }

    @Test func aBackupFromANewerSchemaIsRefused() async throws {
        let source = try await BackupSource()
        try source.controller.store.executeRawForTesting("INSERT INTO grdb_migrations (identifier) VALUES ('9999_future')")
        let backup = try source.backup()
        let target = try RestoreTarget()
        let before = try target.listing()
        #expect(throws: BackupError.newerSchema(path: backup, migrations: ["9999_future"])) { try target.restore(backup) }
        #expect(try target.listing() == before)
    }

    @Test func aConfigThisVersionCannotLoadIsRefused() async throws {
        let source = try await BackupSource()
        let text = try String(contentsOfFile: source.configPath, encoding: .utf8)
        try text.replacingOccurrences(of: "vpn_subnet: 10.86.0.0/16", with: "vpn_subnet: 10.86.0.0/31")
            .write(toFile: source.configPath, atomically: true, encoding: .utf8)
        let backup = try source.backup()
        let target = try RestoreTarget()
        let before = try target.listing()
        #expect {
            try target.restore(backup)
        } throws: { error in
            guard case BackupError.badConfig(let reason) = error else { return false }
            return reason.contains("fleet.vpn_subnet")
        }
        #expect(try target.listing() == before)
    }

    @Test func anOccupiedTargetIsRefusedBeforeThePassphraseIsAsked() async throws {
        let source = try await BackupSource()
        let backup = try source.backup()
        #expect(throws: BackupError.stateExists(path: source.controller.store.path)) {
            _ = try RestorePlan(backup: backup, configPath: source.configPath, stateDir: nil, environment: [:])
        }
    }

    /// A package's machine: its default cox.yaml (0640) names the state directory; the restore
    /// uses it, keeps that file aside and gives the new one the same mode.
    @Test func aPackagedConfigNamesTheStateAndIsKeptAside() async throws {
        let source = try await BackupSource()
        let backup = try source.backup()
        let target = try RestoreTarget()
        let packaged = try target.packaged()
        let plan = try RestorePlan(backup: backup, configPath: target.configPath, stateDir: nil, environment: [:])
        #expect(plan.stateDir == "\(target.dir)/var/lib/coxswain")
        let restored = try plan.run(passphrase: Self.passphrase)
        let aside = try #require(restored.previousConfig)
        #expect(try String(contentsOfFile: aside, encoding: .utf8) == packaged.yaml)
        #expect(try FileManager.default.attributesOfItem(atPath: target.configPath)[.posixPermissions] as? Int == 0o640)
        #expect(try Controller.open(configPath: target.configPath).store.path == "\(target.dir)/var/lib/coxswain/app.db")
    }

    @Test func aShortPassphraseIsRefused() async throws {
        let source = try await BackupSource()
        #expect(throws: BackupError.passphraseTooShort(minimum: 12)) { _ = try source.backup(passphrase: Array("short".utf8)) }
    }
}

