import Crypto
import Foundation
import PharosProto
import PharosSpec
import PharosTestSupport
import PharosTLS
import Testing
import X509
@testable import CaravelCore

/// Issue #20: a removed relay's certificate stays in date for up to 30 days. The device keeps
/// the controller's signed list of revoked relay leaves and refuses them at the handshake,
/// so a removed relay's machine (or whoever took its key) cannot collect the device's logins.
@Suite(.serialized) struct DeniedRelayIntegrationTests {
    /// A TLS server with a relay's leaf and key, the way a removed relay's old machine (or a
    /// thief with its key) would answer: real `openssl s_server`, printing what it receives.
    final class Impostor: @unchecked Sendable {
        let process = Process()
        let port = LoopbackPorts.free()[0]
        let log: String
        private let input = Pipe()

        init(certificate: String, key: String, log: String) throws {
            self.log = log
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            process.arguments = ["s_server", "-accept", "127.0.0.1:\(port)", "-cert", certificate, "-key", key, "-alpn", "h2"]
            process.standardInput = input  // kept open: s_server stops at the end of its input
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardError = process.standardOutput
            try process.run()
            for _ in 0..<100 where !received.contains("ACCEPT") { usleep(50_000) }
        }

        /// What it printed, with the bytes it received (HTTP/2 frames are not UTF-8).
        var received: String { String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self) }

        func stop() {
            // s_server does not stop on SIGTERM while it waits in accept.
            if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        }
        deinit { stop() }
    }

    @Test func aRemovedRelaysCertificateIsRefusedOnceTheDeviceHasSynced() async throws {
        let fleet = try await Fleet()
        defer { if ProcessInfo.processInfo.environment["KEEP_FLEET"] == nil { fleet.stop() } }
        let (scratch, store, account) = try await fleet.annsEnrolledLaptop()
        let (name, identity) = try #require(try store.identity())

        // The first sync stores the controller's list: signed, empty, 0600.
        let listFile = "\(store.directory)/\(name)\(DeniedRelayList.fileExtension)"
        let empty = try #require(try store.deniedRelays(name)).verified(signingKey: identity.signingPublicKey, fleetID: identity.caFingerprint)
        #expect(empty.serials.isEmpty)
        #expect(try FileManager.default.attributesOfItem(atPath: listFile)[.posixPermissions] as? Int == 0o600)

        // A remote relay, enrolled and removed; its machine keeps the leaf and key.
        let relayDir = "\(fleet.dir)/r1"
        let csr = try Tool.run("/usr/bin/openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                                                   "-keyout", "\(fleet.dir)/r1.key", "-subj", "/CN=r1", "-out", "\(fleet.dir)/r1.csr"])
        #expect(csr.status == 0, "\(csr.output)")
        try fleet.run(Fleet.cox, ["relays", "enroll", "--csr", "\(fleet.dir)/r1.csr", "--endpoint", "127.0.0.1:9", "--hostname", "r1.example.org",
                                  "--name", "r1", "--out", relayDir])
        let leaf = try #require(Certificate(firstIn: try String(contentsOfFile: "\(relayDir)/relay.crt", encoding: .utf8)))
        try fleet.run(Fleet.cox, ["relays", "rm", "r1"])

        let impostor = try Impostor(certificate: "\(relayDir)/relay.crt", key: "\(fleet.dir)/r1.key", log: "\(fleet.dir)/impostor.log")
        defer { impostor.stop() }
        // The device's way to its relay r1.example.org leads to that machine (DNS, a route, the
        // relay's old address reused).
        var hijacked = identity
        hijacked.relayAddress = "127.0.0.1:\(impostor.port)"
        hijacked.relayServerName = "r1.example.org"

        // A device that synced before the removal still holds the empty list: it would talk to
        // the impostor (this is what the list is for). A copy of the store shows it.
        let stale = try ProfileStore(directory: "\(scratch.path)/stale")
        try stale.saveIdentity(hijacked, name: name)
        let staleAttempt = Task { try await Account(store: stale).sync() }
        // s_server writes out what it received when the connection ends: give the attempt 3 s,
        // then end it (the impostor never answers).
        try await Task.sleep(for: .seconds(3))
        staleAttempt.cancel()
        _ = await staleAttempt.result
        for _ in 0..<50 where !impostor.received.contains("PRI * HTTP/2.0") { try await Task.sleep(for: .milliseconds(100)) }
        #expect(impostor.received.contains("PRI * HTTP/2.0"), "the impostor's leaf passes every other check: \(impostor.received)")

        // The next sync through the real relay brings the list naming r1's leaf.
        #expect(try await account.sync().profiles == 1)
        let list = try #require(try store.deniedRelays(name)).verified(signingKey: identity.signingPublicKey, fleetID: identity.caFingerprint)
        #expect(list.serials.contains(leaf.serialHex))
        #expect(list.issuedAtMilliseconds > empty.issuedAtMilliseconds)

        // Pointed at the impostor now, sync and renewal stop at the handshake, with the serial.
        let received = impostor.received
        try store.saveIdentity(hijacked, name: name)
        for attempt in ["sync", "renewal"] {
            await #expect {
                if attempt == "sync" { _ = try await account.sync() } else { _ = try await account.renewCertificateIfDue(force: true) }
            } throws: { error in
                guard let error = error as? CaravelError, case .untrusted(let message) = error else { return false }
                return message.contains("leaf serial \(leaf.serialHex) is revoked") && message.contains("127.0.0.1:\(impostor.port)")
            }
        }
        #expect(impostor.received.components(separatedBy: "PRI * HTTP/2.0").count == received.components(separatedBy: "PRI * HTTP/2.0").count,
                "nothing reached the impostor")
        try store.saveIdentity(identity, name: name)

        // A hostile edit of the stored list (r1's serial taken out, the signature kept) is refused
        // with the file's name, and the sync changes nothing.
        let stored = try #require(try store.deniedRelays(name))
        let trimmed = String(decoding: stored.payload, as: UTF8.self).replacingOccurrences(of: "\"\(leaf.serialHex)\"", with: "")
            .replacingOccurrences(of: ",]", with: "]").replacingOccurrences(of: "[,", with: "[")
        #expect(trimmed != String(decoding: stored.payload, as: UTF8.self))
        let hostile = DeniedRelayList.Signed(payload: Array(trimmed.utf8), signature: stored.signature).encoded()
        try Data(hostile).write(to: URL(fileURLWithPath: listFile))
        let before = Scratch.snapshot(store.directory)
        await #expect {
            _ = try await account.sync()
        } throws: { error in
            guard let error = error as? CaravelError, case .untrusted(let message) = error else { return false }
            return message.contains(listFile)
        }
        #expect(Scratch.snapshot(store.directory) == before)
    }
}

/// The list a sync keeps: the controller's answer to this sync's nonce, nothing else.
@Suite struct DeniedRelayChoiceTests {
    let key = Curve25519.Signing.PrivateKey()
    let fleet = String(repeating: "ab", count: 32)
    let nonce = secureRandomBytes(32)
    var signingKey: [UInt8] { Array(key.publicKey.rawRepresentation) }

    func answer(_ serials: [String], nonce: [UInt8]? = nil, key: Curve25519.Signing.PrivateKey? = nil) throws
        -> (Pharos_Lifecycle_V1_GetDeniedRelaysResponse, DeniedRelayList.Signed) {
        let signed = try DeniedRelayList(fleetID: fleet, issuedAtMilliseconds: 2_000, nonce: nonce ?? self.nonce, serials: serials)
            .signed(with: key ?? self.key)
        return (.with { $0.list = Data(signed.payload); $0.signature = Data(signed.signature) }, signed)
    }

    static func untrusted(_ error: any Error) -> Bool {
        guard let error = error as? CaravelError, case .untrusted = error else { return false }
        return true
    }

    @Test func theAnswerToThisSyncIsKept() throws {
        let (fresh, signed) = try answer(["aa", "bb"])
        #expect(try Account.deniedRelaysToKeep(fresh, nonce: nonce, kept: nil, signingKey: signingKey, fleetID: fleet) == signed)
        let (_, older) = try answer(["aa", "bb", "cc"], nonce: secureRandomBytes(32))
        #expect(try Account.deniedRelaysToKeep(fresh, nonce: nonce, kept: older, signingKey: signingKey, fleetID: fleet) == signed,
                "a shorter list replaces a longer one: relays come back from nothing only by enrolling again")
        #expect(try Account.deniedRelaysToKeep(nil, nonce: nonce, kept: nil, signingKey: signingKey, fleetID: fleet) == nil,
                "an older controller, and this device never had a list")
    }

    @Test func aReplayedAForgedOrAWithheldListStopsTheSync() throws {
        let (replayed, kept) = try answer(["aa"], nonce: secureRandomBytes(32))
        #expect(performing: {
            _ = try Account.deniedRelaysToKeep(replayed, nonce: nonce, kept: kept, signingKey: signingKey, fleetID: fleet)
        }, throws: Self.untrusted)
        let (forged, _) = try answer([], key: Curve25519.Signing.PrivateKey())
        #expect(performing: {
            _ = try Account.deniedRelaysToKeep(forged, nonce: nonce, kept: nil, signingKey: signingKey, fleetID: fleet)
        }, throws: Self.untrusted)
        let (otherFleet, _) = try answer([])
        #expect(performing: {
            _ = try Account.deniedRelaysToKeep(otherFleet, nonce: nonce, kept: nil, signingKey: signingKey, fleetID: String(repeating: "cd", count: 32))
        }, throws: Self.untrusted)
        // UNIMPLEMENTED after this device has had a list: what a relay cut off from the controller says.
        #expect(performing: {
            _ = try Account.deniedRelaysToKeep(nil, nonce: nonce, kept: kept, signingKey: signingKey, fleetID: fleet)
        }, throws: Self.untrusted)
    }
}
