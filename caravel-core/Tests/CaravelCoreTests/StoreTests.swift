import Crypto
import Foundation
import PharosSpec
import Testing
@testable import CaravelCore

@Suite struct StoreTests {
    /// A store holding a device identity whose keys open the account-mode vector.
    static func storeWithVectorIdentity(_ scratch: Scratch, signing: [UInt8] = Vectors.key("signing_public")) throws -> ProfileStore {
        let store = try ProfileStore(directory: "\(scratch.path)/store")
        var identity = try DeviceIdentity(jsonBytes: Vectors.bytes("device.pharosid"))
        identity.signingPublicKey = signing
        identity.encryptionKey = try .init(rawRepresentation: Vectors.key("recipient_private"))
        try store.saveIdentity(identity, name: "laptop")
        return store
    }

    @Test func everyEncryptionModeOfTheVectorsImportsAndIsStoredOpened() throws {
        let scratch = Scratch()
        let store = try Self.storeWithVectorIdentity(scratch)
        let plain = try store.importFile(at: Vectors.path("profile_none.pharos"), as: "plain")
        let password = try store.importFile(at: Vectors.path("profile_password.pharos"), as: "pw", password: Vectors.password)
        let account = try store.importFile(at: Vectors.path("profile_account.pharos"), as: "acct")
        #expect(plain.bundle == password.bundle && password.bundle == account.bundle)
        #expect(plain.bundle.user == "ada@example.org" && plain.bundle.revision == 7)
        // Stored opened (enc none), 0600, in a 0700 directory; a renamed file is sniffed by content.
        let stored = try ProfileEnvelope(jsonBytes: Array(FileManager.default.contents(atPath: "\(store.directory)/pw.pharos")!))
        #expect(stored.encryption == .none)
        #expect(try FileManager.default.attributesOfItem(atPath: "\(store.directory)/pw.pharos")[.posixPermissions] as? Int == 0o600)
        #expect(try FileManager.default.attributesOfItem(atPath: store.directory)[.posixPermissions] as? Int == 0o700)
        let renamed = scratch.write("holiday.txt", Vectors.bytes("profile_none.pharos"))
        #expect(try store.importFile(at: renamed).name == "holiday")
        #expect(try store.entry("pw").bundle == plain.bundle)
        #expect(store.entries().entries.map(\.name) == ["acct", "holiday", "plain", "pw"])
    }

    @Test func hostileFilesEachGetTheirOwnErrorAndLeaveTheStoreUntouched() throws {
        let scratch = Scratch()
        let store = try Self.storeWithVectorIdentity(scratch)
        _ = try store.importFile(at: Vectors.path("profile_none.pharos"), as: "existing")
        let before = Scratch.snapshot(store.directory)

        let passwordFile = try JSONValue(parsing: Vectors.bytes("profile_password.pharos"))
        let accountFile = try JSONValue(parsing: Vectors.bytes("profile_account.pharos"))
        guard case .object(let sealedMembers)? = accountFile["payload"] else { Issue.record("account vector has no payload"); return }
        let unsigned = accountFile.setting("payload", JSONValue.object(sealedMembers).setting("sig", .null))
        let cases: [(String, [UInt8], [UInt8]?, (CaravelError) -> Bool)] = [
            ("truncated", Array(Vectors.bytes("profile_none.pharos").prefix(120)), nil, {
                if case .format(.malformed, _) = $0 { true } else { false } }),
            ("wrong password", Vectors.bytes("profile_password.pharos"), Array("not the password".utf8), {
                if case .format(.wrongPasswordOrTampered, _) = $0 { true } else { false } }),
            ("downgraded to none", passwordFile.setting("enc", .string("none")).compactBytes(), nil, {
                if case .format(.downgradeDetected, _) = $0 { true } else { false } }),
            ("kdf weakened", passwordFile.setting("kdf", .object([JSONMember("algo", .string("argon2id")), JSONMember("t", .integer(1)),
                                                                  JSONMember("m", .integer(8192)), JSONMember("p", .integer(4)),
                                                                  JSONMember("salt", passwordFile["kdf"]!["salt"]!)])).compactBytes(),
             Vectors.password, { if case .format(.downgradeDetected, _) = $0 { true } else { false } }),
            ("unsigned", unsigned.compactBytes(), nil, { $0.description.contains("not signed") }),
            ("future version", accountFile.setting("v", .integer(2)).compactBytes(), nil, {
                if case .format(.unsupportedVersion, _) = $0 { true } else { false } }),
            ("device identity", try DeviceIdentity(jsonBytes: Array(FileManager.default.contents(
                atPath: "\(store.directory)/laptop.pharosid")!)).encoded(), nil, { $0.description.contains("device identity") }),
        ]
        var messages = Set<String>()
        for (label, bytes, password, matches) in cases {
            let file = scratch.write("\(label).pharos", bytes)
            do {
                _ = try store.importFile(at: file, as: "new", password: password)
                Issue.record("\(label): imported")
            } catch {
                #expect(matches(error), "\(label): \(error)")
                messages.insert("\(error)".replacingOccurrences(of: file, with: "FILE"))
            }
        }
        #expect(messages.count == cases.count, "every hostile file should get its own message")
        #expect(Scratch.snapshot(store.directory) == before)
    }

    @Test func aBundleSignedByAnotherKeyIsRefused() throws {
        let scratch = Scratch()
        let other = Array(Curve25519.Signing.PrivateKey().publicKey.rawRepresentation)
        let store = try Self.storeWithVectorIdentity(scratch, signing: other)
        let before = Scratch.snapshot(store.directory)
        #expect(throws: CaravelError.untrusted("\(Vectors.path("profile_account.pharos")): the profile is signed by a key other than your controller's; it was not imported")) {
            _ = try store.importFile(at: Vectors.path("profile_account.pharos"))
        }
        #expect(Scratch.snapshot(store.directory) == before)
    }

    @Test func syncReplacesEveryCloudProfileAndLogoutKeepsImportedOnes() throws {
        let scratch = Scratch()
        let store = try Self.storeWithVectorIdentity(scratch)
        let bundle = try ProfileEnvelope(jsonBytes: Vectors.bytes("profile_none.pharos")).open()
        _ = try store.importFile(at: Vectors.path("profile_none.pharos"), as: "imported")
        let (_, identity) = try #require(try store.identity())
        let marker = SyncedMarker(user: "ada@example.org", revision: 7, relay: "r:1", controller: "ab", syncedAt: "2026-11-25T00:00:00Z")
        try store.replaceCloud(name: "old-cloud", bundle: bundle, identity: identity, marker: marker)
        try store.replaceCloud(name: "laptop", bundle: bundle, identity: identity, marker: marker)
        #expect(store.names() == ["imported", "laptop"], "the older cloud entry is replaced, the import stays")
        #expect(try store.entry("laptop").isCloud && !(try store.entry("imported").isCloud))
        #expect(try store.identity()?.name == "laptop")
        #expect(store.logout() == ["laptop"])
        #expect(store.names() == ["imported"])
        #expect(try store.identity() == nil)
    }

    @Test(arguments: ["", ".hidden", "a/b", String(repeating: "x", count: 65), "ünïcode"])
    func unusableNamesAreRefused(name: String) {
        #expect(throws: CaravelError.self) { try ProfileStore.validate(name: name) }
    }

    @Test func theDefaultStoreFollowsTheEnvironment() {
        #expect(ProfileStore.defaultDirectory(environment: ["CARAVEL_HOME": "/x"]) == "/x")
        if geteuid() != 0 {
            #expect(ProfileStore.defaultDirectory(environment: ["XDG_CONFIG_HOME": "/c"]) == "/c/PharosVPN/profiles")
        } else {
            #expect(ProfileStore.defaultDirectory(environment: [:]) == "/var/lib/pharos/caravel")
        }
    }
}

@Suite struct ResolutionTests {
    static func entry() throws -> ProfileStore.Entry {
        ProfileStore.Entry(name: "vec", bundle: try ProfileEnvelope(jsonBytes: Vectors.bytes("profile_none.pharos")).open(), marker: nil)
    }

    @Test func defaultsFollowUpstreamsRules() throws {
        let entry = try Self.entry()
        let plan = try ConnectPlan.resolve(entry: entry)
        let first = entry.bundle.profiles[0]
        #expect(plan.profileID == first.id)
        #expect(first.protocolChoice == .both && plan.engine == .amneziaWG, "both → AmneziaWG unless XRay is asked for")
        #expect(plan.mtu == (first.mtu ?? 1420))
        #expect(plan.routes == ["0.0.0.0/0", "::/0"])
        guard case .amneziaWG(let wg)? = first.nodes[0].protocols.first(where: { if case .amneziaWG = $0 { true } else { false } }) else {
            Issue.record("vector has no AmneziaWG"); return
        }
        #expect(wg.endpoints.contains { $0.ip == plan.endpointHost && ($0.portMin...$0.portMax).contains(plan.endpointPort) })
        let xray = try ConnectPlan.resolve(entry: entry, engine: .xrayReality)
        #expect(xray.engine == .xrayReality && xray.xray != nil && xray.wireGuard == nil)
    }

    @Test func unknownProfilesAndNodesSayWhatExists() throws {
        let entry = try Self.entry()
        #expect {
            _ = try ConnectPlan.resolve(entry: entry, profile: "nowhere")
        } throws: { "\($0)".contains(entry.bundle.profiles[0].name) }
        #expect(throws: CaravelError.self) { _ = try ConnectPlan.resolve(entry: entry, node: "nod_missing") }
    }

    @Test func xrayClientConfigCarriesTheRealityParameters() throws {
        let plan = try ConnectPlan.resolve(entry: try Self.entry(), engine: .xrayReality)
        let text = String(decoding: try XRayClient.config(plan: plan).compactBytes(), as: UTF8.self)
        #expect(text.contains("\"security\":\"reality\"") && text.contains(plan.xray!.uuid) && text.contains(plan.xray!.publicKey))
        #expect(text.contains("\"port\":\(plan.endpointPort)"))
    }
}
