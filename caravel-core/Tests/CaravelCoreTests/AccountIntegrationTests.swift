import Crypto
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
        let (scratch, store, account) = try await fleet.annsEnrolledLaptop()
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

/// Issue #25: upstream's legacy path. The operator issues a `.pharosid` (`cox devices issue`);
/// the device syncs with it by e-mail and password, enrolls the account key (wrapped with a
/// passphrase the relay and controller never see) on its first sync, stores the wrapped key
/// and then opens account-sealed `.pharos` exports offline.
@Suite(.serialized) struct LegacyIdentityIntegrationTests {
    static let password: [UInt8] = Array("correct horse 42".utf8)
    static let passphrase: [UInt8] = Array("sea shells by the shore".utf8)

    static func caravelError(_ error: any Error) -> CaravelError? { error as? CaravelError }

    static func address(_ entry: ProfileStore.Entry) -> String? {
        for node in entry.bundle.profiles.first?.nodes ?? [] {
            for proto in node.protocols { if case .amneziaWG(let params) = proto { return params.address } }
        }
        return nil
    }

    @Test func anIssuedIdentitySyncsByPasswordEnrollsTheAccountKeyAndOpensAccountExports() async throws {
        let fleet = try await Fleet()
        defer { if ProcessInfo.processInfo.environment["KEEP_FLEET"] == nil { fleet.stop() } }
        try fleet.run(Fleet.cox, ["users", "add", "Ann", "--email", "ann@example.org"])
        try fleet.run(Fleet.cox, ["profiles", "create", "main", "--user", "ann@example.org", "--node", "n1", "--protocol", "amneziawg"])
        try fleet.run(Fleet.cox, ["users", "passwd", "ann@example.org"], input: String(decoding: Self.password, as: UTF8.self) + "\n")
        let file = "\(fleet.dir)/laptop.pharosid"
        let issued = try fleet.run(Fleet.cox, ["devices", "issue", "ann@example.org", "--name", "laptop", "--relay", fleet.relayAddr, "--out", file])
        #expect(issued.contains("wrote \(file)"))
        #expect(try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int == 0o600)
        // An existing file is never overwritten: it may hold another device's key.
        let before = try Data(contentsOf: URL(fileURLWithPath: file))
        #expect(throws: Fleet.Failure.self) {
            try fleet.run(Fleet.cox, ["devices", "issue", "ann@example.org", "--name", "laptop", "--relay", fleet.relayAddr, "--out", file])
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: file)) == before)

        let scratch = Scratch()
        let store = try ProfileStore(directory: "\(scratch.path)/store")
        let account = Account(store: store)
        let login = Account.Credentials(email: "ann@example.org", password: Self.password, passphrase: Self.passphrase)

        // Hostile copies, refused before any network use: another key beside the certificate;
        // no profile-signing key (the first answer's would be trusted).
        var tampered = try DeviceIdentity(jsonBytes: Array(before))
        tampered.deviceKey = P256.Signing.PrivateKey().pemRepresentation
        let forged = scratch.write("forged.pharosid", tampered.encoded())
        await #expect { _ = try await account.sync(identityFile: forged, login) } throws: {
            guard case .untrusted(let why) = Self.caravelError($0) else { return false }
            return why.contains("device_key does not belong to device_cert")
        }
        var unsigned = try DeviceIdentity(jsonBytes: Array(before))
        unsigned.signingPublicKey = []
        let unpinned = scratch.write("unpinned.pharosid", unsigned.encoded())
        await #expect { _ = try await account.sync(identityFile: unpinned, login) } throws: {
            guard case .untrusted(let why) = Self.caravelError($0) else { return false }
            return why.contains("names no profile-signing key")
        }
        // No key of its own: the passphrase is required. A wrong password is refused, and so
        // is a passphrase not repeated alike. Nothing stored, nothing enrolled.
        await #expect { _ = try await account.sync(identityFile: file, Account.Credentials()) } throws: {
            guard case .refused(let why) = Self.caravelError($0) else { return false }
            return why.contains("passphrase")
        }
        var wrongPassword = login
        wrongPassword.password = Array("wrong password".utf8)
        await #expect { _ = try await account.sync(identityFile: file, wrongPassword) } throws: {
            guard case .refused = Self.caravelError($0) else { return false }
            return true
        }
        var typo = login
        typo.confirmNewPassphrase = { Array("sea shells by the shorf".utf8) }
        await #expect { _ = try await account.sync(identityFile: file, typo) } throws: {
            guard case .refused(let why) = Self.caravelError($0) else { return false }
            return why.contains("passphrases differ")
        }
        let nothingStored = try store.identity() == nil
        #expect(store.names().isEmpty && nothingStored)

        // E-mail and password: the account key is enrolled, the profile sealed to it arrives.
        var confirmed = login
        confirmed.confirmNewPassphrase = { Self.passphrase }
        let first = try await account.sync(identityFile: file, confirmed)
        #expect(first.name == "laptop" && first.previousRevision == nil && first.profiles == 1)
        let (_, stored) = try #require(try store.identity())
        #expect(stored.encryptionKey == nil && stored.user == "ann@example.org")
        let wrapped = try #require(store.accountKey("laptop"))
        #expect(try FileManager.default.attributesOfItem(atPath: "\(store.directory)/laptop.accountkey")[.posixPermissions] as? Int == 0o600)
        #expect(try wrapped.unwrap(passphrase: Self.passphrase).count == 32)
        #expect(throws: PharosFormatError.self) { _ = try wrapped.unwrap(passphrase: Self.password) }
        let entry = try store.entry("laptop")
        #expect(entry.isCloud && entry.bundle.user == "ann@example.org" && entry.bundle.profiles.map(\.name) == ["main"])
        let laptopAddress = try #require(Self.address(entry))

        // Later syncs log in with the certificate; the passphrase still opens the account key.
        #expect(try await account.sync(passphrase: Self.passphrase).revision == first.revision)
        await #expect { _ = try await account.sync(passphrase: Self.password) } throws: {
            guard case .refused(let why) = Self.caravelError($0) else { return false }
            return why.contains("does not open the account key")
        }
        #expect(try store.entry("laptop").bundle.revision == first.revision, "a failed sync keeps the stored profile")

        // The operator's account-mode export opens with the stored account key and the passphrase.
        let export = "\(fleet.dir)/ann.pharos"
        try fleet.run(Fleet.cox, ["profile", "export", "ann@example.org", "--out", export])
        #expect(throws: CaravelError.format(.passwordRequired, file: export)) { _ = try store.importFile(at: export, as: "exported") }
        #expect { _ = try store.importFile(at: export, as: "exported", password: Self.password) } throws: {
            guard case .refused = Self.caravelError($0) else { return false }
            return true
        }
        #expect(!store.names().contains("exported"))
        let imported = try store.importFile(at: export, as: "exported", password: Self.passphrase)
        #expect(imported.bundle.user == "ann@example.org" && imported.bundle.profiles.map(\.name) == ["main"])

        // A second device, issued into the working directory (no --out). Another user's copy of
        // it does not replace Ann's account without asking.
        try fleet.run(Fleet.cox, ["devices", "issue", "ann@example.org", "--name", "desktop", "--relay", fleet.relayAddr])
        let second = "\(fleet.dir)/desktop.pharosid"
        #expect(try FileManager.default.attributesOfItem(atPath: second)[.posixPermissions] as? Int == 0o600)
        var foreign = try DeviceIdentity(jsonBytes: Array(try Data(contentsOf: URL(fileURLWithPath: second))))
        foreign.user = "mallory@example.org"
        let foreignFile = scratch.write("foreign.pharosid", foreign.encoded())
        await #expect { _ = try await account.sync(identityFile: foreignFile, login) } throws: {
            guard case .alreadyExists = Self.caravelError($0) else { return false }
            return true
        }
        #expect(try store.identity()?.name == "laptop")

        // The second device logs in by e-mail and gets its own profile (its own tunnel
        // address), not the laptop's; replace-all makes it the store's only account.
        let other = try await account.sync(identityFile: second, login)
        #expect(other.name == "desktop" && other.profiles == 1)
        let desktopAddress = try #require(Self.address(try store.entry("desktop")))
        #expect(desktopAddress != laptopAddress, "the e-mail session fetched another device's profile")
        #expect(Set(store.names()) == ["desktop", "exported"] && store.accountKey("laptop") == nil && store.accountKey("desktop") != nil)
        #expect(try store.identity()?.name == "desktop")
    }
}

extension Fleet {
    /// Ann with one profile, and her laptop enrolled with her join link into a fresh store.
    func annsEnrolledLaptop() async throws -> (scratch: Scratch, store: ProfileStore, account: Account) {
        let link = try annWithAProfile()
        let scratch = Scratch()
        let store = try ProfileStore(directory: "\(scratch.path)/store")
        let account = Account(store: store)
        _ = try await account.enroll(link: link, deviceName: "laptop")
        return (scratch, store, account)
    }

    /// User Ann with one profile on n1; her join link.
    func annWithAProfile() throws -> String {
        try run(Fleet.cox, ["users", "add", "Ann", "--email", "ann@example.org"])
        try run(Fleet.cox, ["profiles", "create", "main", "--user", "ann@example.org", "--node", "n1", "--protocol", "amneziawg"])
        return try run(Fleet.cox, ["enroll", "ann@example.org", "--relay", relayAddr]).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
