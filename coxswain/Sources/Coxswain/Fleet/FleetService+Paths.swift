import Foundation
import PharosSpec

/// Cascades (#21): `cox paths add|list|rm`. A path names 2 or 3 nodes, entry first; each
/// consecutive pair gets an inner link (allocated once per pair and shared). Profile specs
/// with `--path` place the device on the entry; its traffic leaves at the last hop.
extension FleetService {
    public func addPath(name: String, hops references: [String], color: String = "",
                        by actor: AuditActor) async throws -> MutationResult<PathRecord> {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw FleetInputError.emptyName(kind: "path") }
        let color = try Self.pathColor(color)
        guard (2...3).contains(references.count) else {
            throw FleetInputError.pathHops("a path has 2 or 3 hops (entry[,mid],exit), not \(references.count)")
        }
        return await committed(try await store.write { tx in
            let nodes = try references.map { try tx.node($0) }
            guard Set(nodes.map(\.id)).count == nodes.count else {
                throw FleetInputError.pathHops("a node appears twice in \(nodes.map(\.name).joined(separator: ","))")
            }
            // Every hop's key must be known: the previous hop dials it, the next one admits it.
            for node in nodes where !node.isPlaceable { throw ProvisioningError.nodeNotReady(node: node.name) }
            // The previous hop dials each later hop at an IP address (a node takes no host name).
            for node in nodes.dropFirst() {
                let ip = node.publicIP.isEmpty ? node.host : node.publicIP
                guard (try? HostPort.parse(ip, defaultPort: node.wgPort))?.isIPv4Literal == true || ip.contains(":") else {
                    throw FleetInputError.pathHops("node \(node.name) has no public IP address to be dialed at (\(ip)); set one with cox nodes endpoints")
                }
            }
            let path = PathRecord(id: EntityID.make(.path), name: trimmed, hops: nodes.map(\.id), color: color, createdAt: tx.now)
            try tx.insert(path: path)
            for (entry, exit) in zip(path.hops, path.hops.dropFirst()) { _ = try tx.ensureLink(entry: entry, exit: exit) }
            let affected = try tx.bumpRevisions(Set(path.hops))
            try tx.appendAudit(AuditEntry(action: "path.add", targetType: "path", targetID: path.id,
                                          detail: Self.detail(["name": trimmed, "hops": nodes.map(\.name).joined(separator: ",")])),
                               by: actor)
            return MutationResult(value: path, affectedNodes: affected)
        })
    }

    /// Refused while a profile spec uses the path; links no other path uses are retired
    /// (their entries are told to remove them at the next push).
    public func removePath(_ reference: String, by actor: AuditActor) async throws -> MutationResult<PathRecord> {
        await committed(try await store.write { tx in
            let path = try tx.path(reference)
            let specs = try tx.profileSpecs(path: path.id)
            guard specs.isEmpty else { throw FleetInputError.pathInUse(path: path.name, profiles: specs.map(\.name)) }
            let bound = try tx.exitBindings(path: path.id)
            guard bound.isEmpty else {
                throw FleetInputError.pathBound(path: path.name, devices: try bound.map { try tx.device($0.deviceID).name })
            }
            try tx.deletePath(path.id)
            let retired = try tx.retireUnusedLinks()
            let affected = try tx.bumpRevisions(Set(path.hops).union(retired))
            try tx.appendAudit(AuditEntry(action: "path.rm", targetType: "path", targetID: path.id,
                                          detail: Self.detail(["name": path.name])), by: actor)
            return MutationResult(value: path, affectedNodes: affected)
        })
    }

    /// `cox paths provision`: every hop pushed again (peers, link peers, inner links) at a new
    /// revision, for an operator who repaired a hop by hand or doubts what one holds. Transit
    /// routes are re-sent only when they differ from what the reconciler last sent.
    public func provisionPath(_ reference: String, by actor: AuditActor) async throws -> MutationResult<PathRecord> {
        await committed(try await store.write { tx in
            let path = try tx.path(reference)
            let affected = try tx.bumpRevisions(Set(path.hops))
            try tx.appendAudit(AuditEntry(action: "path.provision", targetType: "path", targetID: path.id,
                                          detail: Self.detail(["name": path.name])), by: actor)
            return MutationResult(value: path, affectedNodes: affected)
        })
    }

    /// `cox paths color`: `#rrggbb` (the `#` optional), or empty to clear it. No node is pushed.
    public func setPathColor(_ reference: String, color: String, by actor: AuditActor) async throws -> PathRecord {
        let color = try Self.pathColor(color)
        return try await store.write { tx in
            var path = try tx.path(reference)
            try tx.setPathColor(path.id, color)
            path.color = color
            try tx.appendAudit(AuditEntry(action: "path.color", targetType: "path", targetID: path.id,
                                          detail: Self.detail(["name": path.name, "color": color])), by: actor)
            return path
        }
    }

    static func pathColor(_ text: String) throws(FleetInputError) -> String {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return "" }
        let hex = trimmed.hasPrefix("#") ? trimmed.dropFirst() : Substring(trimmed)
        guard hex.count == 6, hex.allSatisfy({ $0.isASCII && $0.isHexDigit }) else { throw .pathColor(text) }
        return "#" + hex.lowercased()
    }

    /// The live exit switch: from now on the device's AmneziaWG traffic entering at the path's
    /// entry leaves by the path's exit. Only node-side state changes (the entry's transit
    /// route, the next hops' link peers): the device keeps its keys, profile and tunnel.
    public func bindExit(device reference: String, path pathReference: String,
                         by actor: AuditActor) async throws -> MutationResult<ExitSwitch> {
        await committed(try await store.write { tx in
            let device = try tx.device(reference: reference)
            let path = try tx.path(pathReference)
            guard let entry = path.hops.first else { throw ProvisioningError.pathsNotSupported(spec: path.name) }
            let entryNode = try tx.node(entry)
            guard try tx.peers(device: device.id).contains(where: { $0.nodeID == entry && $0.protocol == .amneziawg }) else {
                throw FleetInputError.notAtEntry(device: device.name, path: path.name, entry: entryNode.name)
            }
            try Self.checkRoutes(device: device, exit: path, tx: tx)
            let previous = try tx.exitBinding(device: device.id).map { try tx.path($0.pathID) }
            try tx.bindExit(device: device.id, path: path.id)
            let affected = try tx.bumpRevisions(Set([entry] + (previous?.hops ?? [])))
            try tx.appendAudit(AuditEntry(action: "device.bind", targetType: "device", targetID: device.id,
                                          detail: Self.detail(["path": path.name, "previous": previous?.name ?? ""])), by: actor)
            return MutationResult(value: ExitSwitch(device: device, path: path, previous: previous), affectedNodes: affected)
        })
    }

    /// Ends the device's binding: its traffic leaves where its profile says again.
    public func unbindExit(device reference: String, by actor: AuditActor) async throws -> MutationResult<ExitSwitch> {
        await committed(try await store.write { tx in
            let device = try tx.device(reference: reference)
            guard let binding = try tx.exitBinding(device: device.id) else { throw FleetInputError.notBound(device: device.name) }
            let path = try tx.path(binding.pathID)
            _ = try tx.unbindExit(device: device.id)
            // What the profiles say must still hold together without the binding.
            try Self.checkRoutes(device: device, exit: nil, tx: tx)
            let affected = try tx.bumpRevisions(Set(path.hops))
            try tx.appendAudit(AuditEntry(action: "device.unbind", targetType: "device", targetID: device.id,
                                          detail: Self.detail(["path": path.name])), by: actor)
            return MutationResult(value: ExitSwitch(device: device, path: nil, previous: path), affectedNodes: affected)
        })
    }

    private static func checkRoutes(device: DeviceRecord, exit: PathRecord?, tx: StoreTransaction) throws {
        let specs = try tx.profileSpecs(for: device)
        var paths: [String: PathRecord] = [:]
        for pathID in Set(specs.compactMap(\.pathID)) { paths[pathID] = try tx.path(pathID) }
        let names = Dictionary(uniqueKeysWithValues: try tx.nodes().map { ($0.id, $0.name) })
        try DeviceProvisioning.checkRoutes(device: device, specs: specs, paths: paths, exit: exit, names: names)
    }
}

/// A device's exit moved: to `path` (nil when unbound), from `previous` (nil when it had none).
public struct ExitSwitch: Sendable {
    public var device: DeviceRecord
    public var path: PathRecord?
    public var previous: PathRecord?
}
