import Foundation
import Hummingbird
import PharosSpec

/// Nodes and relays installed and driven over SSH (`cox nodes add|update|start|stop`, `cox
/// relays add|update|start|stop`), the controller's SSH key and its host-key pins. A request
/// names a package by file name only: the controller reads packages from the `packages`
/// directory of its state directory, never from a path an API client chose. Each call runs as
/// long as its SSH work (an install: tens of seconds).
extension AdminAPI {
    func addOnboardingRoutes(readonly: RouterGroup<AdminRequestContext>, admin group: RouterGroup<AdminRequestContext>) {
        group.post("nodes/ssh") { request, context -> Response in
            let form = try await Self.body(AddNodeRequest.self, request, context)
            let added = try await onboarding.addNode(
                AgentOnboarding.NodeRequest(target: try SSHTarget.parse(form.target), packagePath: try packagePath(form.package),
                                            name: form.name, region: form.region ?? "", controlAddress: form.addr,
                                            wgPort: form.wgPort ?? PharosPorts.amneziaWG, listenPort: form.listenPort,
                                            certificateDays: form.certDays ?? FleetService.nodeCertificateDays), by: context.actor)
            return try Self.json(AgentAddedDTO(id: added.node.id, name: added.node.name, package: added.packageVersion,
                                               agentVersion: added.agentVersion, answerError: added.answerError), status: .created)
        }
        group.post("relays/ssh") { request, context -> Response in
            let form = try await Self.body(AddRelayRequest.self, request, context)
            let added = try await onboarding.addRelay(
                AgentOnboarding.RelayRequest(target: try SSHTarget.parse(form.target), packagePath: try packagePath(form.package),
                                             hostname: form.hostname, endpoint: form.endpoint, publicAddress: form.publicAddr,
                                             name: form.name, clientListenPort: form.clientListenPort, tunnelListenPort: form.tunnelListenPort,
                                             certificateDays: form.certDays ?? FleetService.relayCertificateDays),
                by: context.actor)
            return try Self.json(AgentAddedDTO(id: added.relay.id, name: added.relay.name, package: added.packageVersion,
                                               agentVersion: nil, answerError: nil), status: .created)
        }
        for kind in [AgentKind.node, .relay] {
            group.post("\(kind.rawValue)s/:id/update") { request, context -> AgentUpdatedDTO in
                let form = try await Self.body(UpdateAgentRequest.self, request, context)
                let updated = try await onboarding.update(kind, try context.parameters.require("id"),
                                                          packagePath: try packagePath(form.package), by: context.actor)
                return AgentUpdatedDTO(name: updated.name, from: updated.from, to: updated.to, running: updated.wasRunning,
                                       agentVersion: updated.agentVersion, answerError: updated.answerError)
            }
            for (verb, running) in [("start", true), ("stop", false)] {
                group.post("\(kind.rawValue)s/:id/\(verb)") { _, context -> AgentSwitchedDTO in
                    let switched = try await onboarding.setRunning(kind, try context.parameters.require("id"), running, by: context.actor)
                    return AgentSwitchedDTO(name: switched.name, running: running, agentVersion: switched.agentVersion,
                                            answerError: switched.answerError)
                }
            }
        }
        // Reading the key never makes one: POST makes it (audited), and so does the first
        // login to a server. `ssh-key` is upstream's path for the same.
        for path in ["ssh/key", "ssh-key"] {
            readonly.get(RouterPath(path)) { _, _ -> SSHKeyDTO in
                guard let identity = try await controller.ssh.existingIdentity() else {
                    throw Problem(.notFound, "the controller has no SSH key yet: POST /api/ssh/key or `cox ssh-key` makes it")
                }
                return SSHKeyDTO(identity)
            }
        }
        group.post("ssh/key") { _, context -> SSHKeyDTO in
            SSHKeyDTO(try await controller.ssh.identity(by: context.actor))
        }
        // Upstream's POST /api/servers: one login with a password (never stored) that adds the key.
        group.post("ssh/key/install") { request, context -> KeyInstalledDTO in
            let form = try await Self.body(InstallKeyRequest.self, request, context)
            let target = try SSHTarget.parse(form.target)
            let first = try SSHClient.FirstHostKey.from(hostKey: form.hostKey, trustFirstUse: form.trustFirstUse == true)
            let installed = try await controller.ssh.installKey(target, password: Array(form.password.utf8), firstHostKey: first, by: context.actor)
            return KeyInstalledDTO(target: target.description, alreadyThere: installed.wasThere, canBecomeRoot: installed.canBecomeRoot)
        }
        readonly.get("ssh/host-keys") { _, _ -> [HostKeyDTO] in
            try await store.read { tx in try tx.pinnedHostKeys() }.map(HostKeyDTO.init)
        }
        group.delete("ssh/host-keys/:host") { _, context -> Response in
            let name = try SSHTarget.parse(try context.parameters.require("host")).knownHostsName
            guard try await controller.ssh.forgetPins(of: name, by: context.actor) else { throw Problem(.notFound, "no host key is pinned for \(name)") }
            return Response(status: .noContent)
        }
    }

    var onboarding: AgentOnboarding { AgentOnboarding(controller: controller, ssh: controller.ssh) }

    /// Where the API takes packages from: `<state dir>/packages`.
    var packageDirectory: String { URL(fileURLWithPath: store.stateDirectory).appendingPathComponent("packages").path }

    /// A package's file name in `packageDirectory`; no path of the client's choosing.
    func packagePath(_ name: String) throws -> String {
        guard !name.isEmpty, !name.hasPrefix("."), !name.contains("/"), name.hasSuffix(".deb") else {
            throw Problem(.badRequest, "package must be the file name of a .deb in \(packageDirectory) (no directories)")
        }
        let path = "\(packageDirectory)/\(name)"
        guard FileManager.default.fileExists(atPath: path) else {
            throw Problem(.badRequest, "there is no \(name) in \(packageDirectory): copy the package there first")
        }
        return path
    }
}

struct AddNodeRequest: Decodable, Sendable {
    var target, package: String
    var addr, name, region: String?
    var wgPort, listenPort, certDays: Int?

    enum CodingKeys: String, CodingKey {
        case target, package, addr, name, region
        case wgPort = "wg_port", listenPort = "listen_port", certDays = "cert_days"
    }
}

struct AddRelayRequest: Decodable, Sendable {
    var target, package, hostname: String
    var endpoint, publicAddr, name: String?
    var clientListenPort, tunnelListenPort, certDays: Int?

    enum CodingKeys: String, CodingKey {
        case target, package, hostname, endpoint, name
        case publicAddr = "public_addr", clientListenPort = "client_listen_port", tunnelListenPort = "tunnel_listen_port"
        case certDays = "cert_days"
    }
}

struct UpdateAgentRequest: Decodable, Sendable { var package: String }

struct InstallKeyRequest: Decodable, Sendable {
    var target, password: String
    var hostKey: String?
    var trustFirstUse: Bool?

    enum CodingKeys: String, CodingKey { case target, password, hostKey = "host_key", trustFirstUse = "trust_first_use" }
}

struct KeyInstalledDTO: ResponseEncodable, Sendable {
    var target: String
    var alreadyThere, canBecomeRoot: Bool

    enum CodingKeys: String, CodingKey { case target, alreadyThere = "already_there", canBecomeRoot = "can_become_root" }
}

struct AgentAddedDTO: ResponseEncodable, Sendable {
    var id, name, package: String
    var agentVersion, answerError: String?

    enum CodingKeys: String, CodingKey {
        case id, name, package
        case agentVersion = "agent_version", answerError = "answer_error"
    }
}

struct AgentUpdatedDTO: ResponseEncodable, Sendable {
    var name, from, to: String
    var running: Bool
    var agentVersion, answerError: String?

    enum CodingKeys: String, CodingKey {
        case name, from, to, running
        case agentVersion = "agent_version", answerError = "answer_error"
    }
}

struct AgentSwitchedDTO: ResponseEncodable, Sendable {
    var name: String
    var running: Bool
    var agentVersion, answerError: String?

    enum CodingKeys: String, CodingKey {
        case name, running
        case agentVersion = "agent_version", answerError = "answer_error"
    }
}

struct SSHKeyDTO: ResponseEncodable, Sendable {
    var publicKey: String
    var fingerprint: String
    var createdAt: Int64

    init(_ identity: SSHIdentity) {
        publicKey = identity.publicKey
        fingerprint = identity.fingerprint
        createdAt = identity.createdAt
    }

    enum CodingKeys: String, CodingKey { case publicKey = "public_key", fingerprint, createdAt = "created_at" }
}

struct HostKeyDTO: ResponseEncodable, Sendable {
    var host, keyType, fingerprint: String
    var pinnedAt: String?

    init(_ pin: PinnedHostKey) {
        (host, keyType, fingerprint, pinnedAt) = (pin.host, pin.keyType, pin.fingerprint, APITime.format(pin.pinnedAt))
    }

    enum CodingKeys: String, CodingKey {
        case host, fingerprint
        case keyType = "key_type", pinnedAt = "pinned_at"
    }
}
