import Foundation
import PharosSpec
import PharosTestSupport
import Testing
@testable import CoxCLI
import Coxswain

@Suite struct CoxCommandTests {
    @Test func versionNamesTheComponentAndTheWireContract() {
        #expect(CoxswainVersion.line == "cox \(CoxswainVersion.component) (protocol-spec \(PharosSpec.version))")
    }

    @Test func versionIsASubcommand() throws {
        #expect(try CoxCommand.parseAsRoot(["version"]) is VersionCommand)
    }

    @Test func unknownSubcommandsAreRefused() {
        #expect(throws: (any Error).self) { _ = try CoxCommand.parseAsRoot(["frobnicate"]) }
    }
}

/// The `cox` binary as an operator runs it, on a real state directory.
@Suite struct CoxBinaryTests {
    let dir = "/tmp/cox-cli-\(UUID().uuidString.prefix(8))"

    static let binary = TestBinaries.path("cox", package: "coxswain")

    @discardableResult
    func cox(_ arguments: [String], config: String? = nil, input: String? = nil) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = arguments + ["--config", config ?? "\(dir)/cox.yaml"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        let stdin = Pipe()
        p.standardInput = stdin
        try p.run()
        try stdin.fileHandleForWriting.write(contentsOf: Data((input ?? "").utf8))
        try stdin.fileHandleForWriting.close()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, output)
    }

    /// The packaged controller's state belongs to its daemon user; `sudo cox …` must not leave
    /// a root-owned file there (SQLite's WAL, say) and must still audit the operator.
    @Test(.enabled(if: geteuid() == 0, "needs root to run cox as root against another user's state"))
    func coxRunAsRootWritesTheStateAsItsOwnerAndAuditsTheOperator() throws {
        try FileManager.default.createDirectory(atPath: "\(dir)/state", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "state_dir: ./state\nui:\n  listen: \"\"\n".write(toFile: "\(dir)/cox.yaml", atomically: true, encoding: .utf8)
        // As the package lays it out: the config readable by the daemon's group only.
        let nobody = getpwnam("nobody")!.pointee
        let (uid, gid) = (nobody.pw_uid, nobody.pw_gid)
        #expect(chown("\(dir)/state", uid, gid) == 0)
        #expect(chown(dir, 0, gid) == 0 && chmod(dir, 0o750) == 0)
        #expect(chown("\(dir)/cox.yaml", 0, gid) == 0 && chmod("\(dir)/cox.yaml", 0o640) == 0)
        let added = try cox(["users", "add", "Carol", "--email", "carol@example.com"])
        #expect(added.status == 0, "\(added.output)")
        let files = try FileManager.default.contentsOfDirectory(atPath: "\(dir)/state")
        #expect(files.contains("app.db"))
        for file in files {
            var info = stat()
            #expect(stat("\(dir)/state/\(file)", &info) == 0)
            #expect(info.st_uid == uid, "\(file) belongs to uid \(info.st_uid), not the state directory's owner")
        }
        let audit = try cox(["audit", "--action", "user.add"])
        let operatorName = ProcessInfo.processInfo.environment["SUDO_USER"].flatMap { $0.isEmpty ? nil : $0 } ?? "root"
        #expect(audit.output.contains("\(operatorName) (cli)"), "\(audit.output)")
        // A backup is the operator's file even though the state is read as its owner.
        let backup = try cox(["backup", "--out", "\(dir)/fleet.backup"], input: "a passphrase long enough\n")
        #expect(backup.status == 0, "\(backup.output)")
        var info = stat()
        #expect(stat("\(dir)/fleet.backup", &info) == 0 && info.st_uid == 0 && info.st_mode & 0o777 == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/state").allSatisfy { !$0.hasPrefix(".backup-") })

        // Restored as root onto a packaged layout: the state directory belongs to the daemon
        // user, the config to root and the daemon's group. Nothing in the state ends up root's.
        let target = "\(dir)/restored"
        try FileManager.default.createDirectory(atPath: "\(target)/state", withIntermediateDirectories: true)
        #expect(chown("\(target)/state", uid, gid) == 0 && chmod("\(target)/state", 0o700) == 0)
        try "state_dir: ./state\nui:\n  listen: \"\"\n".write(toFile: "\(target)/cox.yaml", atomically: true, encoding: .utf8)
        #expect(chown("\(target)/cox.yaml", 0, gid) == 0 && chmod("\(target)/cox.yaml", 0o640) == 0)
        let restored = try cox(["restore", "\(dir)/fleet.backup"], config: "\(target)/cox.yaml", input: "a passphrase long enough\n")
        #expect(restored.status == 0, "\(restored.output)")
        for file in try FileManager.default.contentsOfDirectory(atPath: "\(target)/state") {
            var info = stat()
            #expect(stat("\(target)/state/\(file)", &info) == 0)
            #expect(info.st_uid == uid, "restored \(file) belongs to uid \(info.st_uid), not the state directory's owner")
        }
        var config = stat()
        #expect(stat("\(target)/cox.yaml", &config) == 0 && config.st_uid == 0 && config.st_gid == gid && config.st_mode & 0o777 == 0o640)
        #expect(try cox(["users", "list"], config: "\(target)/cox.yaml").output.contains("carol@example.com"))
    }

    /// `cox backup` and `cox restore` as an operator runs them, the passphrase on stdin:
    /// a short passphrase and an existing --out are refused; a wrong passphrase restores
    /// nothing; the right one brings the controller back in another directory.
    @Test func backupAndRestoreThroughTheBinary() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try cox(["init"]).status == 0)
        #expect(try cox(["users", "add", "Dana", "--email", "dana@example.com"]).status == 0)
        let passphrase = "a passphrase long enough\n", out = "\(dir)/fleet.backup"

        let short = try cox(["backup", "--out", out], input: "short\n")
        #expect(short.status != 0 && short.output.contains("at least 12 characters"), "\(short.output)")
        #expect(!FileManager.default.fileExists(atPath: out))
        let written = try cox(["backup", "--out", out], input: passphrase)
        #expect(written.status == 0 && written.output.contains("CA fingerprint"), "\(written.output)")
        let size = try FileManager.default.attributesOfItem(atPath: out)[.size] as? Int
        let twice = try cox(["backup", "--out", out], input: passphrase)
        #expect(twice.status != 0 && twice.output.contains("already exists"), "\(twice.output)")
        #expect(try FileManager.default.attributesOfItem(atPath: out)[.size] as? Int == size)
        #expect(try cox(["audit", "--action", "controller.backup"]).output.contains("controller.backup"))

        let restored = "\(dir)/restored/cox.yaml"
        let wrong = try cox(["restore", out], config: restored, input: "not the passphrase at all\n")
        #expect(wrong.status != 0 && wrong.output.contains("does not open"), "\(wrong.output)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/restored"))
        let right = try cox(["restore", out], config: restored, input: passphrase)
        #expect(right.status == 0 && right.output.contains("1 users"), "\(right.output)")
        #expect(try cox(["users", "list"], config: restored).output.contains("dana@example.com"))
        #expect(try cox(["audit", "verify"], config: restored).status == 0)
    }

    /// A backup interrupted by a signal leaves neither its partial file nor its snapshot.
    @Test func anInterruptedBackupLeavesNothingBehind() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try cox(["init"]).status == 0)
        // 300 MB that does not compress: the copy and its encryption take long enough to interrupt.
        let store = try Store.open(path: "\(dir)/state/app.db")
        try store.executeRawForTesting("CREATE TABLE filler (b BLOB); INSERT INTO filler VALUES (randomblob(300000000))")
        try store.close()
        let out = "\(dir)/fleet.backup"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["backup", "--out", out, "--config", "\(dir)/cox.yaml"]
        let stdin = Pipe(), output = Pipe()
        (p.standardInput, p.standardOutput, p.standardError) = (stdin, output, output)
        try p.run()
        try stdin.fileHandleForWriting.write(contentsOf: Data("a passphrase long enough\n".utf8))
        try stdin.fileHandleForWriting.close()
        func snapshots() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: "\(dir)/state")) ?? []).filter { $0.hasPrefix(".backup-") }
        }
        // The snapshot appears once the backup is under way (the handlers are in place by then).
        let deadline = Date().addingTimeInterval(20)
        while snapshots().isEmpty, p.isRunning, Date() < deadline { usleep(2_000) }
        #expect(p.isRunning, "the backup finished before it could be interrupted")
        kill(p.processIdentifier, SIGTERM)
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 128 + SIGTERM && text.contains("interrupted"), "\(p.terminationStatus): \(text)")
        #expect(!FileManager.default.fileExists(atPath: out), "the partial backup is still there")
        #expect(snapshots().isEmpty, "the snapshot is still there: \(snapshots())")
    }

    @Test func auditVerifyNamesTheTamperedRowAndFails() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try cox(["init", "--enterprise"]).status == 0)
        #expect(try cox(["init", "--personal"]).status != 0, "init must not overwrite without --force")
        #expect(try cox(["users", "add", "Bob", "--email", "bob@example.com"]).status == 0)
        let listed = try cox(["users", "list"])
        #expect(listed.output.contains("bob@example.com"))
        let intact = try cox(["audit", "verify"])
        #expect(intact.status == 0 && intact.output.contains("intact: 2 rows"), "\(intact.output)")
        let shown = try cox(["audit", "--action", "user"])
        #expect(shown.output.contains("user.add") && !shown.output.contains("controller.init"))

        let store = try Store.open(path: "\(dir)/state/app.db")
        let rows = try store.readNow { tx in try tx.auditChain() }
        try store.executeRawForTesting("UPDATE audit_log SET detail = '{}' WHERE id = ?", [rows[1].id])
        let broken = try cox(["audit", "verify"])
        #expect(broken.status == 1)
        #expect(broken.output.contains("BROKEN") && broken.output.contains(rows[1].id), "\(broken.output)")
    }

    /// `cox pki status` on a fresh controller: the CAs and the controller's leaf, valid; a CA
    /// moved into its last fifth shows as expiring, one past its end as expired.
    @Test func pkiStatusListsEveryCertificateWithItsState() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try cox(["init"]).status == 0)
        let fresh = try cox(["pki", "status"])
        #expect(fresh.status == 0, "\(fresh.output)")
        for kind in ["root", "fleet-ca", "device-ca", "controller"] { #expect(fresh.output.contains(kind), "\(fresh.output)") }
        #expect(fresh.output.contains("4 certificates: 4 valid, 0 expiring, 0 expired, 0 revoked"), "\(fresh.output)")

        let day: Int64 = 86_400_000_000, now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        let store = try Store.open(path: "\(dir)/state/app.db")
        try store.executeRawForTesting("UPDATE ca SET not_before = ?, not_after = ? WHERE role = 'device'", [now - 90 * day, now + 10 * day + day / 2])
        try store.executeRawForTesting("UPDATE ca SET not_before = ?, not_after = ? WHERE role = 'fleet'", [now - 90 * day, now - 2 * day])
        let aging = try cox(["pki", "status"])
        let deviceLine = aging.output.split(separator: "\n").first { $0.hasPrefix("device-ca") } ?? ""
        #expect(deviceLine.contains(" 10d ") && deviceLine.contains("expiring"), "\(aging.output)")
        let fleetLine = aging.output.split(separator: "\n").first { $0.hasPrefix("fleet-ca") } ?? ""
        #expect(fleetLine.contains(" -2d ") && fleetLine.contains("expired"), "\(aging.output)")
        #expect(aging.output.split(separator: "\n")[1].hasPrefix("fleet-ca"), "soonest expiry first: \(aging.output)")
    }

    /// `cox nodes endpoints`: the node's own address first, then the extra entry addresses
    /// clients pick from and rotate between; a bad address is refused and changes nothing.
    /// `cox pki root` prints the fleet's root; openssl reads it, and its SHA-256 is the one
    /// printed beside it and the one every join link pins.
    @Test func pkiRootPrintsTheRootAConsumerPins() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try cox(["init"]).status == 0)
        let printed = try cox(["pki", "root"])
        #expect(printed.status == 0, "\(printed.output)")
        let begin = try #require(printed.output.range(of: "-----BEGIN CERTIFICATE-----"))
        let end = try #require(printed.output.range(of: "-----END CERTIFICATE-----"))
        let pem = String(printed.output[begin.lowerBound..<end.upperBound]) + "\n"
        try pem.write(toFile: "\(dir)/root.pem", atomically: true, encoding: .utf8)
        let (opensslStatus, line) = try Tool.run("/usr/bin/openssl", ["x509", "-in", "\(dir)/root.pem", "-noout", "-fingerprint", "-sha256"],
                                                 mergingStandardError: false)
        let fromOpenSSL = line.split(separator: "=").last.map { $0.replacingOccurrences(of: ":", with: "").lowercased() }?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let pki = try FleetPKI.loadOrCreate(in: try Store.open(path: "\(dir)/state/app.db"))
        let pinned = try pki.authority.fingerprint
        #expect(opensslStatus == 0 && fromOpenSSL == pinned, "\(line) \(printed.output)")
        #expect(printed.output.contains("sha256 fingerprint: \(pinned)"), "\(printed.output)")
    }

    /// `cox geoip`: a database that is not there, or a file that is not one, is named and
    /// nothing is installed; a real one (the tests' writer) is installed, shown and looked up.
    @Test func geoipInstallsShowsAndLooksUp() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try cox(["init"]).status == 0)
        let none = try cox(["geoip"])
        #expect(none.status != 0 && none.output.contains("set geoip_db in cox.yaml"), "\(none.output)")
        let yaml = try String(contentsOfFile: "\(dir)/cox.yaml", encoding: .utf8)
        try yaml.replacingOccurrences(of: "geoip_db: \"\"", with: "geoip_db: \"geo.mmdb\"")
            .write(toFile: "\(dir)/cox.yaml", atomically: true, encoding: .utf8)
        let missing = try cox(["geoip"])
        #expect(missing.status != 0 && missing.output.contains("geoip_db: cannot open \(dir)/geo.mmdb"), "\(missing.output)")

        try Data("not a database".utf8).write(to: URL(fileURLWithPath: "\(dir)/garbage.mmdb"))
        let refused = try cox(["geoip", "update", "--from", "\(dir)/garbage.mmdb"])
        #expect(refused.status != 0 && refused.output.contains("not installed"), "\(refused.output)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/geo.mmdb"), "a bad file was installed")

        _ = try Tool.run("/usr/bin/python3", [URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("GeoIP/write_mmdb.py").path, "\(dir)/download.mmdb"])
        let installed = try cox(["geoip", "update", "--from", "\(dir)/download.mmdb"])
        #expect(installed.status == 0 && installed.output.contains("installed PharosTest-City"), "\(installed.output)")
        let shown = try cox(["geoip"])
        #expect(shown.status == 0 && shown.output.contains("PharosTest-City") && shown.output.contains("\(dir)/geo.mmdb"), "\(shown.output)")
        #expect(try cox(["geoip", "lookup", "203.0.113.9"]).output.contains("203.0.113.9: Sydney, AU (-33.8688, 151.2093)"))
        #expect(try cox(["geoip", "lookup", "8.8.8.8"]).output.contains("not in the database"))
        let bad = try cox(["geoip", "lookup", "nowhere"])
        #expect(bad.status != 0 && bad.output.contains("is not an IP address"), "\(bad.output)")
    }

    @Test func nodesEndpointsShowsAndSetsTheEntryAddresses() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try cox(["init"]).status == 0)
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                             "-keyout", "\(dir)/n1.key", "-out", "\(dir)/n1.csr", "-subj", "/CN=n1"]
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        let enrolled = try cox(["nodes", "enroll", "--csr", "\(dir)/n1.csr", "--addr", "198.51.100.4:8444", "--name", "n1",
                                "--out", "\(dir)/n1"])
        #expect(enrolled.status == 0, "\(enrolled.output)")
        #expect(try cox(["nodes", "endpoints", "n1"]).output == "198.51.100.4\n")
        let set = try cox(["nodes", "endpoints", "n1", "203.0.113.7, 203.0.113.8"])
        #expect(set.status == 0 && set.output.contains("extra entry addresses 203.0.113.7,203.0.113.8"), "\(set.output)")
        #expect(try cox(["nodes", "endpoints", "n1"]).output == "198.51.100.4\n203.0.113.7\n203.0.113.8\n")
        let bad = try cox(["nodes", "endpoints", "n1", "203.0.113.9,bogus"])
        #expect(bad.status != 0 && bad.output.contains("bogus"), "\(bad.output)")
        #expect(try cox(["nodes", "endpoints", "n1"]).output == "198.51.100.4\n203.0.113.7\n203.0.113.8\n")
        #expect(try cox(["nodes", "endpoints", "n1", ""]).status == 0)
        #expect(try cox(["nodes", "endpoints", "n1"]).output == "198.51.100.4\n")
    }

    @Test func runtimeErrorsAreOneSentenceWithoutUsage() throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try cox(["init"]).status == 0)
        let missing = try cox(["devices", "add", "nobody@example.com", "--name", "x"])
        #expect(missing.status != 0)
        #expect(missing.output.contains("no user nobody@example.com") && !missing.output.contains("Usage"), "\(missing.output)")
    }

    /// `cox alerts`: unresolved ones listed by default; ack keeps one listed, resolve moves it
    /// to the resolved ones; a stale --version changes nothing; a bad flag or ID is one sentence.
    @Test func alertsAreListedAcknowledgedAndResolved() async throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try cox(["init"]).status == 0)
        let store = try Store.open(path: "\(dir)/state/app.db")
        let (alert, _) = try await store.write { tx in
            try tx.raiseAlert(kind: "certificate_expiry", severity: .warning, dedupKey: "cli-test", deviceID: "dev_cli",
                              detail: #"{"name":"edge-1"}"#)
        }
        func row(_ arguments: [String]) throws -> String? {
            try cox(["alerts", "list"] + arguments).output.split(separator: "\n").first { $0.hasPrefix(alert.id) }.map(String.init)
        }
        let open = try #require(try row([]))
        #expect(open.contains("certificate_expiry") && open.contains("warning") && open.contains(" open ") && open.contains("edge-1"), "\(open)")

        let stale = try cox(["alerts", "ack", alert.id, "--version", "7"])
        #expect(stale.status != 0 && !stale.output.contains("Usage"), "\(stale.output)")
        #expect(try row([])?.contains(" open ") == true, "a stale ack changed the alert")
        let acked = try cox(["alerts", "ack", alert.id, "--version", "1"])
        #expect(acked.status == 0 && acked.output.contains("acknowledged \(alert.id)"), "\(acked.output)")
        #expect(try row([])?.contains("acknowledged") == true)

        #expect(try cox(["alerts", "resolve", alert.id]).status == 0)
        #expect(try row([]) == nil, "a resolved alert is not listed by default")
        #expect(try row(["--status", "resolved"])?.contains("resolved") == true)
        #expect(try row(["--status", "all", "--kind", "fleet_health"]) == nil)
        #expect(try row(["--status", "all", "--device", "dev_other"]) == nil)
        #expect(try row(["--status", "all", "--device", "dev_cli"]) != nil)
        // By name: one device has it; two devices of two users share one.
        for email in ["a@example.com", "b@example.com"] {
            #expect(try cox(["users", "add", "U", "--email", email]).status == 0)
            #expect(try cox(["devices", "add", email, "--name", email == "a@example.com" ? "laptop" : "phone"]).status == 0)
        }
        let laptop = try #require(try await store.read { tx in try tx.devices().first { $0.name == "laptop" } })
        let (named, _) = try await store.write { tx in
            try tx.raiseAlert(kind: "dormant_then_active", severity: .info, dedupKey: "cli-named", deviceID: laptop.id)
        }
        #expect(try cox(["alerts", "list", "--device", "laptop"]).output.contains(named.id))
        #expect(try cox(["devices", "add", "b@example.com", "--name", "laptop"]).status == 0)
        let ambiguous = try cox(["alerts", "list", "--device", "laptop"])
        #expect(ambiguous.status != 0 && ambiguous.output.contains("2 devices are named laptop"), "\(ambiguous.output)")
        let nameless = try cox(["alerts", "list", "--device", "tablet"])
        #expect(nameless.status != 0 && nameless.output.contains("no device has the ID or name tablet"), "\(nameless.output)")
        // As upstream: `cox alerts --status ...` lists without the subcommand's name.
        #expect(try cox(["alerts", "--status", "all"]).output.contains(alert.id))

        let badStatus = try cox(["alerts", "list", "--status", "closed"])
        #expect(badStatus.status != 0 && badStatus.output.contains("--status must be"), "\(badStatus.output)")
        let unknown = try cox(["alerts", "resolve", "alert_nope"])
        #expect(unknown.status != 0 && unknown.output.contains("alert_nope") && !unknown.output.contains("Usage"), "\(unknown.output)")
        let audit = try await store.read { tx in try tx.auditChain() }.filter { $0.targetID == alert.id }.map(\.action)
        #expect(audit == ["alert.ack", "alert.resolve"])
    }
}
