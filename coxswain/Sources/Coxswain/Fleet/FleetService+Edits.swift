import Foundation

/// Operators' edits of existing rows through the API: each is fenced by the `version` the
/// caller read (a stale write fails with `StoreError.staleWrite`, HTTP 409) and writes its
/// audit row in the same transaction.
extension FleetService {
    public struct NodePatch: Sendable, Equatable {
        public var name: String?
        public var region: String?
        public var forwarding: Bool?
        public var masquerade: Bool?
        public var isolation: Bool?
        /// Comma-separated extra entry IPs.
        public var endpointIPs: String?

        public init(name: String? = nil, region: String? = nil, forwarding: Bool? = nil, masquerade: Bool? = nil,
                    isolation: Bool? = nil, endpointIPs: String? = nil) {
            self.name = name
            self.region = region
            self.forwarding = forwarding
            self.masquerade = masquerade
            self.isolation = isolation
            self.endpointIPs = endpointIPs
        }

        var changesNetworkPolicy: Bool { forwarding != nil || masquerade != nil || isolation != nil }
    }

    public struct NodeEdit: Sendable {
        public var node: NodeRecord
        /// Forwarding, masquerade or isolation changed: the node needs a SetNetworkConfig.
        public var networkPolicyChanged: Bool
        /// Entry IPs changed: devices on the node were resealed and it needs a push.
        public var affectedNodes: Set<String>
        /// How pushing them (and the node itself, after a policy change) went.
        public var pushes: [String: FleetReconciler.Outcome] = [:]
    }

    public func updateNode(_ reference: String, _ patch: NodePatch, expectedVersion: Int64, by actor: AuditActor) async throws -> NodeEdit {
        if let name = patch.name, name.trimmingCharacters(in: .whitespaces).isEmpty { throw FleetInputError.emptyName(kind: "node") }
        if let ips = patch.endpointIPs {
            for ip in ips.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where IPv4Subnet.parse(ip) == nil {
                throw FleetInputError.notIPv4(field: "endpoint_ips", value: ip)
            }
        }
        let config = self.config, fleetID = try pki.authority.fingerprint, signingKey = pki.signingKey
        var edit = try await store.write { tx in
            let current = try tx.node(reference)
            var next = current
            if let name = patch.name?.trimmingCharacters(in: .whitespaces), name != current.name {
                if (try? tx.node(name)) != nil { throw StoreError.duplicate(kind: "node", field: "name", value: name) }
                next.name = name
            }
            if let region = patch.region { next.region = region }
            if let forwarding = patch.forwarding { next.forwarding = forwarding }
            if let masquerade = patch.masquerade { next.masquerade = masquerade }
            if let isolation = patch.isolation { next.isolation = isolation }
            if let ips = patch.endpointIPs {
                next.endpointIPs = ips.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: ",")
            }
            let saved = try tx.update(next, expectedVersion: expectedVersion)
            var affected = Set<String>()
            if saved.endpointIPs != current.endpointIPs {
                // Entry IPs are in the devices' bundles: reseal every device placed on this node.
                for deviceID in Set(try tx.peers(node: saved.id).map(\.deviceID)).sorted() {
                    affected.formUnion(try Self.reprovision(deviceID: deviceID, tx: tx, config: config, fleetID: fleetID,
                                                            signingKey: signingKey))
                }
                affected = try tx.bumpRevisions(affected)
            }
            var fields: [String: String] = [:]
            for (key, before, after) in [("name", current.name, saved.name), ("region", current.region, saved.region),
                                         ("forwarding", "\(current.forwarding)", "\(saved.forwarding)"),
                                         ("masquerade", "\(current.masquerade)", "\(saved.masquerade)"),
                                         ("isolation", "\(current.isolation)", "\(saved.isolation)"),
                                         ("endpoint_ips", current.endpointIPs, saved.endpointIPs)] where before != after {
                fields[key] = after
            }
            try tx.appendAudit(AuditEntry(action: "node.update", targetType: "node", targetID: saved.id,
                                          detail: Self.detail(fields)), by: actor)
            let policyChanged = saved.forwarding != current.forwarding || saved.masquerade != current.masquerade
                || saved.isolation != current.isolation
            return NodeEdit(node: saved, networkPolicyChanged: policyChanged, affectedNodes: affected)
        }
        guard let effects else { return edit }
        if edit.networkPolicyChanged { await effects.networkPolicyChanged(node: edit.node.id) }
        let pushed = edit.affectedNodes.union(edit.networkPolicyChanged ? [edit.node.id] : [])
        if !pushed.isEmpty { edit.pushes = await effects.push(pushed) }
        return edit
    }

    public struct UserPatch: Sendable, Equatable {
        public var name: String?
        /// A disabled user's devices can no longer log in or sync.
        public var status: AccessStatus?

        public init(name: String? = nil, status: AccessStatus? = nil) {
            self.name = name
            self.status = status
        }
    }

    public func updateUser(_ reference: String, _ patch: UserPatch, expectedVersion: Int64, by actor: AuditActor) async throws -> UserRecord {
        if let name = patch.name, name.trimmingCharacters(in: .whitespaces).isEmpty { throw FleetInputError.emptyName(kind: "user") }
        return try await store.write { tx in
            let current = try tx.user(reference)
            var next = current
            if let name = patch.name { next.name = name.trimmingCharacters(in: .whitespaces) }
            if let status = patch.status { next.status = status }
            let saved = try tx.update(next, expectedVersion: expectedVersion)
            if saved.status == .disabled { try tx.endSessions(user: saved.id) }
            var fields: [String: String] = [:]
            if saved.name != current.name { fields["name"] = saved.name }
            if saved.status != current.status { fields["status"] = saved.status.rawValue }
            try tx.appendAudit(AuditEntry(action: "user.update", targetType: "user", targetID: saved.id,
                                          detail: Self.detail(fields)), by: actor)
            return saved
        }
    }

    /// `cox users reset-keys`: the operator clears a user's account key (the user lost the
    /// passphrase, or the key is suspected leaked); the user's next sync enrolls a new one.
    /// Bundles sealed to the old key stay what they are until then.
    public func resetAccountKeys(user reference: String, by actor: AuditActor) async throws -> UserRecord {
        try await store.write { tx in
            var user = try tx.user(reference)
            guard user.publicKey != nil else { return user }
            try tx.clearAccountKeys(user: user.id)
            try tx.appendAudit(AuditEntry(action: "user.keys.reset", targetType: "user", targetID: user.id,
                                          detail: Self.detail(["email": user.email ?? ""])), by: actor)
            user = try tx.user(user.id)
            return user
        }
    }

    /// An operator acknowledges or resolves an alert (`POST /api/alerts/{id}/ack|resolve`).
    public func setAlertStatus(_ id: String, to status: AlertStatus, expectedVersion: Int64?, by actor: AuditActor) async throws -> AlertRecord {
        guard status != .open else { throw FleetInputError.alertReopened }
        let saved = try await store.write { tx in
            let current = try tx.alert(id)
            let saved = try tx.setAlertStatus(id, to: status, expectedVersion: expectedVersion ?? current.version)
            try tx.appendAudit(AuditEntry(action: status == .resolved ? "alert.resolve" : "alert.ack", targetType: "alert",
                                          targetID: id, detail: Self.detail(["kind": saved.kind])), by: actor)
            return saved
        }
        effects?.publish(.alert(saved))
        return saved
    }
}
