import Crypto
import Foundation
import PharosRuntime

/// Runs commands on a server over OpenSSH's `ssh`, as the controller's own identity, with the
/// server's host key pinned in the store at first use and every later key checked against
/// that pin. Nothing of the user's SSH setup takes part: no ~/.ssh/config, no agent, no
/// known_hosts but the pins. For each call a private directory (0700) in the state directory
/// holds the identity (0600) and the host's pins, and is removed afterwards; the key reaches
/// ssh as a file, never on a command line or in the environment. What runs remotely goes as a
/// script on ssh's standard input, so the server's process list shows only `sh -s`.
public struct SSHClient: Sendable {
    public let store: Store
    /// Where the per-call directory is made (the controller's state directory).
    public let workDirectory: String
    public var connectTimeoutSeconds = 15

    public init(store: Store, workDirectory: String) {
        self.store = store
        self.workDirectory = workDirectory
    }

    /// Drops the pins of `name` (a known_hosts name: `HOST` or `[HOST]:PORT`), audited as
    /// `ssh.host_key_forgotten`; false when none was pinned.
    public func forgetPins(of name: String, by actor: AuditActor) async throws -> Bool {
        try await store.write { tx in
            guard try tx.forgetHostKeys(host: name) > 0 else { return false }
            _ = try tx.appendAudit(AuditEntry(action: "ssh.host_key_forgotten", targetType: "ssh_host", targetID: name), by: actor)
            return true
        }
    }

    /// The controller's identity, if one was made (reading never makes one).
    public func existingIdentity() async throws -> SSHIdentity? {
        try await store.read { tx in try tx.sshIdentity() }
    }

    /// The controller's identity, made (Ed25519, by `ssh-keygen`) the first time and audited
    /// as `ssh.key_created` by `actor`.
    public func identity(by actor: AuditActor) async throws -> SSHIdentity {
        if let existing = try await existingIdentity() { return existing }
        let made = try withPrivateDirectory { directory -> (String, String) in
            let file = "\(directory)/id"
            var name = [CChar](repeating: 0, count: 256)
            let host = gethostname(&name, name.count - 1) == 0
                ? String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).split(separator: ".").first.map(String.init) ?? "controller"
                : "controller"
            do {
                _ = try Command.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pharos-coxswain@\(host)", "-f", file])
            } catch let error as CommandError {
                throw SSHError.local("cannot make the controller's SSH key: \(error.output) (apt-get install openssh-client)")
            }
            let privateKey = try String(contentsOfFile: file, encoding: .utf8)
            let publicKey = try String(contentsOfFile: file + ".pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            return (privateKey, publicKey)
        }
        return try await store.write { tx in
            let (identity, created) = try tx.storeSSHIdentity(privateKey: made.0, publicKey: made.1)
            if created {
                _ = try tx.appendAudit(AuditEntry(action: "ssh.key_created", targetType: "ssh_identity", targetID: identity.fingerprint), by: actor)
            }
            return identity
        }
    }

    /// Runs `script` with `sh -s` (through `sudo -n` for a user other than root) and returns
    /// what it printed. `step` names it in errors.
    @discardableResult
    public func run(_ target: SSHTarget, script: String, step: String, elevated: Bool = true, by actor: AuditActor) async throws -> String {
        let shell = elevated && target.user != "root" ? "sudo -n sh -s" : "sh -s"
        return try await call(target, remoteCommand: "exec \(shell)", input: .text(script), step: step, by: actor)
    }

    /// Copies the local file at `path` to a new private directory on the server and returns
    /// the remote path (`DIR/name`); the caller removes DIR.
    public func upload(_ target: SSHTarget, file path: String, as name: String, by actor: AuditActor) async throws -> String {
        guard name.range(of: #"^[A-Za-z0-9][A-Za-z0-9._-]*$"#, options: .regularExpression) != nil else {
            throw SSHError.local("\"\(name)\" is not a plain file name")
        }
        // Through sh whatever the user's login shell is (csh and fish read `$(…)` otherwise).
        let command = "exec sh -c 'umask 077 && d=$(mktemp -d /tmp/pharos-cox.XXXXXXXX) && cat > \"$d/\(name)\" && echo \"PHAROS-UPLOADED=$d/\(name)\"'"
        let output = try await call(target, remoteCommand: command, input: .file(path), step: "upload \(name)", by: actor)
        guard let remote = SSHOutput.value(of: "PHAROS-UPLOADED", in: output),
              remote.range(of: #"^/tmp/pharos-cox\.[A-Za-z0-9]+/[A-Za-z0-9._-]+$"#, options: .regularExpression) != nil
        else { throw SSHError.remoteFailed(target: target, step: "upload \(name)", status: 0, output: "no upload path in: \(output)") }
        return remote
    }

    enum Input {
        case text(String)
        case file(String)
    }

    /// How a call logs in: with the controller's key, or with a password the operator typed
    /// once (`installKey`). The password reaches ssh through `SSH_ASKPASS`: a script in the
    /// call's 0700 directory that answers a prompt naming a password (and no other: not a
    /// second factor's) by reading a FIFO beside it, which this process feeds from memory; the
    /// password never touches a disk.
    enum Login: Sendable {
        case key
        case password([UInt8])
    }

    public struct InstalledKey: Sendable {
        /// Whether the key was already in authorized_keys.
        public var wasThere: Bool
        /// Whether the user can run root's commands (`root`, or `sudo -n` works): `cox nodes
        /// add` and `cox relays add` need that.
        public var canBecomeRoot: Bool
    }

    /// How the host key of a server nothing is pinned for yet is checked before a password
    /// goes to it: a fingerprint the operator read on the server's console (`SHA256:…`), or
    /// trust on first use, said explicitly (whoever answers first would get the password).
    public enum FirstHostKey: Sendable, Equatable {
        case fingerprint(String)
        case trustFirstUse
        case unchecked

        /// From a form or a flag: `hostKey` may be a whole `ssh-keygen -l` line, padded; empty
        /// is none. Anything without a `SHA256:` fingerprint in it is refused.
        public static func from(hostKey: String?, trustFirstUse: Bool) throws(SSHError) -> FirstHostKey {
            guard let text = hostKey?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else {
                return trustFirstUse ? .trustFirstUse : .unchecked
            }
            guard let match = text.firstMatch(of: /SHA256:[A-Za-z0-9+\/]+/) else { throw .unreadableFingerprint(text) }
            return .fingerprint(String(match.0))
        }
    }

    /// Logs in to `target` once with `password` (never stored, never on a command line, in an
    /// environment or on disk), appends the controller's public key to the user's
    /// authorized_keys unless it is there, pins the host key, then logs in again with the key to
    /// prove it works. Upstream's `cox servers add`. A host with no pin must be vouched for
    /// (`firstHostKey`) before the password is sent.
    public func installKey(_ target: SSHTarget, password: [UInt8], firstHostKey: FirstHostKey = .unchecked,
                           by actor: AuditActor) async throws -> InstalledKey {
        guard !password.isEmpty, !password.contains(where: { $0 == 0 || $0 == 10 || $0 == 13 }) else {
            throw SSHError.unusablePassword
        }
        let identity = try await identity(by: actor)
        let line = identity.publicKey
        guard !line.contains("\n"), !line.contains("PHAROS_KEY") else { throw SSHError.local("the controller's SSH key is unreadable") }
        var vouched: [PinnedHostKey]?
        if try await store.read({ tx in try tx.pinnedHostKeys(host: target.knownHostsName) }).isEmpty {
            switch firstHostKey {
            case .unchecked:
                throw SSHError.hostKeyUnchecked(target: target)
            case .trustFirstUse:
                break
            case .fingerprint(let wanted):
                let offered = try await Self.offload { [connectTimeoutSeconds] in try Self.scanHostKeys(target, timeout: connectTimeoutSeconds) }
                let matching = offered.filter { $0.fingerprint == wanted }
                guard !matching.isEmpty else {
                    throw SSHError.hostKeyNotPresented(target: target, wanted: wanted, offered: offered.map { "\($0.keyType) \($0.fingerprint)" })
                }
                vouched = matching
            }
        }
        // The key goes as a quoted here-document (the line holds no newline and not its
        // delimiter); a file without a final newline gets one first, so no key is joined to
        // ours. $HOME is what sshd set from the account that logged in.
        let script = """
            set -e
            umask 077
            home=${HOME:?sshd set no HOME}
            mkdir -p "$home/.ssh"
            chmod 700 "$home/.ssh"
            file="$home/.ssh/authorized_keys"
            key=$(cat <<'PHAROS_KEY'
            \(line)
            PHAROS_KEY
            )
            if [ -f "$file" ] && grep -qxF "$key" "$file"; then echo PHAROS-KEY=present; else
                if [ -s "$file" ] && [ -n "$(tail -c 1 "$file")" ]; then echo >> "$file"; fi
                printf '%s\\n' "$key" >> "$file"; echo PHAROS-KEY=added; fi
            chmod 600 "$file"

            """
        let output = try await call(target, remoteCommand: "exec sh -s", input: .text(script), step: "install the controller's key",
                                    login: .password(password), vouched: vouched, trustFirstUse: firstHostKey == .trustFirstUse,
                                    by: actor)
        let wasThere = SSHOutput.value(of: "PHAROS-KEY", in: output) == "present"
        try await store.write { tx in
            _ = try tx.appendAudit(AuditEntry(action: "ssh.key_installed", targetType: "ssh_host", targetID: target.knownHostsName,
                                              detail: FleetService.detail(["user": target.user, "fingerprint": identity.fingerprint,
                                                                           "already_there": wasThere ? "true" : "false"])),
                                   by: actor)
        }
        // The key must now work on its own (sshd's StrictModes or an AuthorizedKeysFile elsewhere would refuse it).
        let check: String
        do {
            check = try await call(target, remoteCommand: "exec sh -s",
                                   input: .text("if [ \"$(id -u)\" = 0 ] || sudo -n true 2>/dev/null; then echo PHAROS-ROOT=yes; else echo PHAROS-ROOT=no; fi\n"),
                                   step: "log in with the key", by: actor)
        } catch SSHError.keyRefused {
            throw SSHError.installedKeyRefused(target: target)
        }
        return InstalledKey(wasThere: wasThere, canBecomeRoot: SSHOutput.value(of: "PHAROS-ROOT", in: check) == "yes")
    }

    /// ssh-keyscan takes a bare IPv6 address (`[…]` does not resolve).
    static func keyscanArgv(_ target: SSHTarget, timeout: Int) -> [String] {
        ["ssh-keyscan", "-T", "\(timeout)", "-p", "\(target.port)", "--", target.host]
    }

    /// The host keys `target` presents (`ssh-keyscan`), under our name for it.
    static func scanHostKeys(_ target: SSHTarget, timeout: Int) throws -> [PinnedHostKey] {
        let scanned = Result { () throws(CommandError) in
            try Command.status(keyscanArgv(target, timeout: timeout))
        }
        guard case .success(let result) = scanned else {
            if case .failure(let error) = scanned {
                throw SSHError.local("\(error.output) (the controller runs OpenSSH's ssh-keyscan: apt-get install openssh-client)")
            }
            return []
        }
        let keys = SSHOutput.knownHosts(result.output).map {
            PinnedHostKey(host: target.knownHostsName, keyType: $0.keyType, publicKey: $0.publicKey, pinnedAt: 0)
        }
        guard !keys.isEmpty else {
            throw SSHError.unreachable(target: target, reason: "ssh-keyscan got no host key (\(SSHOutput.lastLines(result.output, 2)))")
        }
        return keys
    }

    /// The first thing every remote command prints: the login went through (anything ssh
    /// reports without it, whatever the exit status, is ssh's own failure, and no key is
    /// pinned from such a call).
    static let sessionMarker = "PHAROS-SESSION"

    /// `vouched`: for a host with no pin, the keys to accept (checked against a fingerprint the
    /// operator gave); they are pinned once the login went through. A password goes only to a
    /// pinned or vouched key, or, when `trustFirstUse`, to whatever answers: the pins are read
    /// here, so a pin forgotten meanwhile does not open the way.
    private func call(_ target: SSHTarget, remoteCommand: String, input: Input, step: String, login: Login = .key,
                      vouched: [PinnedHostKey]? = nil, trustFirstUse: Bool = false, by actor: AuditActor) async throws -> String {
        let identity = try await identity(by: actor)
        let pinned = try await store.read { tx in try tx.pinnedHostKeys(host: target.knownHostsName) }
        let known = pinned.isEmpty ? vouched ?? [] : pinned
        if case .password = login, known.isEmpty, !trustFirstUse { throw SSHError.hostKeyUnchecked(target: target) }
        let timeout = connectTimeoutSeconds
        removeAbandonedDirectories()
        let (status, output, learned) = try await Self.offload { () throws -> (Int32, String, [PinnedHostKey]) in
            try withPrivateDirectory { directory in
                let keyFile = "\(directory)/id", knownHosts = "\(directory)/known_hosts"
                try AtomicFile.write(Array(identity.privateKey.utf8), to: keyFile, mode: 0o600)
                try AtomicFile.write(Array(known.map { $0.knownHostsLine + "\n" }.joined().utf8), to: knownHosts, mode: 0o600)
                var environment: [String: String]?
                var feeder: SecretFeeder?
                defer { feeder?.stop() }
                if case .password(let password) = login {
                    feeder = try SecretFeeder(path: "\(directory)/password", secret: password)
                    try AtomicFile.write(Array(SecretFeeder.askpassScript(length: password.count).utf8), to: "\(directory)/askpass", mode: 0o700)
                    environment = ProcessInfo.processInfo.environment
                    environment?["SSH_ASKPASS"] = "\(directory)/askpass"
                    environment?["SSH_ASKPASS_REQUIRE"] = "force"
                }
                let argv = Self.argv(target, keyFile: keyFile, knownHosts: knownHosts, firstUse: known.isEmpty, connectTimeout: timeout,
                                     password: environment != nil, remoteCommand: "echo \(Self.sessionMarker); \(remoteCommand)")
                let result: (status: Int32, output: String)
                do {
                    result = switch input {
                    case .text(let text): try Command.status(argv, input: text, environment: environment)
                    case .file(let path): try Command.status(argv, inputFile: path, environment: environment)
                    }
                } catch let error as CommandError {
                    throw SSHError.local("\(error.output) (the controller runs OpenSSH's ssh: apt-get install openssh-client)")
                }
                let written = (try? String(contentsOfFile: knownHosts, encoding: .utf8)) ?? ""
                return (result.status, result.output, SSHOutput.knownHosts(written))
            }
        }
        guard output.split(whereSeparator: { $0.isNewline }).contains(where: { String($0) == Self.sessionMarker }) else {
            if case .password = login {
                if output.contains("ssh_askpass") || output.contains("read_passphrase") {
                    throw SSHError.local("ssh could not ask for the password through SSH_ASKPASS (OpenSSH 8.4 or later is needed): "
                                         + SSHOutput.lastLines(output, 3))
                }
                if output.contains("Permission denied (") { throw SSHError.passwordRefused(target: target) }
            }
            let failure = SSHOutput.failure(output, status: status, target: target, pinned: pinned, publicKey: identity.publicKey)
            if case .hostKeyChanged(_, _, let offered) = failure, pinned.isEmpty, let vouched, !vouched.isEmpty {
                // Not the key ssh-keyscan saw a moment ago: refused before any password went out.
                throw SSHError.hostKeyNotPresented(target: target, wanted: vouched.map(\.fingerprint).joined(separator: ", "),
                                                   offered: [offered ?? "another key"])
            }
            throw failure
        }
        // Logged in with a key ssh accepted at first use: pin it. A pin is never replaced, and a
        // key another first login pinned meanwhile must be this one.
        if pinned.isEmpty {
            let fresh = learned.filter { $0.host == target.knownHostsName }
            try await store.write { tx in
                for key in fresh {
                    let stored = try tx.pinHostKey(host: key.host, keyType: key.keyType, publicKey: key.publicKey)
                    guard stored.publicKey == key.publicKey else {
                        // Two first logins met different keys; this one's command has run.
                        throw SSHError.local("another login to \(target.knownHostsName) pinned \(stored.keyType) \(stored.fingerprint) "
                                             + "while this one met \(key.fingerprint), and ran \(step) there: check the server's key "
                                             + "on its console (`cox ssh-key pins`)")
                    }
                    _ = try tx.appendAudit(AuditEntry(action: "ssh.host_key_pinned", targetType: "ssh_host", targetID: key.host,
                                                      detail: FleetService.detail(["key_type": key.keyType, "fingerprint": key.fingerprint])),
                                           by: actor)
                }
            }
        }
        guard status == 0 else {
            throw SSHError.remoteFailed(target: target, step: step, status: status, output: SSHOutput.lastLines(output, 15))
        }
        return output
    }

    /// `firstUse`: no key is pinned for the host, and ssh may accept the one it presents
    /// (`accept-new`); otherwise only a pinned key is (`yes`: a key of another type too is refused).
    /// `HostKeyAlias` makes ssh look the key up, and write it, under our name for the host.
    /// `password`: only keyboard-interactive and password authentication, one prompt each, the
    /// answer from `SSH_ASKPASS`; otherwise only the key.
    static func argv(_ target: SSHTarget, keyFile: String, knownHosts: String, firstUse: Bool, connectTimeout: Int,
                     password: Bool = false, remoteCommand: String) -> [String] {
        let authentication = password
            ? ["-o", "PubkeyAuthentication=no", "-o", "IdentityAgent=none", "-o", "BatchMode=no",
               "-o", "PreferredAuthentications=keyboard-interactive,password", "-o", "NumberOfPasswordPrompts=1"]
            : ["-i", keyFile, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
               "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no"]
        return ["ssh", "-F", "/dev/null"] + authentication + [
            "-o", "UserKnownHostsFile=\(knownHosts)", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=\(firstUse ? "accept-new" : "yes")", "-o", "HostKeyAlias=\(target.knownHostsName)",
            "-o", "UpdateHostKeys=no", "-o", "HashKnownHosts=no",
            "-o", "CheckHostIP=no", "-o", "ConnectTimeout=\(connectTimeout)",
            "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4", "-o", "LogLevel=ERROR",
            "-o", "ForwardAgent=no", "-o", "ForwardX11=no", "-o", "ClearAllForwardings=yes",
            "-p", "\(target.port)", target.destination, "--", remoteCommand,
        ]
    }

    /// A call's directory left behind by a `cox` that was killed holds a copy of the key (and
    /// the CLI's staged package one of a package): gone after an hour (a call in progress
    /// elsewhere is younger).
    private func removeAbandonedDirectories() {
        let files = FileManager.default
        for name in (try? files.contentsOfDirectory(atPath: workDirectory)) ?? [] where name.hasPrefix(".ssh-") || name.hasPrefix(".package-") {
            let path = "\(workDirectory)/\(name)"
            if let modified = (try? files.attributesOfItem(atPath: path))?[.modificationDate] as? Date, modified.timeIntervalSinceNow < -3600 {
                try? files.removeItem(atPath: path)
            }
        }
    }

    /// A directory of our own (0700) for one call's files, removed when `body` returns.
    private func withPrivateDirectory<T>(_ body: (String) throws -> T) throws -> T {
        let directory = try Self.makePrivateDirectory(in: workDirectory, prefix: ".ssh-")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        return try body(directory)
    }

    /// A new 0700 directory `parent/PREFIXxxxxxx` (mkdtemp); `.ssh-` and `.package-` ones
    /// left behind by a killed `cox` are swept after an hour.
    public static func makePrivateDirectory(in parent: String, prefix: String) throws -> String {
        var template = Array("\(parent)/\(prefix)XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SSHError.local("cannot create a private directory in \(parent): \(String(cString: strerror(errno)))")
        }
        return String(cString: made)
    }

    /// ssh blocks for as long as the remote command runs (an apt-get install): off the
    /// concurrency pool.
    private static func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
        }
    }
}

/// Reading what ssh and our scripts printed.
enum SSHOutput {
    /// `KEY=value` on a line of its own.
    static func value(of key: String, in output: String) -> String? {
        output.split(whereSeparator: \.isNewline).last { $0.hasPrefix("\(key)=") }
            .map { String($0.dropFirst(key.count + 1)).trimmingCharacters(in: .whitespaces) }
    }

    static func knownHosts(_ text: String) -> [PinnedHostKey] {
        text.split(whereSeparator: \.isNewline).compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count >= 3, !fields[0].hasPrefix("#") else { return nil }
            return PinnedHostKey(host: String(fields[0]), keyType: String(fields[1]), publicKey: String(fields[2]), pinnedAt: 0)
        }
    }

    /// `SHA256:…` as `ssh-keygen -l` prints it.
    static func fingerprint(_ base64Key: String) -> String {
        guard let blob = Data(base64Encoded: base64Key) else { return "unreadable key" }
        return "SHA256:" + Data(SHA256.hash(data: blob)).base64EncodedString().replacingOccurrences(of: "=", with: "")
    }

    /// A failure ssh itself reported before any remote command ran, told apart by what it printed.
    static func failure(_ output: String, status: Int32, target: SSHTarget, pinned: [PinnedHostKey], publicKey: String) -> SSHError {
        if output.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") || output.contains("Host key verification failed") {
            let offered = output.range(of: #"SHA256:[A-Za-z0-9+/]+"#, options: .regularExpression).map { String(output[$0]) }
            return .hostKeyChanged(target: target, pinned: pinned, offered: offered)
        }
        if output.contains("Permission denied") { return .keyRefused(target: target, publicKey: publicKey) }
        let said = lastLines(output, 3)
        return .unreachable(target: target, reason: (said.isEmpty ? "ssh ended without a word" : said)
                                + ((129...192).contains(status) ? " (ssh was killed by signal \(status - 128))" : " (ssh exited \(status))"))
    }

    /// "2026-12-05" of a store time (microseconds).
    static func day(_ micros: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        return formatter.string(from: Date(timeIntervalSince1970: Double(micros) / 1_000_000))
    }

    static func lastLines(_ output: String, _ count: Int) -> String {
        output.split(whereSeparator: \.isNewline).suffix(count).joined(separator: "\n")
    }
}

public enum SSHError: Error, Equatable, CustomStringConvertible {
    case invalidTarget(String, String)
    case hostKeyChanged(target: SSHTarget, pinned: [PinnedHostKey], offered: String?)
    case keyRefused(target: SSHTarget, publicKey: String)
    case passwordRefused(target: SSHTarget)
    case unusablePassword
    case hostKeyUnchecked(target: SSHTarget)
    case hostKeyNotPresented(target: SSHTarget, wanted: String, offered: [String])
    case installedKeyRefused(target: SSHTarget)
    case unreadableFingerprint(String)
    case unreachable(target: SSHTarget, reason: String)
    case remoteFailed(target: SSHTarget, step: String, status: Int32, output: String)
    case local(String)

    public var description: String {
        switch self {
        case .invalidTarget(let text, let why):
            "\"\(text)\" is not USER@HOST[:PORT]: \(why)"
        case .hostKeyChanged(let target, let pinned, let offered):
            "refused: \(target.knownHostsName) presented SSH host key \(offered ?? "of another type") but "
                + "\(pinned.map { "\($0.keyType) \(SSHOutput.fingerprint($0.publicKey))" }.joined(separator: ", ")) "
                + "was pinned for it on \(pinned.first.map { SSHOutput.day($0.pinnedAt) } ?? "first use"). Someone may be "
                + "intercepting the connection; nothing was run there. If the server was really reinstalled, check its new "
                + "key on its console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then `cox ssh-key forget "
                + "\(target.port == 22 ? target.dialHost : "\(target.dialHost):\(target.port)")` and try again"
        case .keyRefused(let target, let publicKey):
            "\(target) refused the controller's SSH key: append this line (`cox ssh-key` prints it) to "
                + "~\(target.user)/.ssh/authorized_keys there:\n\(publicKey)"
        case .passwordRefused(let target):
            "\(target) refused the password (or allows no password login: PasswordAuthentication or "
                + "KbdInteractiveAuthentication in its sshd_config); nothing was run there"
        case .unusablePassword:
            "the password is empty or holds a line break or NUL, which ssh cannot pass on"
        case .hostKeyUnchecked(let target):
            "no host key is pinned for \(target.knownHostsName) yet, and a password must not go to a server whose key "
                + "nobody checked: give its fingerprint (--host-key SHA256:…, or host_key over the API; on its console: "
                + "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), or accept whatever answers (--trust-first-use)"
        case .hostKeyNotPresented(let target, let wanted, let offered):
            "refused: \(target.knownHostsName) presents no host key \(wanted) (it presents \(offered.joined(separator: ", "))). "
                + "Someone may be intercepting the connection; no password was sent"
        case .unreadableFingerprint(let text):
            "\"\(text.prefix(100))\" holds no host key fingerprint: give the SHA256:… that ssh-keygen -lf prints"
        case .installedKeyRefused(let target):
            "the controller's key is in ~\(target.user)/.ssh/authorized_keys on \(target.knownHostsName) but the key login was "
                + "refused there: sshd's StrictModes (a group- or world-writable home or ~/.ssh) or an AuthorizedKeysFile "
                + "elsewhere in its sshd_config"
        case .unreachable(let target, let reason):
            "cannot reach \(target) over SSH: \(reason)"
        case .remoteFailed(let target, let step, let status, let output):
            "\(step) failed on \(target) (exit \(status)):\n\(output)"
        case .local(let message):
            message
        }
    }
}

/// Serves a secret to every reader of a FIFO until stopped: the askpass script reads it from
/// there, so it is never written to a file (a file's blocks would outlive its unlink). A
/// reader takes exactly the secret's length: the feeder may have written it more than once
/// while that reader still held the FIFO open.
final class SecretFeeder: @unchecked Sendable {
    /// Answers only a prompt that asks for a password; a second factor's or anything else's
    /// gets no answer, and ssh gives that method up.
    static func askpassScript(length: Int) -> String {
        """
        #!/bin/sh
        case "$1" in
        *[Pp]assword*) exec head -c \(length) "$(dirname "$0")/password" ;;
        *) exit 1 ;;
        esac

        """
    }

    private let path: String
    private let secret: [UInt8]
    private let lock = NSLock()
    private var stopped = false
    private let finished = DispatchSemaphore(value: 0)

    init(path: String, secret: [UInt8]) throws {
        guard mkfifo(path, 0o600) == 0 else { throw SSHError.local("mkfifo \(path): \(String(cString: strerror(errno)))") }
        _ = signal(SIGPIPE, SIG_IGN) // a reader gone before a write: EPIPE, not the end of this process
        self.path = path
        self.secret = secret
        Thread.detachNewThread { [self] in serve() }
    }

    private var isStopped: Bool { lock.withLock { stopped } }

    private func serve() {
        defer { finished.signal() }
        while true {
            let descriptor = open(path, O_WRONLY | O_CLOEXEC) // waits for a reader
            if descriptor < 0 {
                if errno == EINTR { continue }
                return
            }
            defer { close(descriptor) }
            if isStopped { return }
            secret.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let wrote = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                    if wrote <= 0 { if errno == EINTR { continue }; break }
                    offset += wrote
                }
            }
        }
    }

    /// Releases the thread (it may be waiting for a reader that never comes) and waits for it.
    func stop() {
        let first = lock.withLock { () -> Bool in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        let reader = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        finished.wait()
        if reader >= 0 { close(reader) }
    }
}
