import ArgumentParser
import Coxswain
import Foundation
import PharosRuntime
import PharosSpec

struct UsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users", abstract: "Add, list and remove users; set a password.",
        subcommands: [Add.self, List.self, Remove.self, Password.self, ResetKeys.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a user.")
        @Argument(help: "Display name.") var name: String
        @Option(help: "E-mail address (unique; used to refer to the user).") var email: String?
        @Flag(help: "An administrator: may log in to the admin API and web UI once given a password (cox users passwd).")
        var admin = false
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let user = try await options.open().service.addUser(name: name, email: email, role: admin ? .admin : .user, by: .cliUser)
                print("added \(admin ? "admin" : "user") \(user.id)\(user.email.map { " <\($0)>" } ?? "")")
                if admin { print("give them a password: cox users passwd \(user.email ?? user.id)") }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let rows = try await options.open().store.read { tx in
                    try tx.users().map { ($0, try tx.devices(user: $0.id).count) }
                }
                print(Table.render(header: ["ID", "NAME", "EMAIL", "ROLE", "STATUS", "DEVICES"], rows: rows.map { user, devices in
                    [user.id, user.name, user.email ?? "", user.role.rawValue, user.status.rawValue, "\(devices)"]
                }))
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a user with their devices and peers.")
        @Argument(help: "User ID or e-mail.") var user: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await PushReport.commit(options, { try await $0.service.removeUser(user, by: .cliUser) }) { "removed user \($0.id)" }
        }
    }

    struct ResetKeys: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset-keys",
            abstract: "Clear a user's account key (lost passphrase, leaked key); the next sync enrolls a new one.")
        @Argument(help: "User ID or e-mail.") var user: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let record = try await options.open(pushing: false).service.resetAccountKeys(user: user, by: .cliUser)
                print("cleared the account key of \(record.email ?? record.id); their next sync enrolls a new one")
            }
        }
    }
}

struct DevicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices", abstract: "Add, import, list and remove devices.",
        subcommands: [Add.self, Issue.self, Import.self, List.self, Remove.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a device: tunnel address, peers on its user's nodes (pushed now), sealed bundle.")
        @Argument(help: "User ID or e-mail.") var user: String
        @Option(help: "Device name (unique per user).") var name: String
        @Option(help: "Platform label (linux, ios, ...).") var platform = ""
        @Option(help: "The device's X25519 public key (standard base64, 32 bytes) to seal its bundle to; default: the user's key.")
        var encryptionKey: String?
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                var key: [UInt8]?
                if let encryptionKey {
                    guard let bytes = Data(base64Encoded: encryptionKey.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                        throw ValidationError("--encryption-key is not base64")
                    }
                    key = Array(bytes)
                }
                let controller = try options.open()
                let result = try await controller.service.addDevice(user: user, name: name, platform: platform,
                                                                    encryptionKey: key, by: .cliUser)
                let sealed = try await controller.store.read { tx in try tx.profile(device: result.value.id) != nil }
                print("added device \(result.value.id) at \(result.value.tunnelIP) on \(result.affectedNodes.count) node(s)")
                if !sealed { print("  no bundle sealed: neither the device nor its user has an encryption key yet") }
                try await PushReport.report(result.pushes, from: controller)
            }
        }
    }

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a device with a key made here and write its .pharosid (the legacy path; prefer `cox enroll`).",
            discussion: """
            The controller makes the device's key and 30-day certificate and writes them with the fleet's CA, the relay \
            and the profile-signing key into a .pharosid (0600) to move to the device out of band; the controller keeps no \
            copy of the key. On the device, `caravel sync FILE.pharosid` logs in with that certificate (or --email and the \
            user's password, see `cox users passwd`), enrolls the user's account key if there is none yet, and fetches the \
            profile sealed to it. A join link (`cox enroll`) is safer: the key never leaves the device.
            """)
        @Argument(help: "User ID or e-mail.") var user: String
        @Option(help: "Device name (unique per user; a suffix is added when taken).") var name: String
        @Option(help: "Platform label (linux, ios, ...).") var platform = ""
        @Option(help: "The relay the device syncs through, HOST:PORT (default relay.public_endpoint).") var relay: String?
        @Option(help: "The relay's TLS name (default: the enrolled relay's hostname for --relay, else the embedded relay's).")
        var serverName: String?
        @Option(help: "Output file (default <name>.pharosid); an existing file is not replaced.") var out: String?
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let path = out ?? "\(name.replacingOccurrences(of: "/", with: "_")).pharosid"
                // Claimed before anything is issued (O_EXCL: never over another device's key),
                // and given back when issuing fails.
                let claim = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                guard claim >= 0 else {
                    let reason = errno == EEXIST ? "exists and may hold another device's key; remove it or pass --out"
                        : "cannot be created: \(String(cString: strerror(errno)))"
                    throw CommandFailure(description: "\(path) \(reason)")
                }
                close(claim)
                let controller: Controller, issued: AccountService.Issued
                do {
                    controller = try options.open()
                    issued = try await AccountService(fleet: controller.service).issueDevice(
                        user: user, name: name, platform: platform, relay: relay, serverName: serverName, by: .cliUser)
                } catch {
                    unlink(path)
                    throw error
                }
                do { try AtomicFile.write(issued.identity.encoded(), to: path, mode: 0o600) } catch {
                    throw CommandFailure(description: "device \(issued.device.id) was added but \(path) could not be written (\(error)); remove it with `cox devices rm \(issued.device.id)` and issue again")
                }
                print("issued device \(issued.device.id) (\(issued.device.name)) at \(issued.device.tunnelIP); wrote \(path) (0600, holds its private key)")
                print("next, on the device: caravel sync \((path as NSString).lastPathComponent) [--email \(issued.identity.user.isEmpty ? "USER" : issued.identity.user)]")
                try await PushReport.report(issued.pushes, from: controller)
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add many devices from a CSV file: user,name[,platform[,encryption_key]] per line (# comments).",
            discussion: """
            Each device is its own transaction, so an interrupted import leaves every device it reported
            complete (peers, bundle, audit row) and nothing half-made; run it again with the remaining lines.
            Affected nodes are pushed every 100 devices and at the end; `cox serve` heals anything missed.
            """)
        @Argument(help: "The CSV file.") var file: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let text: String
                do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
                    throw CommandFailure(description: "cannot read \(file): \(error.localizedDescription)")
                }
                var lines: [(number: Int, fields: [String])] = []
                for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                    let line = raw.trimmingCharacters(in: .whitespaces)
                    if line.isEmpty || line.hasPrefix("#") { continue }
                    let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                    guard (2...4).contains(fields.count), !fields[0].isEmpty, !fields[1].isEmpty else {
                        throw CommandFailure(description: "\(file):\(index + 1): expected user,name[,platform[,encryption_key]]")
                    }
                    if fields.count == 4, !fields[3].isEmpty, Data(base64Encoded: fields[3])?.count != 32 {
                        throw CommandFailure(description: "\(file):\(index + 1): encryption_key is not 32 bytes of base64")
                    }
                    lines.append((index + 1, fields))
                }
                let controller = try options.open(pushing: false)
                var pending = Set<String>()
                var added = 0
                for (number, fields) in lines {
                    let key = fields.count == 4 && !fields[3].isEmpty ? Data(base64Encoded: fields[3]).map(Array.init) : nil
                    do {
                        let result = try await controller.service.addDevice(user: fields[0], name: fields[1],
                                                                            platform: fields.count > 2 ? fields[2] : "",
                                                                            encryptionKey: key, by: .cliUser)
                        pending.formUnion(result.affectedNodes)
                        added += 1
                        print("\(file):\(number): added \(result.value.id) at \(result.value.tunnelIP)")
                    } catch {
                        print("\(file):\(number): stopped: \(error); \(added) device(s) were added before this line")
                        try await PushReport.push(pending, with: controller)
                        throw ExitCode(1)
                    }
                    if added % 100 == 0 {
                        try await PushReport.push(pending, with: controller)
                        pending.removeAll()
                    }
                }
                try await PushReport.push(pending, with: controller)
                print("imported \(added) device(s)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List devices.")
        @Option(help: "Only this user's (ID or e-mail).") var user: String?
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let user = self.user
                let rows = try await options.open().store.read { tx in
                    let userID = try user.map { try tx.user($0).id }
                    return try tx.devices(user: userID).map { ($0, try tx.peers(device: $0.id).count, try tx.profile(device: $0.id)?.revision) }
                }
                print(Table.render(header: ["ID", "USER", "NAME", "PLATFORM", "TUNNEL IP", "PEERS", "BUNDLE"], rows: rows.map { d, peers, rev in
                    [d.id, d.userID, d.name, d.platform, d.tunnelIP, "\(peers)", rev.map { "r\($0)" } ?? "-"]
                }))
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a device; its peers leave every node.")
        @Argument(help: "Device ID.") var device: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await PushReport.commit(options, { try await $0.service.removeDevice(device, by: .cliUser) }) { "removed device \($0.id)" }
        }
    }
}

struct ProfilesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profiles", abstract: "Create, list and remove profile specs (what a user's devices may use).",
        subcommands: [Create.self, List.self, Remove.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a profile spec; the user's devices are re-provisioned and pushed.")
        @Argument(help: "Profile name (unique per user).") var name: String
        @Option(help: "User ID or e-mail.") var user: String
        @Option(help: "Node ID or name (egress = this node).") var node: String?
        @Option(help: "Path ID or name (a cascade, cox paths add): enter at its first node, leave at its last; AmneziaWG only.") var path: String?
        @Option(help: "Only this device of the user.") var device: String?
        @Option(help: "Comma-separated subset of the node's entry IPs.") var entryIps: String?
        @Option(help: "amneziawg, xray-reality or both.") var `protocol` = "amneziawg"
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                guard let proto = ProfileProtocol(rawValue: self.protocol) else {
                    throw ValidationError("--protocol must be amneziawg, xray-reality or both")
                }
                guard (node == nil) != (path == nil) else { throw ValidationError("give exactly one of --node and --path") }
                let controller = try options.open()
                let ips = (entryIps ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                let result = try await controller.service.createProfileSpec(user: user, name: name, node: node, path: path, device: device,
                                                                            entryIPs: ips, protocol: proto, by: .cliUser)
                print("created profile \(result.value.id)")
                try await PushReport.report(result.pushes, from: controller)
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List profile specs.")
        @Option(help: "Only this user's (ID or e-mail).") var user: String?
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let user = self.user
                let specs = try await options.open().store.read { tx in try tx.profileSpecs(user: try user.map { try tx.user($0).id }) }
                print(Table.render(header: ["ID", "USER", "NAME", "NODE/PATH", "DEVICE", "PROTOCOL", "ENTRY IPS"], rows: specs.map {
                    [$0.id, $0.userID, $0.name, $0.nodeID ?? $0.pathID ?? "", $0.deviceID ?? "all", $0.protocol.rawValue, $0.entryIPs]
                }))
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove a profile spec; re-provisions and pushes.")
        @Argument(help: "Profile ID.") var profile: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await PushReport.commit(options, { try await $0.service.removeProfileSpec(profile, by: .cliUser) }) { "removed profile \($0.id)" }
        }
    }
}
