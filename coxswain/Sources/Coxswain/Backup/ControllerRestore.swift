import Foundation
import PharosRuntime
import PharosSpec

/// `cox restore FILE`: a controller from a backup, on this machine, into an empty state
/// directory. Everything is decrypted and checked in a private directory inside the target
/// first (every chunk, the final tag, SQLite's integrity check, the schema, the CAs, the
/// config); only then is the config put in place (the one there kept as
/// `cox.yaml.pre-restore-…`) and the database moved in. A refusal leaves the target as it was.
public struct RestorePlan: Sendable {
    public let backupPath: String
    public let header: ControllerBackup.Header
    public let configPath: String
    public let stateDir: String

    /// Where the state goes: `stateDir` when given; else the `state_dir` of the config
    /// already at `configPath` (a package's default config); else `state` beside it.
    public init(backup: String, configPath: String, stateDir: String?,
                environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        backupPath = backup
        header = try ControllerBackup.readHeader(path: backup)
        let config = URL(fileURLWithPath: configPath).standardizedFileURL
        self.configPath = config.path
        let base = config.deletingLastPathComponent()
        if let stateDir {
            self.stateDir = URL(fileURLWithPath: stateDir).standardizedFileURL.path
        } else if FileManager.default.fileExists(atPath: config.path) {
            let existing = try CoxConfig.load(path: config.path, environment: environment)
            self.stateDir = URL(fileURLWithPath: Controller.databasePath(of: existing, configPath: config.path)).deletingLastPathComponent().path
        } else {
            self.stateDir = base.appendingPathComponent("state").standardizedFileURL.path
        }
        if FileManager.default.fileExists(atPath: databasePath) { throw BackupError.stateExists(path: databasePath) }
    }

    var databasePath: String { URL(fileURLWithPath: stateDir).appendingPathComponent(ControllerBackup.databaseName).path }

    public struct Restored: Sendable {
        public var caFingerprint: String
        public var nodes: Int
        public var relays: Int
        public var users: Int
        public var devices: Int
        /// The config that was at the target before, moved aside; nil when there was none.
        public var previousConfig: String?
        /// Things on the old machine this one lacks (a GeoIP database the config names).
        public var warnings: [String]
    }

    /// Decrypts and checks everything in a private directory of the state directory (as
    /// that directory's owner when run as root: nothing there is touched as root), links the
    /// database in (never over one), then writes the config; a failure after the link takes
    /// the database out again.
    public func run(passphrase: [UInt8], by actor: AuditActor = .cliUser) throws -> Restored {
        let fm = FileManager.default
        // The outermost directory this run creates: removed again when it refuses.
        var created: String?
        var ancestor = URL(fileURLWithPath: stateDir)
        while !fm.fileExists(atPath: ancestor.path), ancestor.path != "/" {
            created = ancestor.path
            ancestor.deleteLastPathComponent()
        }
        func undo() { if let created { try? fm.removeItem(atPath: created) } }
        do {
            try fm.createDirectory(atPath: stateDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            undo()
            throw BackupError.io(path: stateDir, reason: "cannot create the state directory: \(error.localizedDescription)")
        }
        var restored: Restored, config: [UInt8]
        do {
            // Opened as the invoker: the state's owner may not be able to read the operator's file.
            guard let file = FileHandle(forReadingAtPath: backupPath) else { throw BackupError.io(path: backupPath, reason: "cannot be read") }
            defer { try? file.close() }
            (restored, config) = try Privileges.asEffectiveOwner(of: stateDir) {
                try decryptCheckAndLink(file, passphrase: passphrase, by: actor)
            }
        } catch {
            undo()
            throw error
        }
        do {
            restored.previousConfig = try place(config: config)
        } catch {
            _ = try? Privileges.asEffectiveOwner(of: stateDir) { unlink(databasePath) }
            undo()
            throw error
        }
        AtomicFile.syncDirectory(stateDir)
        return restored
    }

    private func decryptCheckAndLink(_ file: FileHandle, passphrase: [UInt8], by actor: AuditActor) throws -> (Restored, [UInt8]) {
        let fm = FileManager.default
        let work = URL(fileURLWithPath: stateDir).appendingPathComponent(".restore-\(UUID().uuidString)").path
        do {
            try fm.createDirectory(atPath: work, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        } catch {
            throw BackupError.io(path: stateDir, reason: "cannot create a private directory in it: \(error.localizedDescription)")
        }
        defer { try? fm.removeItem(atPath: work) }
        let header = try ControllerBackup.extract(file, path: backupPath, passphrase: passphrase, into: work)
        guard header == self.header else {
            throw BackupError.damaged(path: backupPath, reason: "the file changed after cox restore read its header")
        }
        let database = URL(fileURLWithPath: work).appendingPathComponent(ControllerBackup.databaseName).path
        try Store.checkRestorable(copy: database, backup: backupPath)
        let config = try restoredConfig(URL(fileURLWithPath: work).appendingPathComponent(ControllerBackup.configName).path)
        var restored = try Self.finish(database: database, header: header, backup: backupPath, by: actor)
        restored.warnings = config.warnings
        // link(2) never replaces: a database that appeared meanwhile (a controller started by
        // systemd, say) is refused, not overwritten.
        guard link(database, databasePath) == 0 else {
            if errno == EEXIST { throw BackupError.stateExists(path: databasePath) }
            throw BackupError.io(path: databasePath, reason: "cannot put the restored database in place: \(String(cString: strerror(errno)))")
        }
        return (restored, config.bytes)
    }

    /// The backed-up cox.yaml with `state_dir` pointing here (every other line, comments too,
    /// as the operator left them), proven to load before anything is written.
    private func restoredConfig(_ path: String) throws -> (bytes: [UInt8], warnings: [String]) {
        guard let data = fm.contents(atPath: path) else { throw BackupError.io(path: path, reason: "cannot be read") }
        var lines = String(decoding: data, as: UTF8.self).components(separatedBy: "\n")
        let quoted = String(decoding: JSONValue.string(stateDir).compactBytes(), as: UTF8.self)
        let line = "state_dir: \(quoted)   # set by cox restore"
        if let index = lines.firstIndex(where: { $0.hasPrefix("state_dir:") }) {
            lines[index] = line
        } else {
            // At the end: a leading `---` or `%YAML` directive stays first.
            if lines.last == "" { lines.removeLast() }
            lines.append(line)
            lines.append("")
        }
        let bytes = Array(lines.joined(separator: "\n").utf8)
        let check = path + ".restored"
        do { try AtomicFile.write(bytes, to: check) } catch { throw BackupError.io(path: check, reason: "\(error)") }
        let loaded: CoxConfig
        do { loaded = try CoxConfig.load(path: check, environment: [:]) } catch { throw BackupError.badConfig(reason: "\(error)") }
        guard URL(fileURLWithPath: loaded.databasePath(relativeTo: configDirectory)).deletingLastPathComponent().path == stateDir else {
            throw BackupError.badConfig(reason: "its state_dir does not resolve to \(stateDir)")
        }
        var warnings: [String] = []
        if !loaded.geoipDB.isEmpty {
            let geoip = loaded.geoipDB.hasPrefix("/") ? loaded.geoipDB
                : URL(fileURLWithPath: configDirectory).appendingPathComponent(loaded.geoipDB).standardizedFileURL.path
            if !fm.fileExists(atPath: geoip) {
                warnings.append("the config names the GeoIP database \(geoip), which is not on this machine (a backup does not hold it): copy it there or run cox geoip update")
            }
        }
        return (bytes, warnings)
    }

    /// Migrates the checked copy to this build's schema and records the restore in its audit
    /// chain, before it becomes the state.
    private static func finish(database: String, header: ControllerBackup.Header, backup: String,
                               by actor: AuditActor) throws -> Restored {
        let store = try Store.open(path: database)
        let fingerprint: String
        do { fingerprint = try FleetPKI.loadOrCreate(in: store).authority.fingerprint } catch {
            try? store.close()
            throw BackupError.damaged(path: backup, reason: "its certificate authority does not load: \(error)")
        }
        guard fingerprint == header.caFingerprint else {
            try? store.close()
            throw BackupError.damaged(path: backup, reason: "its database holds the CA \(fingerprint), not the \(header.caFingerprint) its header names")
        }
        let detail = JSONValue.object([
            JSONMember("backup_created_at_ms", .integer(header.createdAtMs)),
            JSONMember("backup_cox", .string(header.coxVersion)),
            JSONMember("file", .string(URL(fileURLWithPath: backup).lastPathComponent)),
        ]).compactBytes()
        let restored = try store.writeNow { tx in
            _ = try tx.appendAudit(AuditEntry(action: "controller.restore", targetType: "controller", targetID: "",
                                              detail: String(decoding: detail, as: UTF8.self)), by: actor)
            return Restored(caFingerprint: fingerprint, nodes: try tx.count(of: "nodes"),
                            relays: try tx.count(of: "relays"), users: try tx.count(of: "users"),
                            devices: try tx.count(of: "devices"), previousConfig: nil, warnings: [])
        }
        try store.close()
        return restored
    }

    /// Writes the config; one already there is renamed aside first and lends its mode and owner.
    private func place(config bytes: [UInt8]) throws -> String? {
        var mode: mode_t = 0o600
        var owner: (uid_t, gid_t)?
        var previous: String?
        var info = stat()
        if stat(configPath, &info) == 0 {
            mode = info.st_mode & 0o777
            owner = (info.st_uid, info.st_gid)
            let stamp = ISO8601DateFormatter.string(from: Date(), timeZone: .gmt, formatOptions: [.withYear, .withMonth, .withDay, .withTime])
            var aside = configPath + ".pre-restore-" + stamp
            var attempt = 1
            while fm.fileExists(atPath: aside) {
                attempt += 1
                aside = configPath + ".pre-restore-" + stamp + "-\(attempt)"
            }
            guard rename(configPath, aside) == 0 else {
                throw BackupError.io(path: configPath, reason: "cannot move the current config aside: \(String(cString: strerror(errno)))")
            }
            previous = aside
        } else {
            try? fm.createDirectory(atPath: configDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        do { try AtomicFile.write(bytes, to: configPath, mode: mode) } catch {
            if let previous { _ = rename(previous, configPath) }
            throw BackupError.io(path: configPath, reason: "\(error)")
        }
        if let owner, geteuid() == 0 { _ = chown(configPath, owner.0, owner.1) }
        return previous
    }

    private var fm: FileManager { FileManager.default }
    private var configDirectory: String { URL(fileURLWithPath: configPath).deletingLastPathComponent().path }
}
