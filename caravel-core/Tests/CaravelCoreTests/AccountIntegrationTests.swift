import Foundation
import PharosSpec
import Testing
@testable import CaravelCore

/// caravel-core against a real `cox serve` (embedded relay, real mTLS) and a real node.
@Suite(.serialized) struct AccountIntegrationTests {
    @Test func enrollSyncResyncAndWorkOfflineFromTheStore() async throws {
        let fleet = try await Fleet()
        defer { if ProcessInfo.processInfo.environment["KEEP_FLEET"] == nil { fleet.stop() } }
        let link = try fleet.annWithAProfile()
        #expect(link.hasPrefix("pharosvpn://enroll?"))

        let scratch = Scratch()
        let store = try ProfileStore(directory: "\(scratch.path)/store")
        let account = Account(store: store)
        guard case .synced(let first) = try await account.enroll(link: link, deviceName: "laptop") else {
            Issue.record("enrolled without a profile"); return
        }
        #expect(first.name == "laptop" && first.previousRevision == nil && first.profiles == 1)
        let (_, identity) = try #require(try store.identity())
        #expect(identity.encryptionKey != nil && identity.signingPublicKey.count == 32 && identity.relayServerName == "localhost")
        #expect(JoinLink(relay: "", token: "", caFingerprint: identity.caFingerprint).matchesCA(try JoinLink(parsing: link).caFingerprint))
        let entry = try store.entry("laptop")
        #expect(entry.isCloud && entry.bundle.user == "ann@example.org" && entry.bundle.profiles.map(\.name) == ["main"])
        #expect(try ConnectPlan.resolve(entry: entry).nodeName == "n1")

        // The link works once.
        let second = try ProfileStore(directory: "\(scratch.path)/other")
        await #expect {
            _ = try await Account(store: second).enroll(link: link, deviceName: "phone")
        } throws: { error in
            guard let error = error as? CaravelError, case .refused = error else { return false }
            return true
        }

        // A profile change on the controller reaches the device on its next sync.
        try fleet.run(Fleet.cox, ["profiles", "create", "backup", "--user", "ann@example.org", "--node", "n1", "--protocol", "amneziawg"])
        let resync = try await account.sync()
        #expect(resync.previousRevision == first.revision && resync.revision > first.revision)
        #expect(try store.entry("laptop").bundle.profiles.map(\.name).sorted() == ["backup", "main"])
        #expect(store.names() == ["laptop"], "replace-all keeps one cloud entry")

        // Controller down: the store still lists and inspects; sync says the relay is unreachable.
        fleet.stopController()
        #expect(try store.entry("laptop").bundle.revision == resync.revision)
        #expect(store.entries().entries.count == 1)
        await #expect {
            _ = try await account.sync()
        } throws: { error in
            guard let error = error as? CaravelError, case .unreachable = error else { return false }
            return true
        }
        #expect(try store.entry("laptop").bundle.revision == resync.revision, "a failed sync changes nothing")

        // Revoked on the controller: the next sync is refused and the stored profile is kept.
        try fleet.startController()
        let deviceID = try fleet.run(Fleet.cox, ["devices", "list"]).split(separator: "\n")
            .first { $0.contains("laptop") }.flatMap { $0.split(separator: " ").first.map(String.init) }
        try fleet.run(Fleet.cox, ["devices", "rm", try #require(deviceID)])
        try await Task.sleep(for: .seconds(2))
        await #expect {
            _ = try await account.sync()
        } throws: { error in
            guard let error = error as? CaravelError, case .refused = error else { return false }
            return true
        }
        #expect(store.logout() == ["laptop"] && store.names().isEmpty)
    }

    /// Issue #20: the device renews its 30-day leaf through the relay with a key made here;
    /// the old leaf stops working once the new one has logged in; renewals are rate-limited.
    @Test func theDeviceCertificateRenewsThroughTheRelayAndTheOldOneIsRetired() async throws {
        let fleet = try await Fleet()
        defer { if ProcessInfo.processInfo.environment["KEEP_FLEET"] == nil { fleet.stop() } }
        let link = try fleet.annWithAProfile()
        let scratch = Scratch()
        let store = try ProfileStore(directory: "\(scratch.path)/store")
        let account = Account(store: store)
        _ = try await account.enroll(link: link, deviceName: "laptop")
        let (_, enrolled) = try #require(try store.identity())

        guard case .notDue(let renewAt) = try await account.renewCertificateIfDue() else {
            Issue.record("a fresh certificate was renewed"); return
        }
        #expect(renewAt.timeIntervalSinceNow > 19 * 86400 && renewAt.timeIntervalSinceNow < 21 * 86400, "due at two thirds of 30 days")

        guard case .renewed(let notAfter) = try await account.renewCertificateIfDue(now: renewAt + 1) else {
            Issue.record("a due certificate was not renewed"); return
        }
        #expect(notAfter.timeIntervalSinceNow > 29 * 86400)
        let (_, renewed) = try #require(try store.identity())
        #expect(renewed.deviceCertificate != enrolled.deviceCertificate && renewed.deviceKey != enrolled.deviceKey)
        #expect(try await account.sync().profiles == 1, "the renewed identity syncs")

        // The old certificate (a copy of the old identity, as a thief would hold it) is refused.
        let thief = try ProfileStore(directory: "\(scratch.path)/thief")
        try thief.saveIdentity(enrolled, name: "laptop")
        await #expect {
            _ = try await Account(store: thief).sync()
        } throws: { error in
            guard let error = error as? CaravelError, case .refused = error else { return false }
            return true
        }

        // A second renewal within the hour is refused and changes nothing.
        await #expect(throws: CaravelError.self) { _ = try await account.renewCertificateIfDue(force: true) }
        #expect(try store.identity()?.identity == renewed)
    }
}

extension Fleet {
    /// User Ann with one profile on n1; her join link.
    func annWithAProfile() throws -> String {
        try run(Fleet.cox, ["users", "add", "Ann", "--email", "ann@example.org"])
        try run(Fleet.cox, ["profiles", "create", "main", "--user", "ann@example.org", "--node", "n1", "--protocol", "amneziawg"])
        return try run(Fleet.cox, ["enroll", "ann@example.org", "--relay", relayAddr]).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
