import Foundation
import PharosRuntime
import PharosTestSupport
import Testing
@testable import Coxswain

/// The controller's SSH client against a real OpenSSH server (Debian's sshd on a loopback
/// port): the host key pinned at first use, a changed key (a MITM, or a reinstall) refused
/// with nothing run, a key the server does not know refused with the line to add, uploads
/// byte for byte, and the private key never on a command line or in an environment. The
/// whole `cox nodes add|update|start|stop|rm` runs in `make deb-test` (packaging/test-units.sh)
/// against sshd in a booted Debian.
@Suite(.serialized) struct SSHTests {
    /// sshd -D on 127.0.0.1:port with its own host key, letting in the keys of `authorizedKeys`.
    final class SSHServer: @unchecked Sendable {
        let dir = "/tmp/cox-sshd-\(UUID().uuidString.prefix(8))"
        let port = LoopbackPorts.free(1)[0]
        private let process = ChildProcess()
        /// With a password: sshd also takes passwords, and knows a user `pharostest` (uid
        /// 65533, home `dir/home`) whose password it is, from copies of /etc/passwd and
        /// /etc/shadow bound over the real ones in a mount namespace of sshd's own: the
        /// machine's users are untouched.
        let password: String?
        static let passwordUser = "pharostest"

        init(password: String? = nil) throws {
            self.password = password
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
            try newHostKey()
            try "".write(toFile: "\(dir)/authorized_keys", atomically: true, encoding: .utf8)
        }

        deinit {
            if let pid = process.pid { kill(-pid, SIGKILL) }
            try? FileManager.default.removeItem(atPath: dir)
        }

        var target: SSHTarget { SSHTarget(user: "root", host: "127.0.0.1", port: port) }
        var passwordTarget: SSHTarget { SSHTarget(user: Self.passwordUser, host: "127.0.0.1", port: port) }

        /// A fresh host key (as a reinstalled server, or a man in the middle, would present).
        func newHostKey(type: String = "ed25519") throws {
            try? FileManager.default.removeItem(atPath: "\(dir)/host_key")
            try? FileManager.default.removeItem(atPath: "\(dir)/host_key.pub")
            try Command.run(["/usr/bin/ssh-keygen", "-q", "-t", type, "-N", "", "-f", "\(dir)/host_key"])
        }

        /// `SHA256:…` of the current host key.
        func fingerprint() throws -> String {
            let listed = try Command.run(["/usr/bin/ssh-keygen", "-l", "-f", "\(dir)/host_key.pub"])
            return String(listed.split(separator: " ")[1])
        }

        func authorize(_ line: String) throws {
            try (line + "\n").write(toFile: "\(dir)/authorized_keys", atomically: true, encoding: .utf8)
        }

        func start() async throws {
            guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd") else {
                throw HarnessError("/usr/sbin/sshd is missing: apt-get install openssh-server (make deps does)")
            }
            try """
                Port \(port)
                ListenAddress 127.0.0.1
                HostKey \(dir)/host_key
                AuthorizedKeysFile \(password == nil ? "\(dir)/authorized_keys" : ".ssh/authorized_keys")
                PermitRootLogin prohibit-password
                PasswordAuthentication \(password == nil ? "no" : "yes")
                KbdInteractiveAuthentication no
                UsePAM no
                StrictModes no
                PidFile none

                """.write(toFile: "\(dir)/sshd_config", atomically: true, encoding: .utf8)
            _ = FileManager.default.createFile(atPath: "\(dir)/sshd.log", contents: nil)
            let log = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(dir)/sshd.log"))
            defer { try? log.close() }
            if let password {
                let hash = try Command.run(["/usr/bin/openssl", "passwd", "-6", "-stdin"], input: password + "\n")
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                let home = "\(dir)/home"
                try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
                guard chown(home, 65533, 65533) == 0 else { throw HarnessError("chown \(home): \(String(cString: strerror(errno)))") }
                try (String(contentsOfFile: "/etc/passwd", encoding: .utf8) + "\(Self.passwordUser):x:65533:65533::\(home):/bin/sh\n")
                    .write(toFile: "\(dir)/passwd", atomically: true, encoding: .utf8)
                try (String(contentsOfFile: "/etc/shadow", encoding: .utf8) + "\(Self.passwordUser):\(hash):20000:0:99999:7:::\n")
                    .write(toFile: "\(dir)/shadow", atomically: true, encoding: .utf8)
                try process.start("/usr/bin/unshare", arguments: [
                    "--mount", "--propagation", "private", "/bin/sh", "-c",
                    #"mount --bind "$1/passwd" /etc/passwd && mount --bind "$1/shadow" /etc/shadow && exec /usr/sbin/sshd -D -e -f "$1/sshd_config""#,
                    "sh", dir,
                ], output: log)
            } else {
                try process.start("/usr/sbin/sshd", arguments: ["-D", "-e", "-f", "\(dir)/sshd_config"], output: log)
            }
            let port = self.port
            guard await process.waitUntilReady(timeout: .seconds(5), { LoopbackPorts.accepts(port) }) else {
                throw HarnessError("sshd does not listen on \(port): \((try? String(contentsOfFile: "\(dir)/sshd.log", encoding: .utf8)) ?? "")")
            }
        }

        func stop() async {
            await process.stop()
        }
    }

    /// An empty package named `name` (what `DebianPackage.inspect` reads), as `dir/name.deb`.
    static func package(_ name: String, version: String, in dir: String) throws -> String {
        let root = "\(dir)/\(name)-pkg"
        try FileManager.default.createDirectory(atPath: "\(root)/DEBIAN", withIntermediateDirectories: true)
        try "Package: \(name)\nVersion: \(version)\nArchitecture: all\nMaintainer: t <t@example.com>\nDescription: t\n"
            .write(toFile: "\(root)/DEBIAN/control", atomically: true, encoding: .utf8)
        try Command.run(["/usr/bin/dpkg-deb", "--root-owner-group", "-b", root, "\(dir)/\(name).deb"])
        return "\(dir)/\(name).deb"
    }

    @Test func theFirstLoginPinsTheHostKeyAndLaterOnesAreCheckedAgainstIt() async throws {
        let state = try TestState()
        let server = try SSHServer()
        let ssh = SSHClient(store: state.store, workDirectory: state.dir)
        try server.authorize(try await ssh.identity(by: state.actor).publicKey)
        try await server.start()

        let output = try await ssh.run(server.target, script: "echo PHAROS-UID=$(id -u)\n", step: "probe", by: state.actor)
        #expect(SSHOutput.value(of: "PHAROS-UID", in: output) == "0")
        let pins = try await state.store.read { tx in try tx.pinnedHostKeys() }
        #expect(pins.map(\.host) == ["[127.0.0.1]:\(server.port)"])
        #expect(pins.first?.fingerprint == (try server.fingerprint()))
        let audit = try await state.store.read { tx in try tx.auditRows(AuditQuery(action: "ssh.host_key_pinned")) }
        #expect(audit.count == 1)

        _ = try await ssh.run(server.target, script: "true\n", step: "again", by: state.actor)
        #expect(try await state.store.read { tx in try tx.pinnedHostKeys() } == pins)
        // Each call's private directory (key file and pins) is gone once it returns.
        #expect(try FileManager.default.contentsOfDirectory(atPath: state.dir).filter { $0.hasPrefix(".ssh-") }.isEmpty)
    }

    @Test func aChangedHostKeyIsRefusedAndNothingRunsThere() async throws {
        let state = try TestState()
        let server = try SSHServer()
        let ssh = SSHClient(store: state.store, workDirectory: state.dir)
        try server.authorize(try await ssh.identity(by: state.actor).publicKey)
        try await server.start()
        _ = try await ssh.run(server.target, script: "true\n", step: "first use", by: state.actor)
        let pinned = try server.fingerprint()

        // Another server on the same address: what a man in the middle presents.
        await server.stop()
        try server.newHostKey()
        try await server.start()
        let marker = "\(server.dir)/ran"
        let refusal = await #expect(throws: SSHError.self) {
            try await ssh.run(server.target, script: "touch \(marker)\n", step: "mitm", by: state.actor)
        }
        guard case .hostKeyChanged(_, let pins, let offered) = refusal else {
            Issue.record("not a host-key refusal: \(String(describing: refusal))")
            return
        }
        #expect(pins.map(\.fingerprint) == [pinned])
        #expect(offered == (try server.fingerprint()))
        let sentence = "\(refusal!)"
        #expect(sentence.contains("refused") && sentence.contains(pinned) && sentence.contains("cox ssh-key forget 127.0.0.1:\(server.port)"))
        #expect(!FileManager.default.fileExists(atPath: marker))
        #expect(try await state.store.read { tx in try tx.pinnedHostKeys() }.map(\.fingerprint) == [pinned])

        // A server that offers only a key of another type (ECDSA against the Ed25519 pin) is
        // no new host either: refused, nothing run, nothing pinned.
        await server.stop()
        try server.newHostKey(type: "ecdsa")
        try await server.start()
        let downgrade = await #expect(throws: SSHError.self) {
            try await ssh.run(server.target, script: "touch \(marker)\n", step: "downgrade", by: state.actor)
        }
        guard case .hostKeyChanged = downgrade else {
            Issue.record("an ECDSA-only server was not refused as a changed host key: \(String(describing: downgrade))")
            return
        }
        #expect(!FileManager.default.fileExists(atPath: marker))
        #expect(try await state.store.read { tx in try tx.pinnedHostKeys() }.map(\.fingerprint) == [pinned])

        // The operator checked the new key and forgets the old one: the next login pins it.
        #expect(try await state.store.write { tx in try tx.forgetHostKeys(host: server.target.knownHostsName) } == 1)
        _ = try await ssh.run(server.target, script: "touch \(marker)\n", step: "after forget", by: state.actor)
        #expect(FileManager.default.fileExists(atPath: marker))
        #expect(try await state.store.read { tx in try tx.pinnedHostKeys() }.map(\.fingerprint) == [try server.fingerprint()])
    }

    @Test func aKeyTheServerDoesNotKnowIsRefusedWithTheLineToAdd() async throws {
        let state = try TestState()
        let server = try SSHServer()
        try await server.start()
        let ssh = SSHClient(store: state.store, workDirectory: state.dir)
        let identity = try await ssh.identity(by: state.actor)
        let refusal = await #expect(throws: SSHError.self) {
            try await ssh.run(server.target, script: "true\n", step: "probe", by: state.actor)
        }
        #expect(refusal == .keyRefused(target: server.target, publicKey: identity.publicKey))
        #expect("\(refusal!)".contains("authorized_keys") && "\(refusal!)".contains(identity.publicKey))
        // No login, no pin: the key that server presented is not trusted from a failed call.
        #expect(try await state.store.read { tx in try tx.pinnedHostKeys() }.isEmpty)
    }

    @Test func anUploadArrivesByteForByteInAPrivateDirectory() async throws {
        let state = try TestState()
        let server = try SSHServer()
        let ssh = SSHClient(store: state.store, workDirectory: state.dir)
        try server.authorize(try await ssh.identity(by: state.actor).publicKey)
        try await server.start()
        let local = "\(state.dir)/payload.deb"
        let bytes = (0..<3_000_000).map { _ in UInt8.random(in: 0...255) }
        try Data(bytes).write(to: URL(fileURLWithPath: local))
        let remote = try await ssh.upload(server.target, file: local, as: "payload.deb", by: state.actor)
        defer { try? FileManager.default.removeItem(atPath: (remote as NSString).deletingLastPathComponent) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: remote)) == Data(bytes))
        let mode = try FileManager.default.attributesOfItem(atPath: (remote as NSString).deletingLastPathComponent)[.posixPermissions] as? Int
        #expect(mode == 0o700)
    }

    @Test func theKeyNeverReachesACommandLineOrAnEnvironment() async throws {
        let state = try TestState()
        let server = try SSHServer()
        let ssh = SSHClient(store: state.store, workDirectory: state.dir)
        let identity = try await ssh.identity(by: state.actor)
        #expect(identity.privateKey.hasPrefix("-----BEGIN OPENSSH PRIVATE KEY-----"))
        #expect(try await ssh.identity(by: state.actor) == identity)
        try server.authorize(identity.publicKey)
        try await server.start()
        // Pieces of the key's second half, where the private scalar is (the first lines are a
        // header every unencrypted key shares).
        let body = identity.privateKey.split(whereSeparator: \.isNewline).dropFirst().dropLast().joined()
        let pieces = stride(from: body.count / 2, to: body.count - 24, by: 24).map {
            String(body.dropFirst($0).prefix(24))
        }
        let running = Task { try await ssh.run(server.target, script: "sleep 2\n", step: "sleep", by: state.actor) }
        var seen: (argv: String, environment: String, keyMode: Int?)?
        for _ in 0..<60 where seen == nil {
            try await Task.sleep(for: .milliseconds(50))
            for pid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int(pid) != nil {
                guard let argv = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")),
                      case let words = argv.split(separator: 0).map({ String(decoding: $0, as: UTF8.self) }),
                      words.first == "ssh", words.contains("\(server.port)") else { continue }
                let environment = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))) ?? Data()
                let keyFile = words[words.firstIndex(of: "-i")! + 1]
                let mode = try? FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? Int
                seen = (words.joined(separator: " "), String(decoding: environment, as: UTF8.self), mode)
            }
        }
        _ = try await running.value
        let caught = try #require(seen, "no ssh process was seen")
        #expect(!pieces.isEmpty)
        #expect(pieces.allSatisfy { !caught.argv.contains($0) && !caught.environment.contains($0) })
        #expect(caught.argv.contains("-F /dev/null") && caught.argv.contains("IdentityAgent=none"))
        #expect(caught.keyMode == 0o600)
    }

    @Test func aOneTimePasswordInstallsTheKeyOnceAndIsKeptNowhere() async throws {
        let state = try TestState()
        let password = "horse battery \(UUID().uuidString.prefix(8))"
        let server = try SSHServer(password: password)
        try await server.start()
        let ssh = SSHClient(store: state.store, workDirectory: state.dir)
        let target = server.passwordTarget
        let authorized = "\(server.dir)/home/.ssh/authorized_keys"
        // A key already there, its line without a final newline: ours must not be joined to it.
        let existing = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExistingKeyOfTheOperatorXXXXXXXXXXXXXXXXXXXX operator@laptop"
        try FileManager.default.createDirectory(atPath: "\(server.dir)/home/.ssh", withIntermediateDirectories: true)
        try existing.write(toFile: authorized, atomically: true, encoding: .utf8)
        for path in ["\(server.dir)/home/.ssh", authorized] { #expect(chown(path, 65533, 65533) == 0) }

        // No pin and nothing vouching for the key: no password is sent.
        await #expect(throws: SSHError.hostKeyUnchecked(target: target)) {
            try await ssh.installKey(target, password: Array(password.utf8), by: state.actor)
        }
        // A fingerprint the server does not present (a man in the middle's key would not match): refused, nothing sent.
        let refusal = await #expect(throws: SSHError.self) {
            try await ssh.installKey(target, password: Array(password.utf8), firstHostKey: .fingerprint("SHA256:not-the-servers-key"), by: state.actor)
        }
        guard case .hostKeyNotPresented(_, _, let offered) = refusal else { Issue.record("\(String(describing: refusal))"); return }
        #expect(offered.contains { $0.hasSuffix(try! server.fingerprint()) })
        let vouched = SSHClient.FirstHostKey.fingerprint(try server.fingerprint())
        // A wrong password: its own sentence, no pin, nothing written there.
        await #expect(throws: SSHError.passwordRefused(target: target)) {
            try await ssh.installKey(target, password: Array("not \(password)".utf8), firstHostKey: vouched, by: state.actor)
        }
        await #expect(throws: SSHError.unusablePassword) {
            try await ssh.installKey(target, password: Array("\(password)\nrest".utf8), firstHostKey: vouched, by: state.actor)
        }
        #expect(try await state.store.read { tx in try tx.pinnedHostKeys() }.isEmpty)
        #expect(try String(contentsOfFile: authorized, encoding: .utf8) == existing)

        let installed = try await ssh.installKey(target, password: Array(password.utf8), firstHostKey: vouched, by: state.actor)
        #expect(!installed.wasThere)
        #expect(!installed.canBecomeRoot, "pharostest is not root and has no sudo")
        let publicKey = try #require(try await ssh.existingIdentity()).publicKey
        #expect(try String(contentsOfFile: authorized, encoding: .utf8) == existing + "\n" + publicKey + "\n")
        #expect(try FileManager.default.attributesOfItem(atPath: authorized)[.posixPermissions] as? Int == 0o600)
        #expect(try FileManager.default.attributesOfItem(atPath: "\(server.dir)/home/.ssh")[.posixPermissions] as? Int == 0o700)
        #expect(try await state.store.read { tx in try tx.pinnedHostKeys() }.map(\.host) == [target.knownHostsName])

        // Again (pinned now: nothing more to vouch): said to be there already, not added twice; and the key alone logs in.
        #expect(try await ssh.installKey(target, password: Array(password.utf8), by: state.actor).wasThere)
        #expect(try String(contentsOfFile: authorized, encoding: .utf8) == existing + "\n" + publicKey + "\n")
        let whoami = try await ssh.run(target, script: "id -un\n", step: "whoami", elevated: false, by: state.actor)
        #expect(whoami.contains(SSHServer.passwordUser))

        // The password is in no file of the state directory, no audit row, and no call directory is left.
        let audit = try await state.store.read { tx in try tx.auditRows(AuditQuery(action: "ssh.key_installed")) }
        #expect(audit.count == 2)
        for file in try FileManager.default.subpathsOfDirectory(atPath: state.dir) {
            #expect(!file.hasPrefix(".ssh-"), "\(file) left behind")
            let bytes = (try? Data(contentsOf: URL(fileURLWithPath: "\(state.dir)/\(file)"))) ?? Data()
            #expect(bytes.range(of: Data(password.utf8)) == nil, "the password is in \(file)")
        }
    }

    @Test func theAskpassAnswersOnlyAPasswordPromptFromAFIFO() throws {
        let state = try TestState()
        let directory = try SSHClient.makePrivateDirectory(in: state.dir, prefix: ".ssh-")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let secret = "s3cret \(UUID().uuidString.prefix(6))"
        let feeder = try SecretFeeder(path: "\(directory)/password", secret: Array(secret.utf8))
        try AtomicFile.write(Array(SecretFeeder.askpassScript(length: secret.utf8.count).utf8), to: "\(directory)/askpass", mode: 0o700)
        var info = stat()
        #expect(stat("\(directory)/password", &info) == 0 && (info.st_mode & S_IFMT) == S_IFIFO && (info.st_mode & 0o777) == 0o600)
        for _ in 0..<3 { // keyboard-interactive, then password: each prompt is answered, once
            let answer = try Command.status(["\(directory)/askpass", "pharostest@127.0.0.1's password: "])
            #expect(answer.status == 0 && answer.output == secret, "\(answer)")
        }
        for prompt in ["Verification code: ", "(pharostest@127.0.0.1) One-time code: ", "Username: "] {
            let answer = try Command.status(["\(directory)/askpass", prompt])
            #expect(answer.status == 1 && answer.output.isEmpty, "\(prompt): \(answer)")
        }
        feeder.stop() // returns although no reader is waiting
    }

    /// The Servers page against a real sshd: reading it makes no key, a click does; the key is
    /// installed with a one-time password for a host vouched for by its fingerprint; the pin is
    /// listed and forgotten from the page; a form with a forged CSRF token changes nothing.
    @Test func theServersPageMakesTheKeyInstallsItAndForgetsAPin() async throws {
        let fleet = try await AdminFleet()
        defer { Task { await fleet.stop() } }
        let state = fleet.state
        let password = "page \(UUID().uuidString.prefix(8))"
        let server = try SSHServer(password: password)
        try await server.start()
        let body = "email=ops%40example.com&password=\(AdminFleet.password.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)"
        let login = try await HTTPTestClient.send("POST", "/ui/login", port: fleet.port,
                                                  headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(body.utf8))
        let cookie = [("Cookie", "cox_session=\(try #require(login.cookie("cox_session")))")]
        let empty = try await fleet.send("GET", "/ui/servers", auth: cookie)
        #expect(empty.status == 200 && empty.text.contains("id=\"make-key\"") && empty.text.contains("No host key is pinned yet"))
        #expect(try await state.store.read { tx in try tx.sshIdentity() } == nil)
        let csrf = try #require(empty.text.firstMatch(of: /name="_csrf" value="([^"]+)"/)?.1)
        func post(_ path: String, _ fields: String, token: Substring? = nil) async throws -> HTTPTestClient.Response {
            try await HTTPTestClient.send("POST", path, port: fleet.port, headers: cookie + [("Content-Type", "application/x-www-form-urlencoded")],
                                          body: Array("_csrf=\(token ?? csrf)&\(fields)".utf8))
        }
        // Every form of the page: a forged CSRF token is refused, and no session sends the caller to the login.
        let forms = [("/ui/servers/key", ""), ("/ui/servers/install-key", "target=root%40127.0.0.1&password=x&trust_first_use=true"),
                     ("/ui/servers/nodes", "target=root%40127.0.0.1&package=x.deb"),
                     ("/ui/servers/relays", "target=root%40127.0.0.1&package=x.deb&hostname=r"),
                     ("/ui/servers/nodes/n1/start", ""), ("/ui/servers/nodes/n1/stop", ""), ("/ui/servers/nodes/n1/update", "package=x.deb"),
                     ("/ui/servers/relays/r1/start", ""), ("/ui/servers/relays/r1/stop", ""), ("/ui/servers/relays/r1/update", "package=x.deb"),
                     ("/ui/servers/pins/forget", "host=127.0.0.1")]
        for (path, fields) in forms {
            #expect(try await post(path, fields, token: "forged").status == 403, "\(path)")
            let anonymous = try await HTTPTestClient.send("POST", path, port: fleet.port, headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                                          body: Array("_csrf=\(csrf)&\(fields)".utf8))
            #expect(anonymous.status == 303 && anonymous.header("location") == "/ui/login", "\(path): \(anonymous.status)")
        }
        #expect(try await state.store.read { tx in try tx.sshIdentity() } == nil)
        let made = try await post("/ui/servers/key", "")
        let identity = try #require(try await state.store.read { tx in try tx.sshIdentity() })
        #expect(made.status == 303 && made.header("location")?.contains(AdminPages.escape(identity.fingerprint)) == true, "\(made.headers)")

        let target = AdminPages.escape(server.passwordTarget.description)
        let secret = AdminPages.escape(password)
        let unvouched = try await post("/ui/servers/install-key", "target=\(target)&password=\(secret)&host_key=")
        #expect(unvouched.header("location")?.contains("error=no%20host%20key%20is%20pinned") == true, "\(unvouched.headers)")
        #expect(!FileManager.default.fileExists(atPath: "\(server.dir)/home/.ssh"))
        let padded = AdminPages.escape("256 \(try server.fingerprint()) root@host (ED25519)  ")
        let wrong = try await post("/ui/servers/install-key", "target=\(target)&password=\(AdminPages.escape("x" + password))&host_key=\(padded)")
        let wrongLocation = try #require(wrong.header("location"))
        #expect(wrongLocation.contains("refused%20the%20password") && !wrongLocation.contains(secret) && !wrongLocation.contains(password),
                "\(wrongLocation)")
        let installed = try await post("/ui/servers/install-key",
                                       "target=\(target)&password=\(secret)&host_key=\(AdminPages.escape(try server.fingerprint()))")
        #expect(installed.header("location")?.contains("ok=installed") == true, "\(installed.headers)")
        #expect(try String(contentsOfFile: "\(server.dir)/home/.ssh/authorized_keys", encoding: .utf8) == identity.publicKey + "\n")

        let page = try await fleet.send("GET", "/ui/servers", auth: cookie)
        let pin = server.passwordTarget.knownHostsName
        let fingerprint = try server.fingerprint()
        #expect(page.text.contains(identity.publicKey) && page.text.contains(fingerprint) && page.text.contains(">\(pin)<"))
        let forgot = try await post("/ui/servers/pins/forget", "host=\(AdminPages.escape(pin))")
        #expect(forgot.header("location")?.contains("ok=forgot") == true, "\(forgot.headers)")
        #expect(try await state.store.read { tx in try tx.pinnedHostKeys() }.isEmpty)
        let none = try await post("/ui/servers/pins/forget", "host=\(AdminPages.escape(pin))")
        #expect(none.header("location")?.contains("error=") == true)
        let actions = try await state.store.read { tx in try tx.auditChain() }.map(\.action)
        for action in ["ssh.key_created", "ssh.host_key_pinned", "ssh.key_installed", "ssh.host_key_forgotten"] {
            #expect(actions.contains(action), "\(action) missing")
        }
    }

    @Test func fingerprintsAreReadFromWhatAnOperatorPastes() throws {
        #expect(try SSHClient.FirstHostKey.from(hostKey: "  256 SHA256:abc+/9XYZ root@h (ED25519)\n", trustFirstUse: false) == .fingerprint("SHA256:abc+/9XYZ"))
        #expect(try SSHClient.FirstHostKey.from(hostKey: "", trustFirstUse: false) == .unchecked)
        #expect(try SSHClient.FirstHostKey.from(hostKey: " ", trustFirstUse: true) == .trustFirstUse)
        #expect(throws: SSHError.unreadableFingerprint("MD5:aa:bb")) { try SSHClient.FirstHostKey.from(hostKey: "MD5:aa:bb", trustFirstUse: true) }
        #expect(SSHClient.keyscanArgv(try SSHTarget.parse("root@[2001:db8::1]:2222"), timeout: 5).suffix(3) == ["2222", "--", "2001:db8::1"])
    }

    @Test func asecondAddOnAHostStillBeingAddedIsRefused() async throws {
        let state = try TestState()
        let packagePath = try Self.package("pharos-node", version: "1.0", in: state.dir)
        let controller = Controller(config: state.config, store: state.store, pki: state.pki, service: state.service)
        let onboarding = AgentOnboarding(controller: controller, ssh: SSHClient(store: state.store, workDirectory: state.dir))
        let target = SSHTarget(user: "root", host: "127.0.0.1", port: LoopbackPorts.free()[0])
        try AgentOnboarding.busy.claim(target.knownHostsName) // an add in progress
        let request = AgentOnboarding.NodeRequest(target: target, packagePath: packagePath, name: "busy")
        await #expect(throws: OnboardingError.busy(target.knownHostsName)) { try await onboarding.addNode(request, by: state.actor) }
        AgentOnboarding.busy.release(target.knownHostsName)
        // Once it is done the host can be tried again (here: nothing listens there).
        await #expect(throws: SSHError.self) { try await onboarding.addNode(request, by: state.actor) }
    }

    @Test func targetsAreReadStrictly() throws {
        #expect(try SSHTarget.parse("203.0.113.7") == SSHTarget(user: "root", host: "203.0.113.7", port: 22))
        #expect(try SSHTarget.parse("ops@node-1.example.net:2222") == SSHTarget(user: "ops", host: "node-1.example.net", port: 2222))
        #expect(try SSHTarget.parse("root@[2001:db8::7]:2222").knownHostsName == "[2001:db8::7]:2222")
        #expect(try SSHTarget.parse("root@203.0.113.7").knownHostsName == "203.0.113.7")
        // One spelling per host, as ssh writes known_hosts: a pin is found however it was typed.
        #expect(try SSHTarget.parse("root@Node1.Example.COM").host == "node1.example.com")
        #expect(try SSHTarget.parse("root@[2001:DB8:0::7]:22").host == "2001:db8::7")
        for hostile in ["root@-oProxyCommand=touch /tmp/x", "-oProxyCommand=x", "root@host:0", "root@host:70000", "root@ho st",
                        "ro ot@host", "root@[2001:db8::7", "root@host;reboot", "root@", "r$(id)@host", "root@2001:db8::7", "root@[not:an:address]"] {
            #expect(throws: SSHError.self, "\(hostile)") { try SSHTarget.parse(hostile) }
        }
    }

    @Test func onlyAPharosNodePackageIsSentAndATakenNameStopsAddBeforeAnyLogin() async throws {
        let state = try TestState()
        func package(_ name: String) throws -> String { try Self.package(name, version: "1.2.3", in: state.dir) }
        #expect(try DebianPackage.inspect(try package("pharos-node"), expecting: "pharos-node").version == "1.2.3")
        #expect(throws: OnboardingError.package("\(state.dir)/pharos-relay.deb", "is pharos-relay, not pharos-node")) {
            try DebianPackage.inspect(try package("pharos-relay"), expecting: "pharos-node")
        }
        try "not a package".write(toFile: "\(state.dir)/junk.deb", atomically: true, encoding: .utf8)
        #expect(throws: OnboardingError.self) { try DebianPackage.inspect("\(state.dir)/junk.deb", expecting: "pharos-node") }

        // Port 1 on loopback answers nothing: getting past the checks would fail as unreachable.
        _ = try await state.readyNode(name: "n1", address: "127.0.0.1:8444")
        let controller = Controller(config: state.config, store: state.store, pki: state.pki, service: state.service)
        let onboarding = AgentOnboarding(controller: controller, ssh: SSHClient(store: state.store, workDirectory: state.dir))
        for (name, address) in [("n1", "127.0.0.2:8444"), ("n2", "127.0.0.1:8444")] {
            let request = AgentOnboarding.NodeRequest(target: SSHTarget(user: "root", host: "127.0.0.1", port: 1),
                                                 packagePath: try package("pharos-node"), name: name, controlAddress: address)
            let refusal = await #expect(throws: OnboardingError.self) { try await onboarding.addNode(request, by: state.actor) }
            #expect("\(refusal!)".hasSuffix("nothing was installed"))
        }
        // Listen ports out of range, or a relay told to listen for clients and its tunnel on
        // one port, are refused before any login too.
        let node = AgentOnboarding.NodeRequest(target: SSHTarget(user: "root", host: "127.0.0.1", port: 1),
                                               packagePath: try package("pharos-node"), name: "n3", controlAddress: "127.0.0.3:8444",
                                               listenPort: 70000)
        await #expect(throws: OnboardingError.badPort(70000, flag: "--listen-port")) { try await onboarding.addNode(node, by: state.actor) }
        for (client, tunnel, refusal) in [(9453, 9453, OnboardingError.samePorts("the relay cannot listen for clients and for the controller's tunnel on the same port 9453")),
                                          (0, nil, .badPort(0, flag: "--client-listen-port")),
                                          (nil, 65536, .badPort(65536, flag: "--tunnel-listen-port"))] as [(Int?, Int?, OnboardingError)] {
            let relay = AgentOnboarding.RelayRequest(target: SSHTarget(user: "root", host: "127.0.0.1", port: 1),
                                                     packagePath: try package("pharos-relay"), hostname: "relay.test",
                                                     endpoint: "127.0.0.1:8444", publicAddress: "127.0.0.1:9443",
                                                     clientListenPort: client, tunnelListenPort: tunnel)
            await #expect(throws: refusal) { try await onboarding.addRelay(relay, by: state.actor) }
        }
        #expect(try await state.store.read { tx in try tx.nodes().count } == 1)
        #expect(try await state.store.read { tx in try tx.relays() }.isEmpty)
        #expect(try await state.store.read { tx in try tx.pinnedHostKeys() }.isEmpty)
    }

    @Test func theAPITakesPackagesFromItsOwnDirectoryAndRefusesAChangedHostKey() async throws {
        let fleet = try await AdminFleet()
        defer { Task { await fleet.stop() } }
        let state = fleet.state
        let admin = AdminFleet.bearer(try await fleet.token("adm", .admin))
        for (package, says) in [("../../etc/passwd", "no directories"), ("/etc/passwd", "no directories"), ("missing.deb", "copy the package there first")] {
            let response = try await fleet.send("POST", "/api/nodes/ssh", auth: admin,
                                                json: #"{"target":"root@127.0.0.1","package":"\#(package)"}"#)
            #expect(response.status == 400 && response.text.contains(says), "\(package): \(response.status) \(response.text)")
        }
        // Reading the key never makes one; POST makes it once, audited, and GET then shows it.
        let none = try await fleet.send("GET", "/api/ssh/key", auth: admin)
        #expect(none.status == 404 && none.text.contains("no SSH key yet"), "\(none.status) \(none.text)")
        #expect(try await state.store.read { tx in try tx.sshIdentity() } == nil)
        let made = try await fleet.send("POST", "/api/ssh/key", auth: admin)
        #expect(made.status == 200 && made.text.contains("ssh-ed25519 ") && made.text.contains("SHA256:"), "\(made.status) \(made.text)")
        let publicKey = try #require(try await state.store.read { tx in try tx.sshIdentity() }?.publicKey)
        for (method, path) in [("POST", "/api/ssh/key"), ("GET", "/api/ssh/key"), ("GET", "/api/ssh-key")] {
            let again = try await fleet.send(method, path, auth: admin)
            let json = try JSONSerialization.jsonObject(with: Data(again.text.utf8)) as? [String: Any]
            #expect(again.status == 200 && json?["public_key"] as? String == publicKey, "\(method) \(path): \(again.status) \(again.text)")
        }
        #expect(try await state.store.read { tx in try tx.auditRows(AuditQuery(action: "ssh.key_created")) }.count == 1)
        #expect(try await fleet.send("DELETE", "/api/ssh/host-keys/127.0.0.1:2222", auth: admin).status == 404)

        // A node installed over SSH whose server then presents another host key: stop is refused with 409.
        let server = try SSHServer()
        let ssh = SSHClient(store: state.store, workDirectory: (state.store.path as NSString).deletingLastPathComponent)
        try server.authorize(try await ssh.identity(by: state.actor).publicKey)
        try await server.start()
        let node = try await state.readyNode(name: "n-ssh")
        try await state.store.write { tx in try tx.setAgentSSH(.node, id: node.id, target: server.target, packageVersion: "1.0") }
        _ = try await ssh.run(server.target, script: "true\n", step: "pin", by: state.actor)
        await server.stop()
        try server.newHostKey()
        try await server.start()
        let refused = try await fleet.send("POST", "/api/nodes/\(node.id)/stop", auth: admin)
        #expect(refused.status == 409 && refused.text.contains("refused"), "\(refused.status) \(refused.text)")
        let deleted = try await fleet.send("DELETE", "/api/nodes/\(node.id)", auth: admin)
        #expect(deleted.status == 409, "\(deleted.status) \(deleted.text)")
        #expect(try await state.store.read { tx in try tx.nodes().map(\.id) }.contains(node.id))
        #expect(try await state.store.read { tx in try tx.auditRows(AuditQuery(action: "node.stop")) }.isEmpty)
        let forced = try await fleet.send("DELETE", "/api/nodes/\(node.id)?keep_agent=true", auth: admin)
        #expect(forced.status == 200, "\(forced.status) \(forced.text)")
        #expect(try await fleet.send("DELETE", "/api/ssh/host-keys/127.0.0.1:\(server.port)", auth: admin).status == 204)
    }
}
