import ArgumentParser
import Coxswain
import Foundation
import PharosRuntime

struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Write an encrypted backup of the controller (cox.yaml, state and keys) while it runs.",
        discussion: """
            The passphrase is read from stdin (asked twice on a terminal), at least \(ControllerBackup.minimumPassphraseLength) \
            characters; Argon2id + XChaCha20-Poly1305 as the .pharos password mode. The database is copied in one \
            read transaction: cox serve keeps running and the copy holds exactly what was committed when it began. \
            The backup holds the fleet's CA keys: keep it and its passphrase apart. Restore with cox restore.
            """)

    @Option(help: "The file to write (0600; never replaces an existing file).")
    var out: String
    @OptionGroup var options: ConfigOption

    func run() async throws {
        try await userFacing {
            guard let config = FileManager.default.contents(atPath: options.config) else {
                throw BackupError.missingConfig(path: options.config)
            }
            guard !FileManager.default.fileExists(atPath: out) else { throw BackupError.outputExists(path: out) }
            // Opening the controller would create a new one where there is none: refuse first.
            let database = Controller.databasePath(of: try CoxConfig.load(path: options.config), configPath: options.config)
            guard FileManager.default.fileExists(atPath: database) else { throw BackupError.noState(path: database) }
            let passphrase = try readNewPassphrase()
            // Created before `open` may switch to the state directory's owner, so the file is
            // the operator's wherever they write it.
            let fd = Glibc.open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw BackupError.io(path: out, reason: String(cString: strerror(errno))) }
            let output = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            // Interrupted (Ctrl-C, a TERM or HUP), the partial backup and the snapshot go.
            let snapshot = ControllerBackup.snapshotPath(besides: database)
            let cleanup = InterruptCleanup(output: fd, files: [out] + ControllerBackup.snapshotFiles(snapshot))
            let started = ContinuousClock.now
            let written: ControllerBackup.Written
            let controller: Controller
            do {
                controller = try options.open(pushing: false)
                written = try ControllerBackup.write(store: controller.store, caFingerprint: try controller.pki.authority.fingerprint,
                                                     configBytes: Array(config), passphrase: passphrase, to: output,
                                                     snapshotPath: snapshot)
                try output.synchronize()
                cleanup.cancel()  // whole from here on: a signal no longer removes it
            } catch {
                cleanup.cancel()
                _ = ftruncate(fd, 0)
                try? output.close()
                if unlink(out) != 0 { FileHandle.standardError.write(Data("the incomplete \(out) was emptied: delete it\n".utf8)) }
                throw error
            }
            try? output.close()
            do {
                try await controller.store.write { tx in
                    try tx.appendAudit(AuditEntry(action: "controller.backup", targetType: "controller", targetID: "",
                                                  detail: "{\"bytes\":\(written.bytes),\"created_at_ms\":\(written.header.createdAtMs)}"),
                                       by: .cliUser)
                }
            } catch {
                // The backup is whole; only its audit row is missing.
                FileHandle.standardError.write(Data("warning: \(out) is complete, but the audit row for it was not written: \(error)\n".utf8))
            }
            let seconds = (ContinuousClock.now - started).components
            print("wrote \(out): \(written.bytes) bytes (database \(written.databaseBytes) bytes) in "
                  + String(format: "%.1f s", Double(seconds.seconds) + Double(seconds.attoseconds) / 1e18))
            print("CA fingerprint: \(written.header.caFingerprint)")
            print("it holds the fleet's CA keys: keep it and its passphrase apart; restore with cox restore \(out)")
        }
    }

    private func readNewPassphrase() throws -> [UInt8] {
        let minimum = ControllerBackup.minimumPassphraseLength
        guard let first = SecretInput.readLine(prompt: "backup passphrase (at least \(minimum) characters): "),
              ControllerBackup.isLongEnough(first) else { throw BackupError.passphraseTooShort(minimum: minimum) }
        if SecretInput.isTerminal {
            guard SecretInput.readLine(prompt: "again: ") == first else { throw BackupError.passphrasesDiffer }
        }
        return first
    }
}

struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a controller from a cox backup into an empty state directory on this machine.",
        discussion: """
            The passphrase is read from stdin. Every chunk, the database's integrity, its schema and the config are \
            checked in a private directory before anything is written; a wrong passphrase or an altered file changes \
            nothing. The state goes to --state-dir, else to the state_dir of the config already at --config (a \
            package's), else to ./state beside it; the backed-up cox.yaml is written to --config with that state_dir \
            (a config already there is kept as cox.yaml.pre-restore-<time>). Stop the old controller for good before \
            starting this one: two controllers would drive the same nodes.
            """)

    @Argument(help: "The file cox backup wrote.")
    var file: String
    @Option(help: "Where the database goes (an empty or new directory).")
    var stateDir: String?
    @OptionGroup var options: ConfigOption

    func run() async throws {
        try await userFacing {
            let plan = try RestorePlan(backup: file, configPath: options.config, stateDir: stateDir)
            let created = Date(timeIntervalSince1970: Double(plan.header.createdAtMs) / 1000)
            print("backup of \(plan.header.caFingerprint) made \(created.formatted(.iso8601)) by cox \(plan.header.coxVersion)")
            print("restoring into \(plan.stateDir), config \(plan.configPath)")
            guard let passphrase = SecretInput.readLine(prompt: "backup passphrase: ") else {
                throw CommandFailure(description: "give the backup's passphrase on stdin")
            }
            let restored = try plan.run(passphrase: passphrase)
            print("restored the controller of CA \(restored.caFingerprint)")
            print("restored: \(restored.nodes) nodes, \(restored.relays) relays, \(restored.users) users, \(restored.devices) devices")
            if let previous = restored.previousConfig { print("the config that was there is kept as \(previous)") }
            for warning in restored.warnings { print("warning: \(warning)") }
            print("start the controller (cox serve, or systemctl start pharos-coxswain) once the old one is stopped for good")
        }
    }
}

/// Empties `output`, removes `files` and exits with 128+signal on SIGINT, SIGTERM or SIGHUP
/// until cancelled. The handlers run on a dispatch queue, so a blocking copy cannot hold them
/// off; a signal the process inherited as ignored (nohup) stays ignored. The file is emptied
/// first: after `open` switches to the state's owner, unlinking it may not be allowed.
final class InterruptCleanup {
    private var sources: [any DispatchSourceSignal] = []
    private var previous: [(Int32, __sighandler_t?)] = []

    init(output fd: Int32, files: [String]) {
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
            let old = signal(signalNumber, SIG_IGN)
            previous.append((signalNumber, old))
            if unsafeBitCast(old, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) { continue }
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                _ = ftruncate(fd, 0)
                let removed = files.map { unlink($0) == 0 || errno == ENOENT }.allSatisfy { $0 }
                let note = removed ? "interrupted: the partial backup was removed\n"
                    : "interrupted: the partial backup was emptied but not removed: delete \(files[0])\n"
                FileHandle.standardError.write(Data(note.utf8))
                _exit(128 + signalNumber)
            }
            source.resume()
            sources.append(source)
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
        sources = []
        for (signalNumber, handler) in previous { signal(signalNumber, handler) }
        previous = []
    }
}
