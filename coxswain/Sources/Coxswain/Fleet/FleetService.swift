import Crypto
import Foundation
import PharosSpec
import PharosTLS
import X509

/// The one service layer every mutation goes through, from the CLI, the API or the UI:
/// each method is one store transaction that makes the change, bumps the revision of
/// every node whose peers changed, and writes its audit row — all or nothing. After commit
/// it runs the effects (`FleetEffects`: push, live publish) itself, so callers only translate.
public final class FleetService: Sendable {
    public let store: Store
    public let pki: FleetPKI
    public let config: CoxConfig
    public let effects: (any FleetEffects)?

    /// A node leaf's lifetime unless `cox nodes enroll --cert-days` says otherwise: the
    /// controller renews it at two thirds of its life (NodeCertificateRenewer), so a node
    /// survives a controller outage of up to ten days.
    public static let nodeCertificateDays = 30
    /// For upstream agents, which answer UNIMPLEMENTED to renewal and keep their enrolled leaf.
    public static let maximumNodeCertificateDays = 365

    public init(store: Store, pki: FleetPKI, config: CoxConfig, effects: (any FleetEffects)? = nil) {
        self.store = store
        self.pki = pki
        self.config = config
        self.effects = effects
    }

    /// The same service with `effects` run after every commit.
    public func with(effects: any FleetEffects) -> FleetService {
        FleetService(store: store, pki: pki, config: config, effects: effects)
    }

    /// After commit: pushes what the mutation touched and records each node's outcome.
    func committed<Value>(_ result: MutationResult<Value>) async -> MutationResult<Value> {
        guard let effects, !result.affectedNodes.isEmpty else { return result }
        var result = result
        result.pushes = await effects.push(result.affectedNodes)
        return result
    }

    var subnet: IPv4Subnet { IPv4Subnet(config.vpnSubnet) ?? IPv4Subnet("10.86.0.0/16")! }

    // MARK: nodes

    public struct EnrolledNode: Sendable {
        public var node: NodeRecord
        /// `node.crt`: the leaf followed by the Fleet CA.
        public var certificateChainPEM: String
        /// `ca.crt`: the root the node trusts for the controller's client certificate.
        public var rootPEM: String
    }

    /// `cox nodes enroll`: signs the node's CSR with a subject and SANs the controller assigns
    /// (the address it dials), never those of the CSR, and records the node as pending until
    /// its first GetStatus.
    public func enrollNode(csrPEM: String, controlAddress: String, name: String?, region: String,
                           wgPort: Int = PharosPorts.amneziaWG, certificateDays: Int = FleetService.nodeCertificateDays,
                           installedOver ssh: (target: SSHTarget, packageVersion: String)? = nil,
                           by actor: AuditActor) async throws -> EnrolledNode {
        guard (1...Self.maximumNodeCertificateDays).contains(certificateDays) else { throw FleetInputError.certificateDays(certificateDays) }
        let dialed = try Self.address(controlAddress, defaultPort: PharosPorts.nodeControl, flag: "--addr")
        let (address, host) = (dialed.description, dialed.host)
        let id = EntityID.make(.node)
        let leaf = try pki.authority.issue(csrPEM: csrPEM, profile: .node(id: id, addresses: [host]),
                                           validity: TimeInterval(certificateDays) * 86400)
        let chain = try leaf.pemString() + pki.authority.fleet.certificate.pemString()
        let root = try pki.authority.root.certificate.pemString()
        let serial = leaf.serialHex
        let notAfter = FleetPKI.micros(leaf.notValidAfter)
        let node = try await store.write { tx in
            let node = NodeRecord(id: id, name: name ?? host, region: region, publicIP: IPv4Subnet.parse(host) != nil ? host : "",
                                  controlAddr: address, status: .pending, agentVersion: "", forwarding: true, masquerade: true,
                                  isolation: false, wgPublicKey: nil, wgObfuscation: nil, xrayPublicKey: nil, endpointIPs: "",
                                  wgPort: wgPort, configRevision: 0, appliedRevision: 0, missedPolls: 0, lastSeenAt: nil,
                                  lastError: "", version: 1, createdAt: tx.now, updatedAt: tx.now)
            try tx.insert(node)
            try tx.insertNodeCertificate(nodeID: id, serial: serial, certificatePEM: chain, notAfter: notAfter)
            try tx.setNodeCertificateDays(node: id, days: certificateDays)
            var detail = ["name": node.name, "addr": address, "serial": serial, "cert_days": "\(certificateDays)"]
            if let ssh {
                try tx.setAgentSSH(.node, id: id, target: ssh.target, packageVersion: ssh.packageVersion)
                detail["ssh"] = ssh.target.description
                detail["package"] = ssh.packageVersion
            }
            try tx.appendAudit(AuditEntry(action: "node.add", targetType: "node", targetID: id, detail: Self.detail(detail)), by: actor)
            return node
        }
        return EnrolledNode(node: node, certificateChainPEM: chain, rootPEM: root)
    }

    /// An operator's explicit push (`cox nodes push`, `POST /api/nodes/{id}/push`): nothing
    /// changes in the store but the audit log says who asked for it; then the node gets its
    /// full config (when this service runs effects).
    public func pushNow(_ reference: String, by actor: AuditActor) async throws -> MutationResult<NodeRecord> {
        let node = try await store.write { tx in
            let node = try tx.node(reference)
            try tx.appendAudit(AuditEntry(action: "node.push", targetType: "node", targetID: node.id,
                                          detail: Self.detail(["revision": "\(node.configRevision)"])), by: actor)
            return node
        }
        var result = MutationResult(value: node, affectedNodes: [node.id])
        if let effects { result.pushes[node.id] = await effects.explicitPush(node: node.id) }
        return result
    }

    /// `cox nodes rm`: the node's peers go with it; devices that used it get new bundles.
    public func removeNode(_ reference: String, by actor: AuditActor) async throws -> MutationResult<NodeRecord> {
        let config = self.config, fleetID = try pki.authority.fingerprint, signingKey = pki.signingKey
        return await committed(try await store.write { tx in
            let node = try tx.node(reference)
            let paths = try tx.pathNames(through: node.id)
            guard paths.isEmpty else { throw FleetInputError.nodeInPaths(node: node.name, paths: paths) }
            let deviceIDs = Set(try tx.peers(node: node.id).map(\.deviceID))
            try tx.revokeCertificates(ofNode: node, reason: "node removed")
            try tx.deleteNode(node.id)
            var affected = Set<String>()
            for deviceID in deviceIDs.sorted() {
                affected.formUnion(try Self.reprovision(deviceID: deviceID, tx: tx, config: config, fleetID: fleetID, signingKey: signingKey))
            }
            affected.remove(node.id)
            affected = try tx.bumpRevisions(affected)
            try tx.appendAudit(AuditEntry(action: "node.rm", targetType: "node", targetID: node.id,
                                          detail: Self.detail(["name": node.name])), by: actor)
            return MutationResult(value: node, affectedNodes: affected)
        })
    }

    // MARK: users

    /// `role` admin: may log in to the admin API and UI (with a password from `cox users passwd`).
    public func addUser(name: String, email: String?, role: UserRole = .user, by actor: AuditActor) async throws -> UserRecord {
        let email = email?.trimmingCharacters(in: .whitespaces).lowercased()
        if role == .admin, email == nil { throw FleetInputError.adminWithoutEmail }
        if let email, !Self.looksLikeEmail(email) { throw FleetInputError.notAnEmail(email) }
        guard !name.trimmingCharacters(in: .whitespaces).isEmpty else { throw FleetInputError.emptyName(kind: "user") }
        return try await store.write { tx in
            let user = UserRecord(id: EntityID.make(.user), name: name, email: email, role: role, publicKey: nil,
                                  wrappedPrivkey: nil, status: .active, passwordHash: nil, version: 1,
                                  createdAt: tx.now, updatedAt: tx.now)
            try tx.insert(user)
            try tx.appendAudit(AuditEntry(action: "user.add", targetType: "user", targetID: user.id,
                                          detail: Self.detail(["name": name, "email": email ?? "", "role": role.rawValue])), by: actor)
            return user
        }
    }

    /// `cox users rm`: devices, peers and profiles go with the user.
    public func removeUser(_ reference: String, by actor: AuditActor) async throws -> MutationResult<UserRecord> {
        return await committed(try await store.write { tx in
            let user = try tx.user(reference)
            var affected = Set<String>()
            for device in try tx.devices(user: user.id) {
                affected.formUnion(try tx.peers(device: device.id).map(\.nodeID))
                // The relays refuse its certificate from their next deny-list refresh.
                try tx.revokeCertificates(of: device)
            }
            try tx.deleteUser(user.id)
            affected = try tx.bumpRevisions(affected)
            try tx.appendAudit(AuditEntry(action: "user.rm", targetType: "user", targetID: user.id,
                                          detail: Self.detail(["email": user.email ?? ""])), by: actor)
            return MutationResult(value: user, affectedNodes: affected)
        })
    }

    // MARK: devices

    /// `cox devices add`: allocates a tunnel address, places the device's peers on every node
    /// its user's profile specs name, and seals its bundle to `encryptionKey` (the device's
    /// X25519 key) or else to the user's key, when either exists.
    public func addDevice(user reference: String, name: String, platform: String = "",
                          encryptionKey: [UInt8]? = nil, by actor: AuditActor) async throws -> MutationResult<DeviceRecord> {
        if let encryptionKey, encryptionKey.count != 32 {
            throw ProvisioningError.invalidEncryptionKey("an X25519 public key is exactly 32 bytes, this one is \(encryptionKey.count)")
        }
        let config = self.config, fleetID = try pki.authority.fingerprint, signingKey = pki.signingKey, subnet = self.subnet
        return await committed(try await store.write { tx in
            let user = try tx.user(reference)
            guard let address = subnet.firstFree(excluding: try tx.usedTunnelIPs()) else {
                throw ProvisioningError.subnetExhausted(subnet.description)
            }
            let device = DeviceRecord(id: EntityID.make(.device), userID: user.id, name: name, platform: platform, fingerprint: nil,
                                      status: .active, encryptionPubkey: encryptionKey.map { Data($0) }, tunnelIP: address,
                                      version: 1, createdAt: tx.now, updatedAt: tx.now)
            try tx.insert(device)
            var affected = try Self.reprovision(deviceID: device.id, tx: tx, config: config, fleetID: fleetID, signingKey: signingKey)
            affected = try tx.bumpRevisions(affected)
            try tx.appendAudit(AuditEntry(action: "device.add", targetType: "device", targetID: device.id,
                                          detail: Self.detail(["user": user.id, "name": name, "tunnel_ip": address])), by: actor)
            return MutationResult(value: device, affectedNodes: affected)
        })
    }

    /// `cox devices rm`: its peers leave every node, its sessions end, and its certificate
    /// goes on the relays' deny list until it would have expired.
    public func removeDevice(_ deviceID: String, by actor: AuditActor) async throws -> MutationResult<DeviceRecord> {
        return await committed(try await store.write { tx in
            let device = try tx.device(deviceID)
            var affected = Set(try tx.peers(device: device.id).map(\.nodeID))
            try tx.revokeCertificates(of: device)
            try tx.deleteDevice(device.id)
            affected = try tx.bumpRevisions(affected)
            try tx.appendAudit(AuditEntry(action: "device.rm", targetType: "device", targetID: device.id,
                                          detail: Self.detail(["user": device.userID, "name": device.name])), by: actor)
            return MutationResult(value: device, affectedNodes: affected)
        })
    }

    // MARK: profile specs

    /// `cox profiles create`: re-provisions every device of the user it applies to.
    /// Egress is `node`, or the last hop of `path` (entered at its first); exactly one of them.
    public func createProfileSpec(user reference: String, name: String, node nodeReference: String?, path pathReference: String? = nil,
                                  device deviceID: String? = nil, entryIPs: [String] = [], protocol proto: ProfileProtocol,
                                  by actor: AuditActor) async throws -> MutationResult<ProfileSpecRecord> {
        let config = self.config, fleetID = try pki.authority.fingerprint, signingKey = pki.signingKey
        guard (nodeReference == nil) != (pathReference == nil) else { throw FleetInputError.nodeOrPath }
        return await committed(try await store.write { tx in
            let user = try tx.user(reference)
            var path: PathRecord?
            if let pathReference {
                path = try tx.path(pathReference)
                guard proto == .amneziawg else { throw FleetInputError.xrayOnPath(path: path!.name) }
            }
            let node = try tx.node(path?.hops.first ?? nodeReference!)
            guard node.isPlaceable else { throw ProvisioningError.nodeNotReady(node: node.name) }
            if proto.includesXRay, node.xrayPublicKey?.isEmpty != false {
                throw ProvisioningError.protocolUnavailable(node: node.name, protocol: "xray-reality")
            }
            if let deviceID, try tx.device(deviceID).userID != user.id {
                throw FleetInputError.deviceOfAnotherUser(device: deviceID, user: user.email ?? user.id)
            }
            let spec = ProfileSpecRecord(id: EntityID.make(.profileSpec), userID: user.id, deviceID: deviceID, name: name,
                                         pathID: path?.id, nodeID: path == nil ? node.id : nil, entryIPs: entryIPs.joined(separator: ","),
                                         protocol: proto, version: 1, createdAt: tx.now, updatedAt: tx.now)
            try tx.insert(spec)
            var affected = Set<String>()
            for device in try tx.devices(user: user.id) where deviceID == nil || device.id == deviceID {
                affected.formUnion(try Self.reprovision(deviceID: device.id, tx: tx, config: config, fleetID: fleetID, signingKey: signingKey))
            }
            affected = try tx.bumpRevisions(affected)
            try tx.appendAudit(AuditEntry(action: "profile.create", targetType: "profile", targetID: spec.id,
                                          detail: Self.detail(["user": user.id, path == nil ? "node" : "path": path?.id ?? node.id,
                                                               "protocol": proto.rawValue])), by: actor)
            return MutationResult(value: spec, affectedNodes: affected)
        })
    }

    public func removeProfileSpec(_ specID: String, by actor: AuditActor) async throws -> MutationResult<ProfileSpecRecord> {
        let config = self.config, fleetID = try pki.authority.fingerprint, signingKey = pki.signingKey
        return await committed(try await store.write { tx in
            let spec = try tx.profileSpec(specID)
            let devices = try tx.devices(user: spec.userID).filter { spec.deviceID == nil || $0.id == spec.deviceID }
            // Deleting the spec cascades to its peers: note their nodes first, or the nodes
            // that lose them would never be told.
            var affected = Set<String>()
            for device in devices { affected.formUnion(try tx.peers(device: device.id).map(\.nodeID)) }
            try tx.deleteProfileSpec(spec.id)
            for device in devices {
                affected.formUnion(try Self.reprovision(deviceID: device.id, tx: tx, config: config, fleetID: fleetID, signingKey: signingKey))
            }
            affected = try tx.bumpRevisions(affected)
            try tx.appendAudit(AuditEntry(action: "profile.rm", targetType: "profile", targetID: spec.id,
                                          detail: Self.detail(["user": spec.userID])), by: actor)
            return MutationResult(value: spec, affectedNodes: affected)
        })
    }

    // MARK: provisioning inside a transaction

    /// Replaces the device's peers with a fresh plan and reseals its bundle; returns the nodes
    /// whose peer sets changed (the caller bumps their revisions).
    static func reprovision(deviceID: String, tx: StoreTransaction, config: CoxConfig, fleetID: String,
                            signingKey: Curve25519.Signing.PrivateKey) throws -> Set<String> {
        let device = try tx.device(deviceID)
        let user = try tx.user(device.userID)
        let specs = try tx.profileSpecs(for: device)
        var nodes: [String: NodeRecord] = [:], paths: [String: PathRecord] = [:]
        for spec in specs {
            if let nodeID = spec.nodeID, let node = try? tx.node(nodeID) { nodes[nodeID] = node }
            if let pathID = spec.pathID, let path = try? tx.path(pathID) {
                paths[pathID] = path
                for hop in path.hops { if let node = try? tx.node(hop) { nodes[hop] = node } }
            }
        }
        let exit = try tx.exitBinding(device: device.id).map { try tx.path($0.pathID) }
        for hop in exit?.hops ?? [] { if nodes[hop] == nil, let node = try? tx.node(hop) { nodes[hop] = node } }
        let revision = (try tx.profile(device: device.id)?.revision ?? 0) + 1
        let plan = try DeviceProvisioning.plan(device: device, user: user, specs: specs, nodes: nodes, config: config,
                                               fleetID: fleetID, revision: revision, now: StoreClock.date(tx.now), paths: paths,
                                               exit: exit)
        // The next hops of its paths change with its peers: callers bump them (bumpRevisions).
        let affected = try tx.replacePeers(device: device.id, with: plan.peers)
        // A binding ends with the device's AmneziaWG peer on its entry: a later profile there
        // must leave where it says, not by a path bound for an earlier one.
        if let entry = exit?.hops.first, !plan.peers.contains(where: { $0.nodeID == entry && $0.protocol == .amneziawg }) {
            _ = try tx.unbindExit(device: device.id)
        }
        if let recipientBytes = device.encryptionPubkey ?? user.publicKey {
            let recipient = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: recipientBytes)
            let sealed = try SealedBundle.seal(plan.bundle.json.compactBytes(), to: recipient, signingKey: signingKey)
            try tx.upsertProfile(user: user.id, device: device.id, revision: revision, ciphertext: Data(sealed.json.compactBytes()))
        }
        return affected
    }

    // MARK: helpers

    /// `HOST[:PORT]` with `defaultPort` when none is given; `flag` names the input in errors.
    static func address(_ text: String, defaultPort: Int, flag: String) throws -> HostPort {
        do { return try HostPort.parse(text, defaultPort: defaultPort) } catch {
            throw FleetInputError.badAddress(field: flag, reason: "\(error)", defaultPort: defaultPort)
        }
    }

    static func looksLikeEmail(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".") && !text.contains(" ")
    }

    /// Small JSON object for the audit `detail`, keys sorted so the text is deterministic.
    static func detail(_ fields: [String: String]) -> String {
        JSONValue.object(fields.keys.sorted().map { JSONMember($0, .string(fields[$0]!)) }).compactBytes()
            .withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self) }
    }
}
