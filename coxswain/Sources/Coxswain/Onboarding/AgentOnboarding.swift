import Foundation
import Logging
import PharosRuntime
import PharosSpec

/// The two agents the controller installs over SSH, and what differs between them.
public enum AgentKind: String, Sendable {
    case node
    case relay

    public var package: String { "pharos-\(rawValue)" }
    var unit: String { "pharos-\(rawValue).service" }
    var configDirectory: String { "/etc/pharos/\(rawValue)" }
    /// The drop-in cox writes and owns: the ports the agent was enrolled with, as its
    /// environment overrides (its YAML config stays the operator's).
    var dropIn: String { "/etc/systemd/system/pharos-\(rawValue).service.d/50-cox.conf" }
    /// Makes the agent's key once (it never leaves the host) and prints a CSR for it.
    var generateCSR: String {
        switch self {
        case .node: "pharos-node gen-csr --config-dir \(configDirectory)"
        case .relay: "relay gen-csr --config-dir \(configDirectory)"
        }
    }
    /// The group that reads the certificates (the relay runs as its own user).
    var certificateGroup: String { self == .node ? "root" : "pharos-relay" }
    var sshTable: String { "\(rawValue)_ssh" }
    var sshKey: String { "\(rawValue)_id" }
}

/// Installs and drives an agent over SSH (`cox nodes add|update|start|stop`, `cox relays
/// add|update|start|stop`, and the remote half of their `rm`), upstream's §5.2–5.3 with our
/// packages: upload the .deb and install it, have the host make its key and CSR (the key never
/// leaves it), sign the CSR, install the certificates and a unit drop-in with the ports the
/// agent was enrolled with, enable and start the unit, and (a node) wait until it answers
/// GetStatus over mTLS. SSH is for installation only: the controller drives a node over mTLS
/// gRPC and a relay over its tunnel, never over SSH.
public struct AgentOnboarding: Sendable {
    public let controller: Controller
    public let ssh: SSHClient
    /// Each step as it starts ("uploading pharos-node 0.9.1 to root@203.0.113.7").
    public let progress: @Sendable (String) -> Void
    /// How long a started node has to answer GetStatus.
    public var answerTimeout: Duration = .seconds(45)

    public init(controller: Controller, ssh: SSHClient, progress: @escaping @Sendable (String) -> Void = { _ in }) {
        self.controller = controller
        self.ssh = ssh
        self.progress = progress
    }

    // MARK: nodes

    public struct NodeRequest: Sendable {
        public var target: SSHTarget
        public var packagePath: String
        public var name: String?
        public var region: String
        /// HOST:PORT the controller dials; default the SSH host on 8444.
        public var controlAddress: String?
        public var wgPort: Int
        /// The TCP port the node listens on for the controller when it differs from the
        /// port of `controlAddress` (a port-forwarding NAT in front of it); default that port.
        public var listenPort: Int?
        public var certificateDays: Int

        public init(target: SSHTarget, packagePath: String, name: String? = nil, region: String = "", controlAddress: String? = nil,
                    wgPort: Int = PharosPorts.amneziaWG, listenPort: Int? = nil, certificateDays: Int = FleetService.nodeCertificateDays) {
            self.listenPort = listenPort
            self.target = target
            self.packagePath = packagePath
            self.name = name
            self.region = region
            self.controlAddress = controlAddress
            self.wgPort = wgPort
            self.certificateDays = certificateDays
        }
    }

    public struct AddedNode: Sendable {
        public var node: NodeRecord
        public var packageVersion: String
        /// The agent's version as it answered GetStatus; nil when it did not answer in time.
        public var agentVersion: String?
        public var answerError: String?
    }

    /// Installs, enrolls and starts a node. Refused before anything is done remotely when the
    /// package is not pharos-node's or the name or address is taken; when the certificates
    /// cannot be installed the enrollment is undone (the node row removed, its leaf revoked).
    public func addNode(_ request: NodeRequest, by actor: AuditActor) async throws -> AddedNode {
        let package = try DebianPackage.inspect(request.packagePath, expecting: AgentKind.node.package)
        try Self.busy.claim(request.target.knownHostsName)
        defer { Self.busy.release(request.target.knownHostsName) }
        let address = try FleetService.address(request.controlAddress ?? "\(request.target.dialHost):\(PharosPorts.nodeControl)",
                                               defaultPort: PharosPorts.nodeControl, flag: "--addr")
        let name = request.name ?? address.host
        guard (1...65535).contains(request.wgPort) else { throw OnboardingError.badPort(request.wgPort, flag: "--wg-port") }
        let listenPort = try Self.port(request.listenPort ?? address.port, flag: "--listen-port")
        try await controller.store.read { tx in
            for node in try tx.nodes() {
                if node.name == name { throw OnboardingError.taken("a node is already named \(name)") }
                if node.controlAddr == address.description {
                    throw OnboardingError.taken("node \(node.name) is already enrolled at \(address.description)")
                }
            }
        }
        let (installed, csr) = try await prepare(.node, package, on: request.target, by: actor)
        let enrolled = try await controller.service.enrollNode(
            csrPEM: csr, controlAddress: address.description, name: name, region: request.region, wgPort: request.wgPort,
            certificateDays: request.certificateDays, installedOver: (request.target, installed), by: actor)
        progress("signed node \(enrolled.node.id) (\(enrolled.node.name)); installing its certificates and starting \(AgentKind.node.unit)")
        do {
            try await installCertificates(.node, on: request.target,
                                          files: ["node.crt": enrolled.certificateChainPEM, "ca.crt": enrolled.rootPEM],
                                          environment: ["NODE_CONTROL_LISTEN_ADDR": ":\(listenPort)",
                                                        "NODE_DATAPLANE_LISTEN_PORT": "\(request.wgPort)"], by: actor)
        } catch {
            throw await undo(.node, id: enrolled.node.id, name: enrolled.node.name, on: request.target, cause: error, by: actor)
        }
        progress("waiting for \(enrolled.node.name) to answer GetStatus at \(enrolled.node.controlAddr)")
        let answer = await waitForAnswer(node: enrolled.node.id)
        let node = try await controller.store.read { tx in try tx.node(enrolled.node.id) }
        return AddedNode(node: node, packageVersion: installed, agentVersion: answer.version, answerError: answer.error)
    }

    /// Hosts an `add` is working on in this process: a second one for the same host (a double
    /// click on the Servers page, two API calls) is refused instead of running beside it, where
    /// the second `gen-csr` could meet the first one's key half made.
    static let busy = BusyHosts()

    final class BusyHosts: @unchecked Sendable {
        private let lock = NSLock()
        private var hosts: Set<String> = []

        func claim(_ host: String) throws {
            try lock.withLock {
                guard hosts.insert(host).inserted else { throw OnboardingError.busy(host) }
            }
        }

        func release(_ host: String) { _ = lock.withLock { hosts.remove(host) } }
    }

    static func port(_ port: Int, flag: String) throws -> Int {
        guard (1...65535).contains(port) else { throw OnboardingError.badPort(port, flag: flag) }
        return port
    }

    // MARK: relays

    public struct RelayRequest: Sendable {
        public var target: SSHTarget
        public var packagePath: String
        /// The relay's public name (its certificate's SAN).
        public var hostname: String
        /// HOST:PORT of its tunnel port the controller dials; default the SSH host on 8444.
        public var endpoint: String?
        /// HOST:PORT clients reach it on; default HOSTNAME:8443.
        public var publicAddress: String?
        public var name: String?
        /// The ports the relay listens on when they differ from those of `publicAddress` and
        /// `endpoint` (a port-forwarding NAT in front of it); default those ports.
        public var clientListenPort: Int?
        public var tunnelListenPort: Int?
        public var certificateDays: Int

        public init(target: SSHTarget, packagePath: String, hostname: String, endpoint: String? = nil, publicAddress: String? = nil,
                    name: String? = nil, clientListenPort: Int? = nil, tunnelListenPort: Int? = nil,
                    certificateDays: Int = FleetService.relayCertificateDays) {
            self.clientListenPort = clientListenPort
            self.tunnelListenPort = tunnelListenPort
            self.target = target
            self.packagePath = packagePath
            self.hostname = hostname
            self.endpoint = endpoint
            self.publicAddress = publicAddress
            self.name = name
            self.certificateDays = certificateDays
        }
    }

    public struct AddedRelay: Sendable {
        public var relay: RelayRecord
        public var packageVersion: String
    }

    /// Installs, enrolls and starts a relay; `cox serve` dials its tunnel from then on.
    public func addRelay(_ request: RelayRequest, by actor: AuditActor) async throws -> AddedRelay {
        let package = try DebianPackage.inspect(request.packagePath, expecting: AgentKind.relay.package)
        try Self.busy.claim(request.target.knownHostsName)
        defer { Self.busy.release(request.target.knownHostsName) }
        let endpoint = try FleetService.address(request.endpoint ?? "\(request.target.dialHost):\(PharosPorts.relayTunnel)",
                                                defaultPort: PharosPorts.relayTunnel, flag: "--endpoint")
        let hostname = request.hostname.trimmingCharacters(in: .whitespaces).lowercased()
        guard !hostname.isEmpty else { throw FleetInputError.emptyRelayHostname }
        let publicAddress = try FleetService.address(request.publicAddress ?? hostname, defaultPort: PharosPorts.relayClient, flag: "--public")
        let name = request.name ?? hostname
        let clientListen = try Self.port(request.clientListenPort ?? publicAddress.port, flag: "--client-listen-port")
        let tunnelListen = try Self.port(request.tunnelListenPort ?? endpoint.port, flag: "--tunnel-listen-port")
        guard clientListen != tunnelListen else {
            throw OnboardingError.samePorts("the relay cannot listen for clients and for the controller's tunnel on the same port \(clientListen)")
        }
        try await controller.store.read { tx in
            for relay in try tx.relays() {
                if relay.name == name { throw OnboardingError.taken("a relay is already named \(name)") }
                if relay.endpoint == endpoint.description {
                    throw OnboardingError.taken("relay \(relay.name) is already enrolled at \(endpoint.description)")
                }
            }
        }
        let (installed, csr) = try await prepare(.relay, package, on: request.target, by: actor)
        let enrolled = try await controller.service.enrollRelay(
            csrPEM: csr, endpoint: endpoint.description, hostname: hostname, name: name, publicAddr: publicAddress.description,
            certificateDays: request.certificateDays, installedOver: (request.target, installed), by: actor)
        progress("signed relay \(enrolled.relay.id) (\(enrolled.relay.name)); installing its certificates and starting \(AgentKind.relay.unit)")
        do {
            try await installCertificates(.relay, on: request.target,
                                          files: ["relay.crt": enrolled.certificateChainPEM, "ca.crt": enrolled.rootPEM,
                                                  "device-ca.crt": enrolled.deviceCAPEM],
                                          environment: ["RELAY_CLIENT_LISTEN_ADDR": ":\(clientListen)",
                                                        "RELAY_TUNNEL_LISTEN_ADDR": ":\(tunnelListen)"], by: actor)
        } catch {
            throw await undo(.relay, id: enrolled.relay.id, name: enrolled.relay.name, on: request.target, cause: error, by: actor)
        }
        return AddedRelay(relay: enrolled.relay, packageVersion: installed)
    }

    // MARK: either

    public struct Updated: Sendable {
        public var name: String
        public var from: String
        public var to: String
        /// A node's agent version once it answered again; nil for a relay, a stopped agent, or no answer.
        public var agentVersion: String?
        public var answerError: String?
        public var wasRunning: Bool
    }

    /// Installs `packagePath` over the agent's package; a running agent is restarted by the
    /// package (a node must then answer GetStatus again), a stopped one stays stopped.
    public func update(_ kind: AgentKind, _ reference: String, packagePath: String, by actor: AuditActor) async throws -> Updated {
        let package = try DebianPackage.inspect(packagePath, expecting: kind.package)
        let (id, name, login) = try await self.login(kind, reference)
        let before = try await ssh.run(login.target, script: Self.stateScript(kind), step: "read the installed version", by: actor)
        let from = SSHOutput.value(of: "PHAROS-VERSION", in: before) ?? ""
        let wasRunning = SSHOutput.value(of: "PHAROS-ACTIVE", in: before) == "active"
        if !from.isEmpty, (try? Command.run(["dpkg", "--compare-versions", from, "gt", package.version])) != nil {
            throw OnboardingError.downgrade(agent: "\(kind.rawValue) \(name)", installed: from, offered: package.version)
        }
        let to = try await install(package, on: login.target, by: actor)
        let after = try await ssh.run(login.target, script: Self.stateScript(kind), step: "read the unit's state", by: actor)
        try await controller.store.write { tx in
            try tx.setAgentSSH(kind, id: id, target: login.target, packageVersion: to)
            _ = try tx.appendAudit(AuditEntry(action: "\(kind.rawValue).update", targetType: kind.rawValue, targetID: id,
                                              detail: FleetService.detail(["name": name, "from": from, "to": to])), by: actor)
        }
        var updated = Updated(name: name, from: from, to: to, wasRunning: wasRunning)
        if wasRunning {
            guard SSHOutput.value(of: "PHAROS-ACTIVE", in: after) == "active" else {
                throw OnboardingError.notRunning(agent: "\(kind.rawValue) \(name)", state: SSHOutput.value(of: "PHAROS-ACTIVE", in: after) ?? "unknown")
            }
            if kind == .node {
                progress("waiting for \(name) to answer GetStatus again")
                let answer = await waitForAnswer(node: id)
                (updated.agentVersion, updated.answerError) = (answer.version, answer.error)
            }
        }
        return updated
    }

    public struct Switched: Sendable {
        public var name: String
        /// A started node's agent version; nil for a relay, a stop, or no answer.
        public var agentVersion: String?
        public var answerError: String?
    }

    /// `systemctl start` (a node must then answer GetStatus) or `systemctl stop` of the unit.
    public func setRunning(_ kind: AgentKind, _ reference: String, _ running: Bool, by actor: AuditActor) async throws -> Switched {
        let (id, name, login) = try await self.login(kind, reference)
        let verb = running ? "start" : "stop"
        progress("\(running ? "starting" : "stopping") \(kind.unit) on \(login.target)")
        let output = try await ssh.run(login.target, script: "set -eu\nsystemctl \(verb) \(kind.unit) </dev/null\n" + Self.stateScript(kind),
                                       step: "systemctl \(verb) \(kind.unit)", by: actor)
        let state = SSHOutput.value(of: "PHAROS-ACTIVE", in: output) ?? "unknown"
        try await controller.store.write { tx in
            _ = try tx.appendAudit(AuditEntry(action: "\(kind.rawValue).\(verb)", targetType: kind.rawValue, targetID: id,
                                              detail: FleetService.detail(["name": name, "unit": state])), by: actor)
        }
        guard (state == "active") == running else { throw OnboardingError.notRunning(agent: "\(kind.rawValue) \(name)", state: state) }
        guard running, kind == .node else { return Switched(name: name) }
        let answer = await waitForAnswer(node: id)
        return Switched(name: name, agentVersion: answer.version, answerError: answer.error)
    }

    /// The remote half of `rm` for an agent installed over SSH: stop and disable the unit and
    /// take away its certificates and cox's drop-in (the package and the agent's key stay;
    /// `apt-get purge` there removes them). Nil, with nothing done, for one enrolled by hand.
    public func uninstall(_ kind: AgentKind, _ reference: String, by actor: AuditActor) async throws -> SSHTarget? {
        let login = try await controller.store.read { tx -> AgentSSHRecord? in
            switch kind {
            case .node:
                let node = try tx.node(reference)
                // Refused here as `removeNode` would refuse it, before the agent is stopped.
                let paths = try tx.pathNames(through: node.id)
                guard paths.isEmpty else { throw FleetInputError.nodeInPaths(node: node.name, paths: paths) }
                return try tx.agentSSH(.node, id: node.id)
            case .relay:
                return try tx.agentSSH(.relay, id: try tx.relay(reference).id)
            }
        }
        guard let login else { return nil }
        progress("stopping and disabling \(kind.unit) on \(login.target)")
        try await ssh.run(login.target, script: Self.removalScript(kind), step: "stop and disable \(kind.unit)", by: actor)
        return login.target
    }

    /// Stops and disables the unit, removes the certificates and cox's drop-in.
    static func removalScript(_ kind: AgentKind) -> String {
        let files = (kind == .node ? ["node.crt", "ca.crt"] : ["relay.crt", "ca.crt", "device-ca.crt"])
            .map { "\(kind.configDirectory)/\($0)" }.joined(separator: " ")
        return """
            set -eu
            systemctl disable --now \(kind.unit) </dev/null
            rm -f \(files) \(kind.dropIn)
            systemctl daemon-reload </dev/null

            """
    }

    /// An enrollment whose certificates could not be installed is undone: here (the row
    /// removed, its leaf revoked) and, as far as it still can be, there (the unit stopped and
    /// disabled, so it does not loop on a revoked certificate).
    private func undo(_ kind: AgentKind, id: String, name: String, on target: SSHTarget, cause: any Error, by actor: AuditActor) async -> OnboardingError {
        switch kind {
        case .node: _ = try? await controller.service.removeNode(id, by: actor)
        case .relay: _ = try? await controller.service.removeRelay(id, by: actor)
        }
        _ = try? await ssh.run(target, script: Self.removalScript(kind), step: "undo", by: actor)
        return OnboardingError.undone(agent: "\(kind.rawValue) \(name)", cause: "\(cause)")
    }

    // MARK: steps

    private func login(_ kind: AgentKind, _ reference: String) async throws -> (id: String, name: String, login: AgentSSHRecord) {
        try await controller.store.read { tx in
            let id: String, name: String
            switch kind {
            case .node:
                let node = try tx.node(reference)
                (id, name) = (node.id, node.name)
            case .relay:
                let relay = try tx.relay(reference)
                (id, name) = (relay.id, relay.name)
            }
            guard let login = try tx.agentSSH(kind, id: id) else { throw OnboardingError.notInstalledOverSSH(agent: "\(kind.rawValue) \(name)") }
            return (id, name, login)
        }
    }

    /// Logs in (pinning the host key at first use), installs the package and has the host
    /// make its key and CSR. Returns the version installed and the CSR.
    private func prepare(_ kind: AgentKind, _ package: DebianPackage, on target: SSHTarget, by actor: AuditActor) async throws -> (String, String) {
        progress("connecting to \(target)")
        try await ssh.run(target, script: "id -u\n", step: "log in", elevated: false, by: actor)
        let installed = try await install(package, on: target, by: actor)
        progress("making the \(kind.rawValue)'s key and CSR there (\(kind.generateCSR))")
        let output = try await ssh.run(target, script: "set -eu\n\(kind.generateCSR) </dev/null\n", step: kind.generateCSR, by: actor)
        guard let csr = Self.pemBlock("CERTIFICATE REQUEST", in: output) else {
            throw SSHError.remoteFailed(target: target, step: kind.generateCSR, status: 0, output: "no CSR in: \(SSHOutput.lastLines(output, 5))")
        }
        return (installed, csr)
    }

    /// Uploads and installs the package; returns the version installed.
    private func install(_ package: DebianPackage, on target: SSHTarget, by actor: AuditActor) async throws -> String {
        progress("uploading \(package.name) \(package.version) to \(target)")
        let remote = try await ssh.upload(target, file: package.path, as: "\(package.name).deb", by: actor)
        progress("installing it")
        let directory = (remote as NSString).deletingLastPathComponent
        let output = try await ssh.run(target, script: """
            set -eu
            trap 'rm -rf \(directory)' EXIT
            export DEBIAN_FRONTEND=noninteractive
            if command -v apt-get >/dev/null; then
                # Waits for a dpkg lock held elsewhere (unattended-upgrades on a new server); the
                # same version is installed again (a rebuilt package); dependencies the package
                # lists cannot find get the lists updated once.
                pharos_install() {
                    apt-get install -y -q --no-install-recommends --reinstall -o DPkg::Lock::Timeout=300 \\
                        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \(remote) </dev/null
                }
                pharos_install || { apt-get update -q -o DPkg::Lock::Timeout=300 </dev/null && pharos_install; }
            else
                dpkg -i --force-confdef --force-confold \(remote) </dev/null
            fi
            echo "PHAROS-VERSION=$(dpkg-query -W -f='${Version}' \(package.name) </dev/null)"

            """, step: "install \(package.name) \(package.version)", by: actor)
        guard let version = SSHOutput.value(of: "PHAROS-VERSION", in: output), version == package.version else {
            throw SSHError.remoteFailed(target: target, step: "install \(package.name) \(package.version)", status: 0,
                                        output: "dpkg-query finds \(SSHOutput.value(of: "PHAROS-VERSION", in: output) ?? "nothing") installed afterwards")
        }
        return version
    }

    /// Writes the certificates (0644, group `certificateGroup`) and cox's drop-in, then enables
    /// and (re)starts the unit; `systemctl restart` of these Type=notify units returns once
    /// the agent said READY=1.
    private func installCertificates(_ kind: AgentKind, on target: SSHTarget, files: [String: String], environment: [String: String],
                                     by actor: AuditActor) async throws {
        let directory = kind.configDirectory
        var script = "set -eu\numask 022\ntest -d \(directory)\n"
        for (name, content) in files.sorted(by: { $0.key < $1.key }) {
            script += "cat > \(directory)/\(name).cox <<'PHAROS_EOF'\n\(content.trimmingCharacters(in: .whitespacesAndNewlines))\nPHAROS_EOF\n"
            script += "chown root:\(kind.certificateGroup) \(directory)/\(name).cox\nchmod 0644 \(directory)/\(name).cox\n"
        }
        for name in files.keys.sorted() { script += "mv -f \(directory)/\(name).cox \(directory)/\(name)\n" }
        script += """
            mkdir -p \((kind.dropIn as NSString).deletingLastPathComponent)
            cat > \(kind.dropIn) <<'PHAROS_EOF'
            # Written by the controller (cox \(kind.rawValue)s add), which owns this file: the ports this
            # \(kind.rawValue) was enrolled with, overriding its config file's.
            [Service]
            \(environment.sorted { $0.key < $1.key }.map { "Environment=\($0.key)=\($0.value)" }.joined(separator: "\n"))
            PHAROS_EOF
            systemctl daemon-reload </dev/null
            systemctl enable \(kind.unit) </dev/null
            systemctl restart \(kind.unit) </dev/null

            """
        try await ssh.run(target, script: script, step: "install certificates and start \(kind.unit)", by: actor)
    }

    /// The package's version and whether its unit runs, as `PHAROS-` lines.
    static func stateScript(_ kind: AgentKind) -> String {
        """
        echo "PHAROS-VERSION=$(dpkg-query -W -f='${Version}' \(kind.package) </dev/null 2>/dev/null || true)"
        echo "PHAROS-ACTIVE=$(systemctl is-active \(kind.unit) </dev/null 2>/dev/null || true)"

        """
    }

    static func pemBlock(_ label: String, in text: String) -> String? {
        guard let start = text.range(of: "-----BEGIN \(label)-----"),
              let end = text.range(of: "-----END \(label)-----", range: start.upperBound..<text.endIndex) else { return nil }
        return String(text[start.lowerBound..<end.upperBound]) + "\n"
    }

    /// GetStatus until it answers (caching the node's keys) or `answerTimeout` passes.
    private func waitForAnswer(node: String) async -> (version: String?, error: String?) {
        let deadline = ContinuousClock.now + answerTimeout
        var last = ""
        while true {
            do {
                let status = try await controller.withReconciler(logger: Logger(label: "pharos.cox.onboarding")) {
                    try await $0.refreshStatus(node: node)
                }
                return (status.agentVersion, nil)
            } catch {
                last = "\(error)"
            }
            guard ContinuousClock.now < deadline else { return (nil, last) }
            try? await Task.sleep(for: .seconds(1))
        }
    }
}

/// A .deb checked before it is sent anywhere.
public struct DebianPackage: Sendable {
    public var path: String
    public var name: String
    public var version: String

    public static func inspect(_ path: String, expecting expected: String) throws -> DebianPackage {
        guard FileManager.default.isReadableFile(atPath: path) else { throw OnboardingError.package(path, "cannot be read") }
        let fields: String
        do { fields = try Command.run(["dpkg-deb", "-f", path, "Package", "Version"]) } catch {
            throw OnboardingError.package(path, "is not a Debian package (\(error.output.split(whereSeparator: \.isNewline).first ?? ""))")
        }
        let values = Dictionary(fields.split(whereSeparator: \.isNewline).compactMap { line -> (String, String)? in
            let parts = line.split(separator: ":", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), parts[1].trimmingCharacters(in: .whitespaces)) : nil
        }, uniquingKeysWith: { a, _ in a })
        guard let name = values["Package"], let version = values["Version"] else { throw OnboardingError.package(path, "has no Package or Version field") }
        guard name == expected else { throw OnboardingError.package(path, "is \(name), not \(expected)") }
        guard version.range(of: #"^[A-Za-z0-9.+~:-]+$"#, options: .regularExpression) != nil else {
            throw OnboardingError.package(path, "has an unusual version \"\(version)\"")
        }
        return DebianPackage(path: path, name: name, version: version)
    }
}

public enum OnboardingError: Error, Equatable, CustomStringConvertible {
    case package(String, String)
    case taken(String)
    case badPort(Int, flag: String)
    case samePorts(String)
    case busy(String)
    case notInstalledOverSSH(agent: String)
    case undone(agent: String, cause: String)
    case notRunning(agent: String, state: String)
    case downgrade(agent: String, installed: String, offered: String)

    public var description: String {
        switch self {
        case .package(let path, let why): "\(path) \(why)"
        case .taken(let why): "\(why): nothing was installed"
        case .badPort(let port, let flag): "\(flag) \(port) is outside 1-65535"
        case .samePorts(let why): "\(why): nothing was installed"
        case .busy(let host): "another add is already running on \(host); wait for it to finish"
        case .notInstalledOverSSH(let agent):
            "\(agent) was not installed over SSH (`add`): update, start and stop it on its host"
        case .undone(let agent, let cause):
            "\(cause)\nthe enrollment of \(agent) was undone (removed from the controller, its certificate revoked); the package stays installed there"
        case .notRunning(let agent, let state): "\(agent)'s unit is \(state) afterwards"
        case .downgrade(let agent, let installed, let offered):
            "\(agent) runs \(installed), newer than \(offered): refused (a downgrade may not read the state the newer agent wrote); nothing was changed"
        }
    }
}
