import Foundation
import Logging
import Testing
@testable import Coxswain

@Suite struct StoreTests {
    /// `retention.metrics_days`: the daily purge drops connection history and resolved alerts
    /// older than it; newer rows, and unresolved alerts however old, stay.
    @Test func historyRetentionDropsOldEventsAndOldResolvedAlertsOnly() async throws {
        let state = try TestState()
        var config = CoxConfig()
        config.metricsRetentionDays = 7
        let day: Int64 = 86_400_000_000, now = StoreClock.now()
        for (id, at) in [("ev_old", now - 8 * day), ("ev_new", now - day)] {
            try state.store.executeRawForTesting("""
                INSERT INTO connection_events (id, at, node_id, peer_id, protocol, event_type) VALUES (?, ?, 'node_1', 'peer_1', 'amneziawg', 'connect')
                """, [id, at])
        }
        for (id, status, updated) in [("al_old_resolved", "resolved", now - 8 * day), ("al_new_resolved", "resolved", now - day),
                                      ("al_old_open", "open", now - 30 * day)] {
            try state.store.executeRawForTesting("""
                INSERT INTO alerts (id, at, kind, severity, status, dedup_key, created_at, updated_at) VALUES (?, ?, 'fleet_health', 'warning', ?, ?, ?, ?)
                """, [id, updated, status, id, updated, updated])
        }
        await Controller.purgeExpired(state.store, config, Logger(label: "test"))
        let (events, alerts) = try await state.store.read { tx in
            (try tx.connectionEvents().map(\.id), try tx.alerts(AlertQuery(limit: 100)).items.map(\.id))
        }
        #expect(events == ["ev_new"])
        #expect(Set(alerts) == ["al_new_resolved", "al_old_open"])
    }

    @Test(.enabled(if: TestState.engine == .sqlite, "SQLite's file"))
    func databaseIsAPrivateWALFile() async throws {
        let state = try TestState()
        let attributes = try FileManager.default.attributesOfItem(atPath: state.store.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let dirAttributes = try FileManager.default.attributesOfItem(atPath: "\(state.dir)/state")
        #expect((dirAttributes[.posixPermissions] as? Int) == 0o700)
        #expect(FileManager.default.fileExists(atPath: state.store.path + "-wal"))
    }

    @Test func identifiersHaveUpstreamShape() {
        var seen = Set<String>()
        for _ in 0..<1000 {
            let id = EntityID.make(.node)
            #expect(EntityID.isValid(id, .node), "\(id)")
            #expect(id.count == 20)
            seen.insert(id)
        }
        #expect(seen.count == 1000)
        #expect(!EntityID.isValid("nod_ABCDEFGHIJKLMNOP", .node))
        #expect(!EntityID.isValid("usr_abcdefghijklmnop", .node))
        #expect(!EntityID.isValid("nod_abcdefghijklmno1", .node), "1 is not in the base32 alphabet")
    }

    @Test func staleWriteFailsWithItsOwnError() async throws {
        let state = try TestState()
        let node = try await state.readyNode(name: "n1")
        var editing = node
        editing.region = "eu"
        let edit = editing
        let saved = try await state.store.write { tx in try tx.update(edit, expectedVersion: node.version) }
        #expect(saved.version == node.version + 1)
        var staleEdit = node
        staleEdit.region = "us"
        let stale = staleEdit
        await #expect(throws: StoreError.staleWrite(kind: "node", id: node.id, expected: node.version, current: node.version + 1)) {
            try await state.store.write { tx in try tx.update(stale, expectedVersion: node.version) }
        }
        #expect(try await state.store.read { tx in try tx.node(node.id).region } == "eu", "the stale write changed nothing")
    }

    @Test func controllerOwnedFieldsDoNotBumpVersion() async throws {
        let state = try TestState()
        let node = try await state.readyNode(name: "n1")
        try await state.store.write { tx in
            try tx.bumpRevision(node: node.id)
            try tx.recordApplied(node: node.id, revision: 1)
            try tx.recordMissedPoll(node: node.id, error: "x", limit: 3)
        }
        let after = try await state.store.read { tx in try tx.node(node.id) }
        #expect(after.version == node.version, "an operator's edit must not 409 because the reconciler touched the row")
        #expect(after.configRevision == 1 && after.appliedRevision == 1)
    }

    @Test func missedPollsMarkANodeUnreachableAtTheLimit() async throws {
        let state = try TestState()
        let node = try await state.readyNode(name: "n1")
        let statuses = try await state.store.write { tx in
            try (0..<3).map { _ in try tx.recordMissedPoll(node: node.id, error: "connection refused", limit: 3) }
        }
        #expect(statuses == [.active, .active, .unreachable])
    }

    @Test func duplicatesAreRefusedByName() async throws {
        let state = try TestState()
        _ = try await state.service.addUser(name: "A", email: "a@example.com", by: state.actor)
        await #expect(throws: StoreError.duplicate(kind: "user", field: "email", value: "a@example.com")) {
            try await state.service.addUser(name: "B", email: "A@Example.com", by: state.actor)
        }
        await #expect(throws: FleetInputError.notAnEmail("not-an-address")) { try await state.service.addUser(name: "C", email: "not-an-address", by: state.actor) }
    }

    @Test func keyMaterialIsCreatedOnceAndReloaded() async throws {
        let state = try TestState()
        let again = try FleetPKI.loadOrCreate(in: state.store)
        #expect(try again.authority.fingerprint == state.pki.authority.fingerprint)
        #expect(again.controllerCertificatePEM == state.pki.controllerCertificatePEM)
        #expect(again.signingKey.rawRepresentation == state.pki.signingKey.rawRepresentation)
    }
}
