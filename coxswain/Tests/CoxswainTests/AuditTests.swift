import Foundation
import Testing
@testable import Coxswain

/// The hash chain detects edits, deletions and reordering in the real SQLite file.
@Suite struct AuditTests {
    func stateWithHistory() async throws -> TestState {
        let state = try TestState()
        for index in 0..<5 {
            _ = try await state.service.addUser(name: "user \(index)", email: "u\(index)@example.com", by: state.actor)
        }
        return state
    }

    func verify(_ state: TestState) async throws -> AuditChain.Break? {
        AuditChain.verify(try await state.store.read { tx in try tx.auditChain() })
    }

    @Test func intactChainVerifies() async throws {
        let state = try await stateWithHistory()
        let rows = try await state.store.read { tx in try tx.auditChain() }
        #expect(rows.count == 5)
        #expect(rows.first?.prevHash == "")
        #expect(zip(rows, rows.dropFirst()).allSatisfy { $0.rowHash == $1.prevHash })
        #expect(try await verify(state) == nil)
    }

    @Test func auditRowCommitsWithItsChangeOrNotAtAll() async throws {
        let state = try await stateWithHistory()
        await #expect(throws: (any Error).self) {
            try await state.service.addUser(name: "dup", email: "u1@example.com", by: state.actor)
        }
        #expect(try await state.store.read { tx in try tx.auditChain().count } == 5, "a refused change leaves no audit row")
    }

    @Test func editedRowIsNamed() async throws {
        let state = try await stateWithHistory()
        let rows = try await state.store.read { tx in try tx.auditChain() }
        try state.store.executeRawForTesting("UPDATE audit_log SET actor = 'someone-else' WHERE id = ?", [rows[2].id])
        #expect(try await verify(state) == .edited(id: rows[2].id, position: 2))
    }

    @Test func deletedRowBreaksTheNextLink() async throws {
        let state = try await stateWithHistory()
        let rows = try await state.store.read { tx in try tx.auditChain() }
        try state.store.executeRawForTesting("DELETE FROM audit_log WHERE id = ?", [rows[1].id])
        guard case .unlinked(let id, let position, _, _) = try await verify(state) else {
            Issue.record("a deleted row went unnoticed"); return
        }
        #expect(id == rows[2].id && position == 1)
    }

    @Test func reorderedRowsAreDetected() async throws {
        let state = try await stateWithHistory()
        let rows = try await state.store.read { tx in try tx.auditChain() }
        try state.store.executeRawForTesting("UPDATE audit_log SET at = ? WHERE id = ?", [rows[3].at, rows[2].id])
        try state.store.executeRawForTesting("UPDATE audit_log SET at = ? WHERE id = ?", [rows[2].at, rows[3].id])
        let broken = try await verify(state)
        #expect(broken != nil)
    }

    @Test func recomputedTailIsStillCaughtWhenOneFieldChanges() async throws {
        // The tamper-evidence caveat upstream states: a writer who recomputes every later
        // hash goes unnoticed; one who edits a field and fixes only that row's hash does not.
        let state = try await stateWithHistory()
        let rows = try await state.store.read { tx in try tx.auditChain() }
        var forged = rows[1]
        forged.detail = "{\"forged\":true}"
        forged.rowHash = AuditChain.hash(previous: forged.prevHash, row: forged)
        try state.store.executeRawForTesting("UPDATE audit_log SET detail = ?, row_hash = ? WHERE id = ?",
                                             [forged.detail, forged.rowHash, forged.id])
        guard case .unlinked(let id, _, _, _) = try await verify(state) else { Issue.record("forgery unnoticed"); return }
        #expect(id == rows[2].id)
    }

    @Test func canonicalFormIsLengthPrefixedBigEndian() {
        let row = AuditRecord(id: "aud_x", at: 1, actor: "a", actorKind: "cli", action: "b", targetType: "", targetID: "",
                              sourceIP: "", detail: "", result: "ok", error: "", prevHash: "", rowHash: "")
        let bytes = AuditChain.canonical(row)
        #expect(Array(bytes.prefix(13)) == [0, 0, 0, 0, 0, 0, 0, 5] + Array("aud_x".utf8))
        #expect(Array(bytes[13..<21]) == [0, 0, 0, 0, 0, 0, 0x03, 0xE8], "at is UnixNano: 1 µs = 1000 ns")
    }

    @Test func queryFiltersAndCaps() async throws {
        let state = try await stateWithHistory()
        let all = try await state.store.read { tx in try tx.auditRows(AuditQuery(action: "user")) }
        #expect(all.count == 5 && all.first!.at > all.last!.at, "newest first")
        let one = try await state.store.read { tx in try tx.auditRows(AuditQuery(limit: 1)) }
        #expect(one.count == 1)
        #expect(AuditQuery(limit: 50_000).limit == 1000)
        let none = try await state.store.read { tx in try tx.auditRows(AuditQuery(actor: "nobody")) }
        #expect(none.isEmpty)
    }
}

extension AuditTests {
    @Test func retentionPurgeKeepsTheChainVerifiableButNotAHeadDeletion() async throws {
        let state = try await stateWithHistory()
        let rows = try await state.store.read { tx in try tx.auditChain() }
        let purged = try await state.store.write { tx in try tx.purgeAudit(olderThan: rows[2].at) }
        #expect(purged == 2)
        let after = try await state.store.read { tx in try tx.auditChain() }
        #expect(after.count == 4 && after.last?.action == AuditChain.purgeAction)
        #expect(AuditChain.verify(after) == nil, "a purge is not tampering")
        // Deleting the head by hand (no purge row vouching for it) is.
        try state.store.executeRawForTesting("DELETE FROM audit_log WHERE id = ?", [after[0].id])
        #expect(try await verify(state) != nil)
    }
}
