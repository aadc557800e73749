import Foundation
import PharosSpec

/// Cascades (#21): `cox paths add|list|rm`. A path names 2 or 3 nodes, entry first; each
/// consecutive pair gets an inner link (allocated once per pair and shared). Profile specs
/// with `--path` place the device on the entry; its traffic leaves at the last hop.
extension FleetService {
    public func addPath(name: String, hops references: [String], by actor: AuditActor) async throws -> MutationResult<PathRecord> {
        let trimmed = name.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw FleetInputError.emptyName(kind: "path") }
        guard (2...3).contains(references.count) else {
            throw FleetInputError.pathHops("a path has 2 or 3 hops (entry[,mid],exit), not \(references.count)")
        }
        return await committed(try await store.write { tx in
            let nodes = try references.map { try tx.node($0) }
            guard Set(nodes.map(\.id)).count == nodes.count else {
                throw FleetInputError.pathHops("a node appears twice in \(references.joined(separator: ","))")
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
            let path = PathRecord(id: EntityID.make(.path), name: trimmed, hops: nodes.map(\.id), createdAt: tx.now)
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
            try tx.deletePath(path.id)
            let retired = try tx.retireUnusedLinks()
            let affected = try tx.bumpRevisions(Set(path.hops).union(retired))
            try tx.appendAudit(AuditEntry(action: "path.rm", targetType: "path", targetID: path.id,
                                          detail: Self.detail(["name": path.name])), by: actor)
            return MutationResult(value: path, affectedNodes: affected)
        })
    }
}
