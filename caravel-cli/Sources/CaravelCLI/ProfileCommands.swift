import ArgumentParser
import CaravelCore
import Foundation
import PharosSpec

struct EnrollCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll", abstract: "Enroll this device with a one-time join link, then sync its profile.")
    @Argument(help: "The join link: pharosvpn://enroll?relay=…&token=…&ca=… (quote it).") var link: String
    @Option(help: "This device's name as the controller shows it (default: the host name).") var name: String?
    @Option(help: "Platform label.") var platform = "linux"
    @OptionGroup var options: StoreOption

    func run() async throws {
        try await failing {
            let store = try options.open()
            let deviceName = name ?? ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "linux"
            switch try await Account(store: store).enroll(link: link, deviceName: deviceName, platform: platform) {
            case .synced(let result):
                print("enrolled as \(deviceName); synced \(result.name) at revision \(result.revision) (\(result.profiles) profile(s))")
                print("next: sudo caravel connect \(result.name)")
            case .noProfileYet(let name):
                print("enrolled as \(deviceName) (\(name)); the controller has no profile for this device yet: run `caravel sync` later")
            }
        }
    }
}

struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Fetch this device's profile from the controller and replace the synced profiles; renew the device certificate when due.",
        discussion: """
            Without FILE, the identity stored at enrollment is used. With FILE (a .pharosid your administrator issued with \
            `cox devices issue`), that identity is checked and, once the sync succeeds, replaces the stored account. It \
            logs in with its certificate, or with --email and the account password. A device without a key of its own \
            needs the account passphrase, a second secret that the relay and the controller never see: on the account's \
            first sync it wraps the new account key (asked twice at a terminal), later it opens it. Secrets are read from \
            the terminal without echo, or from stdin one per line (password first, then passphrase), never from the \
            command line. The device certificate lasts 30 days; once two thirds of it have passed, sync renews it (a fresh key, made \
            here). A device that does not sync for a month must enroll again. A failed renewal does not fail the sync.
            """)
    @Argument(help: "A .pharosid identity file (the legacy path); default: the identity in the store.") var file: String?
    @Option(help: "Log in with this e-mail and the account password instead of the device certificate.") var email: String?
    @Option(help: "With FILE: store the synced profile under this name (default: the identity's alias, else its user).") var name: String?
    @Flag(help: "Read the secrets from stdin, one per line: the account password (with --email), then the passphrase.")
    var passwordStdin = false
    @Flag(help: .hidden) var passphraseStdin = false
    @Flag(help: "With FILE: let it replace the stored account of another fleet or user.") var replace = false
    @Flag(help: "With FILE naming no profile-signing key (an upstream identity): accept the key the first answer carries.")
    var trustFirstSigningKey = false
    @OptionGroup var options: StoreOption

    func run() async throws {
        try await failing {
            let store = try options.open()
            let account = Account(store: store)
            if let file, let mode = Self.loosePermissions(file) {
                FileHandle.standardError.write(Data("caravel: warning: \(file) is readable by others (mode \(String(mode, radix: 8))) and holds this device's private key; delete it once synced\n".utf8))
            }
            // Checked before any secret is asked for; the secrets only when needed.
            let identity = try file.map { file throws(CaravelError) in try Account.checkedIdentity(file: file) } ?? store.identity()?.identity
            var credentials = Account.Credentials(email: email, trustFirstSigningKey: trustFirstSigningKey, replaceAccount: replace)
            if identity != nil {
                if let email { credentials.password = readSecret(prompt: "password for \(email): ") }
                if identity?.encryptionKey == nil {
                    credentials.passphrase = readSecret(prompt: "account passphrase: ")
                    if isatty(STDIN_FILENO) == 1 {
                        credentials.confirmNewPassphrase = { readSecret(prompt: "this account has no key yet: repeat the passphrase to enroll one: ") }
                    }
                }
            }
            let result: Account.SyncResult
            if let file {
                result = try await account.sync(identityFile: file, as: name, credentials)
            } else {
                result = try await account.sync(credentials)
            }
            switch result.previousRevision {
            case nil: print("synced \(result.name): revision \(result.revision), \(result.profiles) profile(s)")
            case let previous? where previous == result.revision: print("\(result.name) is up to date (revision \(result.revision))")
            case let previous?: print("synced \(result.name): revision \(previous) → \(result.revision), \(result.profiles) profile(s)")
            }
            do {
                if case .renewed(let notAfter) = try await account.renewCertificateIfDue() {
                    print("renewed the device certificate: valid until \(notAfter)")
                }
            } catch {
                FileHandle.standardError.write(Data("caravel: warning: device certificate not renewed: \(error)\n".utf8))
            }
        }
    }

    /// The permission bits of `path` when group or others may read it.
    static func loosePermissions(_ path: String) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & 0o077 != 0 else { return nil }
        return info.st_mode & 0o777
    }
}

struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Import a .pharos file (any encryption mode; recognised by content, not name).")
    @Argument(help: "The file.") var file: String
    @Option(help: "Store it under this name (default: the file's name).") var name: String?
    @Flag(help: "Replace an imported profile of the same name.") var replace = false
    @Flag(help: "Read the file's password from stdin instead of prompting.") var passwordStdin = false
    @OptionGroup var options: StoreOption

    func run() async throws {
        try await failing {
            let store = try options.open()
            do {
                let entry = try store.importFile(at: file, as: name, replacing: replace)
                print("imported \(entry.name): \(entry.bundle.profiles.count) profile(s)")
            } catch let error as CaravelError where error == .format(.passwordRequired, file: file) {
                guard let password = readSecret(prompt: "password (for an account-sealed file: the account passphrase) for \(file): ") else {
                    throw CaravelError.format(.passwordRequired, file: file)
                }
                let entry = try store.importFile(at: file, as: name, password: password, replacing: replace)
                print("imported \(entry.name): \(entry.bundle.profiles.count) profile(s)")
            }
        }
    }
}

struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List stored profiles.")
    @Flag(help: "JSON for scripts.") var json = false
    @OptionGroup var options: StoreOption

    func run() async throws {
        try await failing {
            let store = try options.open()
            let (entries, problems) = store.entries()
            if json {
                printJSON(.array(entries.map { entry in
                    .object([
                        JSONMember("name", .string(entry.name)), JSONMember("cloud_synced", .bool(entry.isCloud)),
                        JSONMember("user", .string(entry.bundle.user)), JSONMember("revision", .integer(entry.bundle.revision)),
                        JSONMember("synced_at", entry.marker.map { .string($0.syncedAt) } ?? .null),
                        JSONMember("profiles", .array(entry.bundle.profiles.map { profile in
                            .object([JSONMember("id", .string(profile.id)), JSONMember("name", .string(profile.name)),
                                     JSONMember("protocol", .string(profile.protocolChoice.rawValue)),
                                     JSONMember("nodes", .array(profile.nodes.map { node in
                                         .object([JSONMember("name", .string(node.name)), JSONMember("region", .string(node.region)),
                                                  JSONMember("ips", .array(node.endpoints.map { .string($0) }))])
                                     }))])
                        })),
                    ])
                }))
            } else if entries.isEmpty {
                print("no profiles stored in \(store.directory): `caravel enroll '<link>'` or `caravel import <file>`")
            } else {
                for entry in entries {
                    let origin = entry.marker.map { "synced \($0.syncedAt), revision \($0.revision)" } ?? "imported"
                    print("\(entry.name)  (\(origin))")
                    for profile in entry.bundle.profiles {
                        print("  \(profile.name)  \(profile.protocolChoice.rawValue)  nodes: \(profile.nodes.map(\.name).joined(separator: ", "))")
                    }
                }
            }
            for problem in problems { FileHandle.standardError.write(Data("warning: \(problem)\n".utf8)) }
        }
    }
}

struct InspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect", abstract: "Show a stored profile: nodes, endpoints, protocols (no private keys).")
    @Argument(help: "Profile name (see `caravel list`).") var name: String
    @OptionGroup var options: StoreOption

    func run() async throws {
        try await failing {
            let entry = try options.open().entry(name)
            let bundle = entry.bundle
            print("\(entry.name): user \(bundle.user), fleet \(bundle.fleetID), revision \(bundle.revision), expires \(bundle.expiresAt)")
            if let marker = entry.marker { print("synced \(marker.syncedAt) via \(marker.relay)") }
            for profile in bundle.profiles {
                print("profile \(profile.name) (\(profile.id)): \(profile.protocolChoice.rawValue), MTU \(profile.mtu ?? ConnectPlan.defaultMTU)")
                if let path = profile.path { print("  path \(path.name): \(path.hops.map { "\($0.name) (\($0.role))" }.joined(separator: " → "))") }
                for node in profile.nodes {
                    print("  node \(node.name) [\(node.region)]: \(node.endpoints.joined(separator: ", "))")
                    for proto in node.protocols {
                        switch proto {
                        case .amneziaWG(let p):
                            let pools = p.endpoints.map { "\($0.ip):\($0.portMin == $0.portMax ? "\($0.portMin)" : "\($0.portMin)-\($0.portMax)")" }
                            print("    amneziawg: address \(p.address), server key \(p.publicKey), endpoints \(pools.joined(separator: ", "))\(p.obfuscation.isEmpty ? "" : ", obfuscated")")
                        case .xrayReality(let p):
                            print("    xray-reality: sni \(p.serverName), server key \(p.publicKey), endpoints \(p.endpoints.map { "\($0.ip):\($0.portMin)" }.joined(separator: ", "))")
                        }
                    }
                }
            }
        }
    }
}

struct RemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a stored profile.")
    @Argument(help: "Profile name.") var name: String
    @OptionGroup var options: StoreOption

    func run() async throws {
        try await failing {
            try options.open().remove(name)
            print("removed \(name)")
        }
    }
}

struct LogoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logout", abstract: "Forget the account: remove every synced profile and this device's identity.")
    @OptionGroup var options: StoreOption

    func run() async throws {
        try await failing {
            let removed = try options.open().logout()
            print(removed.isEmpty ? "logged out (no synced profiles were stored)" : "logged out; removed \(removed.joined(separator: ", "))")
        }
    }
}
