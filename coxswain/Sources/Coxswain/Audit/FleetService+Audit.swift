/// `cox audit verify`, `GET /api/audit/verify` and the UI's button: one walk of the chain.
public struct AuditVerification: Sendable {
    public var rows: Int
    /// The first broken link, nil when the chain is intact.
    public var broken: AuditChain.Break?

    public var intact: Bool { broken == nil }
}

extension FleetService {
    /// Reads the whole chain in one transaction and checks it oldest to newest.
    public func verifyAudit() async throws -> AuditVerification {
        let rows = try await store.read { tx in try tx.auditChain() }
        return AuditVerification(rows: rows.count, broken: AuditChain.verify(rows))
    }
}
