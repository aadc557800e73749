import ArgumentParser
import Coxswain
import Foundation
import PharosRuntime
import PharosSpec

struct RelaysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relays", abstract: "Enroll, list and remove remote relays (the controller dials their tunnel port).",
        subcommands: [Add.self, Enroll.self, List.self, Update.self, Start.self, Stop.self, Remove.self])

    struct Enroll: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign a CSR made by `relay gen-csr` and write relay.crt, ca.crt and device-ca.crt for the relay's config dir.")
        @Option(help: "The CSR file (PEM) printed by `relay gen-csr`.") var csr: String
        @Option(help: "HOST:PORT of the relay's tunnel port the controller dials (port 8444 when omitted).") var endpoint: String
        @Option(help: "The relay's public name: its certificate's SAN and the TLS name clients check.") var hostname: String
        @Option(name: .customLong("public"), help: "HOST:PORT clients reach it on, for join links (default: <hostname>:8443).")
        var publicAddr: String?
        @Option(help: "Name shown in lists (default: the hostname).") var name: String?
        @Option(help: "Directory to write the certificates into (default ./<name>).") var out: String?
        @Option(help: "Days the relay's leaves live (1-365); the relay renews its leaf over its tunnel two thirds into its life, at most 20 days in.")
        var certDays = FleetService.relayCertificateDays
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let controller = try options.open()
                let enrolled = try await controller.service.enrollRelay(csrPEM: try EnrollmentFiles.readCSR(csr), endpoint: endpoint,
                                                                        hostname: hostname, name: name, publicAddr: publicAddr,
                                                                        certificateDays: certDays, by: .cliUser)
                let dir = out ?? enrolled.relay.name
                try EnrollmentFiles.write(["relay.crt": enrolled.certificateChainPEM, "ca.crt": enrolled.rootPEM,
                                           "device-ca.crt": enrolled.deviceCAPEM], into: dir)
                print("enrolled relay \(enrolled.relay.id) (\(enrolled.relay.name)): tunnel \(enrolled.relay.endpoint), clients \(enrolled.relay.publicAddr)")
                print("wrote \(dir)/relay.crt, ca.crt and device-ca.crt: copy them to the relay's config dir (/etc/pharos/relay);")
                print("`cox serve` dials its tunnel within \(min(controller.config.reconcileInterval, 10)) s")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List remote relays.",
            discussion: """
                CERT UNTIL is the expiry of the leaf the relay serves: the one it presented at the controller's last \
                tunnel handshake (a renewed leaf shows there from the relay's next handshake; cox serve redials once \
                to see it). RENEWAL: renewed, "renewed leaf issued, not presented yet", failed: <why the controller \
                refused the relay's last request>, enrolled leaf (never renewed), or not seen yet (not dialed since \
                it was enrolled).
                """)
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let controller = try options.open()
                let relays = try await controller.store.read { tx in try tx.relays().map { ($0, try tx.servedRelayLeaf($0)) } }
                var rows: [[String]] = []
                if controller.config.relayEmbedded {
                    rows.append(["(embedded)", "embedded", controller.config.relayClientListen, "-",
                                 controller.config.relayPublicEndpoint, "-", "in cox serve: re-issued in memory"])
                }
                rows += relays.map { relay, served in
                    var renewal = relay.renewalNote
                    if relay.presentsIssuedLeaf, let served, !relay.certRenewal.hasPrefix("failed") {
                        renewal += ", next due \(PKIFormat.day(served.renewAt))"
                    }
                    return [relay.id, relay.name, relay.publicAddr, relay.endpoint, relay.hostname,
                            PKIFormat.day(StoreClock.date(served?.notAfter ?? relay.certNotAfter)), renewal]
                }
                print(Table.render(header: ["ID", "NAME", "CLIENTS", "TUNNEL", "HOSTNAME", "CERT UNTIL", "RENEWAL"], rows: rows))
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rm", abstract: "Stop dialing a relay and forget it.",
            discussion: """
            A relay added with `cox relays add` is first stopped and disabled on its host over SSH, and its certificates \
            removed there (the package stays). When its host cannot be reached nothing is removed unless --keep-agent is given.
            """)
        @Argument(help: "Relay ID or name.") var relay: String
        @Flag(help: "Remove it from the controller without stopping it over SSH (a dead host).") var keepAgent = false
        @OptionGroup var options: ConfigOption

        func run() async throws {
            if !keepAgent { try await AgentCommands.uninstall(.relay, relay, options) }
            try await userFacing {
                let removed = try await options.open().service.removeRelay(relay, by: .cliUser)
                print("removed relay \(removed.relay.id) (\(removed.relay.name)); its certificates are revoked: the controller no longer dials it and refuses them if they show up again, and devices refuse them from their next sync")
                if removed.expiredJoinLinks > 0 {
                    print("\(removed.expiredJoinLinks) unused join link(s) naming \(removed.relay.publicAddr) no longer work; issue new ones with `cox enroll USER --relay HOST:PORT`")
                }
            }
        }
    }
}

struct EnrollCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
        abstract: "Create a one-time join link (24 h) for a user's new device, optionally as a QR code PNG.")
    @Argument(help: "User ID or e-mail.") var user: String
    @Option(help: "HOST:PORT of the relay the device will use (default: relay.public_endpoint).") var relay: String?
    @Option(help: "Write the link as a 512×512 QR code PNG to this file.") var out: String?
    @OptionGroup var options: ConfigOption

    func run() async throws {
        try await userFacing {
            let controller = try options.open()
            let invite = try await AccountService(fleet: controller.service).invite(user: user, relay: relay, by: .cliUser)
            print(invite.link.url)
            if let out {
                try AtomicFile.write(try JoinQR.png(for: invite.link.url), to: out)  // 0600: it holds the ticket
                FileHandle.standardError.write(Data("wrote the QR code to \(out)\n".utf8))
            }
            FileHandle.standardError.write(Data("single use, valid until \(invite.expiresAt); on the device: caravel enroll '<link>'\n".utf8))
        }
    }
}

struct ProfileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile", abstract: "Export a user's sealed profile.", subcommands: [Export.self])

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write an account-mode .pharos (the sealed bundle as stored: only the device or account key opens it).")
        @Argument(help: "User ID or e-mail.") var user: String
        @Option(help: "Device ID (default: the user's newest device with a sealed profile).") var device: String?
        @Option(help: "Output file (default <user>.pharos).") var out: String?
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let controller = try options.open()
                let (user, device) = (self.user, self.device)
                let (ciphertext, label) = try await controller.store.read { tx -> (Data, String) in
                    let user = try tx.user(user)
                    let devices = try tx.devices(user: user.id).filter { device == nil || $0.id == device }
                    for candidate in devices.reversed() {
                        if let profile = try tx.profile(device: candidate.id) { return (profile.ciphertext, user.email ?? user.id) }
                    }
                    throw CommandFailure(description: device.map { "device \($0) of \(user.email ?? user.id) has no sealed profile" }
                        ?? "\(user.email ?? user.id) has no sealed profile: give the user a profile (cox profiles create) and a device with a key")
                }
                let bundle = try SealedBundle(jsonBytes: Array(ciphertext))
                let envelope = ProfileEnvelope.account(bundle)
                let path = out ?? "\(label).pharos"
                try AtomicFile.write(envelope.encoded(), to: path)
                print("wrote \(path)")
            }
        }
    }
}

extension UsersCommand {
    struct Password: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "passwd", abstract: "Set a user's password for the legacy e-mail + password login (read from stdin).")
        @Argument(help: "User ID or e-mail.") var user: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                if isatty(STDIN_FILENO) == 1 { FileHandle.standardError.write(Data("password: ".utf8)) }
                guard let line = readLine(strippingNewline: true), line.count >= 8 else {
                    throw CommandFailure(description: "give a password of at least 8 characters on stdin")
                }
                let record = try await AccountService(fleet: try options.open().service).setPassword(user: user, password: line, by: .cliUser)
                print("password set for \(record.email ?? record.id)")
            }
        }
    }
}

/// What `cox nodes enroll` and `cox relays enroll` share: the CSR file in, the certificate
/// files out.
enum EnrollmentFiles {
    static func readCSR(_ path: String) throws -> String {
        do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw CommandFailure(description: "cannot read the CSR \(path): \(error.localizedDescription)")
        }
    }

    /// Certificates only (public): written as plain files into `dir`, created when missing.
    static func write(_ files: KeyValuePairs<String, String>, into dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, pem) in files { try pem.write(toFile: "\(dir)/\(name)", atomically: true, encoding: .utf8) }
    }
}
