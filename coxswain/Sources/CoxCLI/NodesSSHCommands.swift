import ArgumentParser
import Coxswain
import Foundation
import PharosRuntime
import PharosSpec

/// `cox nodes add|update|start|stop`: a node's agent installed and driven over SSH.
extension NodesCommand {
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Install pharos-node on a server over SSH, enroll it and start it.",
            discussion: """
            Logs in as USER (root, or a user with passwordless sudo) with the controller's own key (`cox ssh-key` \
            prints the line for the server's authorized_keys) and pins the server's host key at first use; a changed \
            host key is refused. Uploads and installs the package, has the server make its key and CSR (the key never \
            leaves it), signs it, installs node.crt and ca.crt and a unit drop-in with the ports given here, enables and \
            starts pharos-node, and waits until the node answers GetStatus.
            """)

        @Argument(help: "USER@HOST[:PORT] to log in to (user root and port 22 when omitted).") var target: String
        @Option(help: "The pharos-node .deb to install (make deb writes it to dist/).") var package: String
        @Option(help: "HOST:PORT the controller dials (default: the SSH host on 8444); the node listens on its port.") var addr: String?
        @Option(help: "Name shown in lists (default: the host).") var name: String?
        @Option(help: "Region label.") var region = ""
        @Option(help: "UDP port clients reach AmneziaWG on.") var wgPort = PharosPorts.amneziaWG
        @Option(help: "TCP port the node listens on for the controller, when a port-forwarding NAT maps --addr's port to another (default: --addr's port).")
        var listenPort: Int?
        @Option(help: "Lifetime of the node's leaves in days (renewed at two thirds of it).")
        var certDays = FleetService.nodeCertificateDays
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let target = try SSHTarget.parse(self.target)
                let read = try PackageArgument.read(package, expecting: .node)
                let onboarding = try AgentCommands.onboarding(options)
                let added = try await read.staged(in: onboarding.controller) { path in
                    try await onboarding.addNode(
                        AgentOnboarding.NodeRequest(target: target, packagePath: path, name: name, region: region, controlAddress: addr,
                                                    wgPort: wgPort, listenPort: listenPort, certificateDays: certDays), by: .cliUser)
                }
                print("added node \(added.node.id) (\(added.node.name)) at \(added.node.controlAddr): pharos-node \(added.packageVersion) on \(target)")
                guard let agent = added.agentVersion else {
                    print("  it does not answer GetStatus yet: \(added.answerError ?? "no answer")")
                    print("  (its firewall must let the controller reach \(added.node.controlAddr)); `cox nodes status \(added.node.name)` once it does")
                    throw ExitCode(1)
                }
                print("  answered GetStatus: \(agent); amneziawg key \(added.node.wgPublicKey ?? "-"); devices can be placed on it")
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Install a newer pharos-node package on a node added with `cox nodes add` (over SSH).")
        @Argument(help: "Node ID or name.") var node: String
        @Option(help: "The pharos-node .deb to install.") var package: String
        @OptionGroup var options: ConfigOption

        func run() async throws { try await AgentCommands.update(.node, node, package: package, options) }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start a node's agent (added with `cox nodes add`) over SSH.")
        @Argument(help: "Node ID or name.") var node: String
        @OptionGroup var options: ConfigOption

        func run() async throws { try await AgentCommands.setRunning(.node, node, true, options) }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop a node's agent (added with `cox nodes add`) over SSH; its tunnels go down until `cox nodes start`.")
        @Argument(help: "Node ID or name.") var node: String
        @OptionGroup var options: ConfigOption

        func run() async throws { try await AgentCommands.setRunning(.node, node, false, options) }
    }
}

extension RelaysCommand {
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Install pharos-relay on a server over SSH, enroll it and start it; `cox serve` dials its tunnel.",
            discussion: """
            As `cox nodes add`: the controller's own key, the host key pinned at first use, the package uploaded and \
            installed, the relay's key and CSR made there (relay gen-csr), relay.crt, ca.crt and device-ca.crt installed, \
            and a unit drop-in with the client and tunnel ports given here.
            """)
        @Argument(help: "USER@HOST[:PORT] to log in to (user root and port 22 when omitted).") var target: String
        @Option(help: "The pharos-relay .deb to install.") var package: String
        @Option(help: "The relay's public name: its certificate's SAN and the TLS name clients check.") var hostname: String
        @Option(help: "HOST:PORT of its tunnel port the controller dials (default: the SSH host on 8444).") var endpoint: String?
        @Option(name: .customLong("public"), help: "HOST:PORT clients reach it on (default: <hostname>:8443).") var publicAddr: String?
        @Option(help: "Name shown in lists (default: the hostname).") var name: String?
        @Option(help: "Port the relay listens on for clients, when a port-forwarding NAT maps --public's port to another (default: --public's port).")
        var clientListenPort: Int?
        @Option(help: "Port the relay listens on for the controller's tunnel, when a NAT maps --endpoint's port to another (default: --endpoint's port).")
        var tunnelListenPort: Int?
        @Option(help: "Days the relay's leaves live (1-365).") var certDays = FleetService.relayCertificateDays
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let target = try SSHTarget.parse(self.target)
                let read = try PackageArgument.read(package, expecting: .relay)
                let onboarding = try AgentCommands.onboarding(options)
                let added = try await read.staged(in: onboarding.controller) { path in
                    try await onboarding.addRelay(
                        AgentOnboarding.RelayRequest(target: target, packagePath: path, hostname: hostname, endpoint: endpoint,
                                                     publicAddress: publicAddr, name: name, clientListenPort: clientListenPort,
                                                     tunnelListenPort: tunnelListenPort, certificateDays: certDays), by: .cliUser)
                }
                print("added relay \(added.relay.id) (\(added.relay.name)): pharos-relay \(added.packageVersion) on \(target), running;"
                      + " tunnel \(added.relay.endpoint), clients \(added.relay.publicAddr)")
                print("  `cox serve` dials its tunnel within \(min(onboarding.controller.config.reconcileInterval, 10)) s")
            }
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Install a newer pharos-relay package on a relay added with `cox relays add` (over SSH).")
        @Argument(help: "Relay ID or name.") var relay: String
        @Option(help: "The pharos-relay .deb to install.") var package: String
        @OptionGroup var options: ConfigOption

        func run() async throws { try await AgentCommands.update(.relay, relay, package: package, options) }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start a relay (added with `cox relays add`) over SSH.")
        @Argument(help: "Relay ID or name.") var relay: String
        @OptionGroup var options: ConfigOption

        func run() async throws { try await AgentCommands.setRunning(.relay, relay, true, options) }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop a relay (added with `cox relays add`) over SSH.")
        @Argument(help: "Relay ID or name.") var relay: String
        @OptionGroup var options: ConfigOption

        func run() async throws { try await AgentCommands.setRunning(.relay, relay, false, options) }
    }
}

/// `--package FILE`, checked and read before `cox` becomes the state directory's owner (run
/// with sudo from a home directory, that user could not read it), then staged in a private
/// directory of the state directory for as long as the command runs.
struct PackageArgument {
    let name: String
    let bytes: Data

    static func read(_ path: String, expecting kind: AgentKind) throws -> PackageArgument {
        let package = try DebianPackage.inspect(path, expecting: kind.package)
        guard let bytes = FileManager.default.contents(atPath: path) else { throw CommandFailure(description: "\(path) cannot be read") }
        return PackageArgument(name: "\(package.name)_\(package.version).deb", bytes: bytes)
    }

    func staged<T>(in controller: Controller, _ body: (String) async throws -> T) async throws -> T {
        let directory = try SSHClient.makePrivateDirectory(in: controller.ssh.workDirectory, prefix: ".package-")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/\(name)"
        guard FileManager.default.createFile(atPath: path, contents: bytes, attributes: [.posixPermissions: 0o600]) else {
            throw CommandFailure(description: "cannot stage the package in \(directory)")
        }
        return try await body(path)
    }
}

/// What `cox nodes ...` and `cox relays ...` share.
enum AgentCommands {
    static func onboarding(_ options: ConfigOption) throws -> AgentOnboarding {
        let controller = try options.open()
        return AgentOnboarding(controller: controller, ssh: controller.ssh, progress: { print("  \($0)") })
    }

    static func update(_ kind: AgentKind, _ reference: String, package: String, _ options: ConfigOption) async throws {
        try await userFacing {
            let read = try PackageArgument.read(package, expecting: kind)
            let agents = try onboarding(options)
            let updated = try await read.staged(in: agents.controller) { path in
                try await agents.update(kind, reference, packagePath: path, by: .cliUser)
            }
            let change = updated.from == updated.to ? "already at \(updated.to)" : "\(updated.from.isEmpty ? "none" : updated.from) -> \(updated.to)"
            print("\(updated.name): pharos-\(kind.rawValue) \(change)")
            guard updated.wasRunning else {
                print("  its unit was not running and stays stopped (`cox \(kind.rawValue)s start \(updated.name)`)")
                return
            }
            guard kind == .node else { print("  running again"); return }
            guard let agent = updated.agentVersion else {
                print("  it does not answer GetStatus again: \(updated.answerError ?? "no answer")")
                throw ExitCode(1)
            }
            print("  answered GetStatus: \(agent)")
        }
    }

    static func setRunning(_ kind: AgentKind, _ reference: String, _ running: Bool, _ options: ConfigOption) async throws {
        try await userFacing {
            let switched = try await onboarding(options).setRunning(kind, reference, running, by: .cliUser)
            guard running else { print("\(switched.name): stopped"); return }
            guard kind == .node else { print("\(switched.name): started"); return }
            guard let agent = switched.agentVersion else {
                print("\(switched.name): started, but it does not answer GetStatus: \(switched.answerError ?? "no answer")")
                throw ExitCode(1)
            }
            print("\(switched.name): started; answered GetStatus: \(agent)")
        }
    }

    /// The remote half of `rm`: stop and disable the agent there first (nothing when it was
    /// enrolled by hand); when its host cannot be reached nothing is removed.
    static func uninstall(_ kind: AgentKind, _ reference: String, _ options: ConfigOption) async throws {
        try await userFacing {
            do {
                if let target = try await onboarding(options).uninstall(kind, reference, by: .cliUser) {
                    print("stopped and disabled pharos-\(kind.rawValue) on \(target); its certificates are removed there")
                }
            } catch let error as SSHError {
                throw CommandFailure(description: "\(error)\nnothing was removed; --keep-agent removes the \(kind.rawValue) from the controller anyway")
            }
        }
    }
}

struct SSHKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssh-key", abstract: "The controller's own SSH key and the host keys it pinned.",
        subcommands: [Show.self, Install.self, Pins.self, Forget.self], defaultSubcommand: Show.self)

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Print the controller's SSH public key (made and audited the first time), for a server's ~/.ssh/authorized_keys.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                print(try await options.open().ssh.identity(by: .cliUser).publicKey)
            }
        }
    }

    struct Install: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "install",
            abstract: "Log in once with a password (read from the terminal or stdin, never stored) and add the controller's key to the user's authorized_keys.",
            discussion: "Upstream's `cox servers add`. The host key is pinned at this first login; the key login is then tried. Afterwards `cox nodes add` and `cox relays add` need no password.")
        @Argument(help: "USER@HOST[:PORT] (port 22 by default).") var target: String
        @Option(help: "For a host with no pinned key: its host key's fingerprint, read on its console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub); the password goes only to a server presenting it.")
        var hostKey: String?
        @Flag(help: "For a host with no pinned key: send the password to whatever key answers (trust on first use).")
        var trustFirstUse = false
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let target = try SSHTarget.parse(self.target)
                let first = try SSHClient.FirstHostKey.from(hostKey: hostKey, trustFirstUse: trustFirstUse)
                guard let password = SecretInput.readLine(prompt: "\(target)'s password (used once, not stored): ") else {
                    throw CommandFailure(description: "no password on stdin")
                }
                let installed = try await options.open().ssh.installKey(target, password: password, firstHostKey: first, by: .cliUser)
                print(installed.wasThere ? "the controller's key was already in \(target.user)'s authorized_keys on \(target.host); the key login works"
                                         : "added the controller's key to \(target.user)'s authorized_keys on \(target.host); the key login works")
                if !installed.canBecomeRoot {
                    print("  \(target.user) is not root and cannot run `sudo -n`: `cox nodes add` and `cox relays add` need root or passwordless sudo there")
                }
            }
        }
    }

    struct Pins: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "pins", abstract: "List the host keys pinned at first use.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let pins = try await options.open().store.read { tx in try tx.pinnedHostKeys() }
                print(Table.render(header: ["HOST", "TYPE", "FINGERPRINT", "PINNED"],
                                   rows: pins.map { [$0.host, $0.keyType, $0.fingerprint, PKIFormat.day(Date(timeIntervalSince1970: Double($0.pinnedAt) / 1e6))] }))
            }
        }
    }

    struct Forget: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "forget",
            abstract: "Drop a host's pinned key, after checking its new key on its console; the next login pins the key it presents.")
        @Argument(help: "HOST or HOST:PORT (as in cox nodes add).") var host: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await userFacing {
                let target = try SSHTarget.parse(host)
                let name = target.knownHostsName
                guard try await options.open().ssh.forgetPins(of: name, by: .cliUser) else { throw CommandFailure(description: "no host key is pinned for \(name)") }
                print("forgot the pinned key of \(name); the next login pins the key it presents")
            }
        }
    }
}
