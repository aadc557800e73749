import Crypto
import Testing
@testable import PharosSpec

@Suite struct DeviceIdentityTests {
    @Test func readsTheVectorAndWritesItBackIdentically() throws {
        let file = Vectors.bytes("device.pharosid")
        let identity = try DeviceIdentity(jsonBytes: file)
        #expect(identity.alias == "laptop")
        #expect(identity.relayAddress == "relay.example.org:8443")
        #expect(identity.signingPublicKey == Vectors.key("signing_public"))
        #expect(identity.encryptionKey != nil)
        #expect(identity.encoded() == file)
    }

    @Test func requiredFieldsAndBadKeys() throws {
        let text = Vectors.text("device.pharosid")
        let noRelay = text.replacingOccurrences(of: "\"relay_addr\"", with: "\"relay_address\"")
        #expect(throws: PharosFormatError.missingField(format: ".pharosid", field: "relay_addr")) {
            _ = try DeviceIdentity(jsonBytes: Array(noRelay.utf8))
        }
        let badKey = text.replacingOccurrences(of: "BEGIN X25519 PRIVATE KEY-----\\n", with: "BEGIN X25519 PRIVATE KEY-----\\nAAAA")
        let error = #expect(throws: PharosFormatError.self) { _ = try DeviceIdentity(jsonBytes: Array(badKey.utf8)) }
        guard case .invalidKey(let field, _) = error else { Issue.record("unexpected \(String(describing: error))"); return }
        #expect(field == "encryption_key")
    }

    @Test func omitsEmptyOptionalFields() throws {
        var identity = try DeviceIdentity(jsonBytes: Vectors.bytes("device.pharosid"))
        identity.user = ""
        identity.encryptionKey = nil
        identity.signingPublicKey = []
        let text = String(decoding: identity.encoded(), as: UTF8.self)
        #expect(!text.contains("\"user\"") && !text.contains("encryption_key") && !text.contains("signing_public_key"))
        #expect(try DeviceIdentity(jsonBytes: identity.encoded()) == identity)
    }
}

@Suite struct SyncedMarkerTests {
    @Test func roundTrip() throws {
        let marker = SyncedMarker(user: "ada@example.org", revision: 9, relay: "relay.example.org:8443",
                                  controller: String(repeating: "ab", count: 32), syncedAt: "2026-11-25T08:00:00Z")
        #expect(try SyncedMarker(jsonBytes: marker.encoded()) == marker)
        #expect(String(decoding: marker.json.compactBytes(), as: UTF8.self).hasPrefix(#"{"user":"ada@example.org","revision":9,"relay""#))
    }
}

@Suite struct WrappedPrivateKeyTests {
    @Test func unwrapsTheVector() throws {
        let wrapped = try WrappedPrivateKey(jsonBytes: Vectors.bytes("wrapped_key.json"))
        #expect(try wrapped.unwrap(passphrase: Vectors.password) == Vectors.key("recipient_private"))
        #expect(wrapped.encoded() == Vectors.bytes("wrapped_key.json"))
        #expect(throws: PharosFormatError.wrongPasswordOrTampered(format: "wrapped private key")) {
            _ = try wrapped.unwrap(passphrase: Array("nope".utf8))
        }
    }

    @Test func roundTrip() throws {
        let key = secureRandomBytes(32)
        let wrapped = try WrappedPrivateKey.wrap(key, passphrase: Array("pass".utf8))
        #expect(try WrappedPrivateKey(jsonBytes: wrapped.encoded()).unwrap(passphrase: Array("pass".utf8)) == key)
    }
}

@Suite struct JoinLinkTests {
    let ca = String(repeating: "0f", count: 32)

    @Test func writesSortedEscapedQueryAndParsesItBack() throws {
        let link = JoinLink(relay: "relay.example.org:8443", token: "tok-_en", caFingerprint: ca)
        #expect(link.url == "pharosvpn://enroll?ca=\(ca)&relay=relay.example.org%3A8443&token=tok-_en")
        #expect(try JoinLink(parsing: link.url) == link)
    }

    @Test func takesTheFirstNonEmptyTrimmedValue() throws {
        let link = try JoinLink(parsing: "  pharosvpn://enroll?token=&token=%20abc%20&relay=r.example:8443&ca=\(ca.uppercased())  ")
        #expect(link.token == "abc")
        #expect(link.matchesCA(ca.uppercased()))
    }

    @Test(arguments: [
        ("https://enroll?relay=r:1&token=t&ca=CA", "must start with"),
        ("pharosvpn://import?relay=r:1&token=t&ca=CA", "host is"),
        ("pharosvpn://enroll?relay=r:1&ca=CA", "token parameter is missing"),
        ("pharosvpn://enroll?relay=r&token=t&ca=CA", "has no port"),
        ("pharosvpn://enroll?relay=r:1&token=t&ca=abc", "64-hex-digit"),
        ("pharosvpn://enroll?relay=r:1&token=%zz&ca=CA", "percent-escape"),
    ])
    func rejectsWithASpecificReason(link: String, reason: String) {
        let error = #expect(throws: PharosFormatError.self) {
            _ = try JoinLink(parsing: link.replacingOccurrences(of: "CA", with: ca))
        }
        #expect(error?.description.contains(reason) == true, "\(String(describing: error))")
    }
}

@Suite struct FingerprintTests {
    @Test func deviceFingerprintHashesTheGoPEM() throws {
        let der = try #require(PEM.decode(type: "CERTIFICATE", from: Vectors.text("device_leaf.pem")))
        #expect(PEM.encode(type: "CERTIFICATE", der: der) == Vectors.text("device_leaf.pem"))
        #expect(Fingerprint.certificate(der: der) == Vectors.text("device_leaf.fingerprint"))
    }

    @Test func caFingerprintHashesTheDER() throws {
        let der = try #require(PEM.decode(type: "CERTIFICATE", from: Vectors.text("ca_root.pem")))
        #expect(Fingerprint.caRoot(der: der) == Vectors.text("ca_root.der.fingerprint"))
    }
}

@Suite struct ConventionTests {
    @Test func namesMatchUpstream() {
        #expect(PharosIdentity.sessionMetadataKey == "pharos-session")
        #expect(PharosIdentity.deviceFingerprintMetadataKey == "x-pharos-device-fp")
        #expect(PharosIdentity.certlessMethods == ["/pharos.account.v1.AccountSync/ClaimEnrollment"])
        #expect(PharosIdentity.Organization.relay == "PharosVPN Relay")
        #expect([PharosPorts.nodeControl, PharosPorts.relayClient, PharosPorts.relayTunnel] == [8444, 8443, 8444])
    }
}

/// Issue #20: the relay deny list a device keeps is the controller's, whole, for its fleet.
@Suite struct DeniedRelayListTests {
    let fleet = String(repeating: "ab", count: 32)
    let key = Curve25519.Signing.PrivateKey()
    var publicKey: [UInt8] { Array(key.publicKey.rawRepresentation) }

    let nonce = Array(repeating: UInt8(7), count: 16)

    func signed(_ serials: [String], at milliseconds: Int64 = 1_800_000_000_000) throws -> DeniedRelayList.Signed {
        try DeniedRelayList(fleetID: fleet, issuedAtMilliseconds: milliseconds, nonce: nonce, serials: serials).signed(with: key)
    }

    @Test func aSignedListVerifiesAndSurvivesTheStoredForm() throws {
        let signed = try signed(["0A1b", "ff", "0a1b"])
        let stored = try DeniedRelayList.Signed(jsonBytes: signed.encoded())
        #expect(stored == signed)
        let list = try stored.verified(signingKey: publicKey, fleetID: fleet.uppercased(), nonce: nonce)
        #expect(list.serials == ["0a1b", "ff"] && list.issuedAtMilliseconds == 1_800_000_000_000 && list.fleetID == fleet)
        #expect(try stored.verified(signingKey: publicKey, fleetID: nil) == list, "an identity naming no fleet")
        #expect(String(decoding: signed.payload, as: UTF8.self)
                    == #"{"v":1,"fleet":"\#(fleet)","issued_at_ms":1800000000000,"nonce":"BwcHBwcHBwcHBwcHBwcHBw==","serials":["0a1b","ff"]}"#)
    }

    @Test func anAnswerToAnotherRequestIsRefused() throws {
        let signed = try signed(["ff"])
        #expect(throws: PharosFormatError.self) {
            _ = try signed.verified(signingKey: publicKey, fleetID: fleet, nonce: Array(repeating: 8, count: 16))
        }
        let short = try DeniedRelayList(fleetID: fleet, issuedAtMilliseconds: 1, nonce: [1, 2, 3], serials: []).signed(with: key)
        #expect(throws: PharosFormatError.self) { _ = try short.verified(signingKey: publicKey, fleetID: fleet) }
    }

    @Test func aTrimmedListKeepingTheSignatureIsRefused() throws {
        let signed = try signed(["0a1b", "ff"])
        let trimmed = DeniedRelayList(fleetID: fleet, issuedAtMilliseconds: 1_800_000_000_000, nonce: nonce, serials: ["ff"])
        let forged = DeniedRelayList.Signed(payload: Array(#"{"v":1,"fleet":"\#(fleet)","issued_at_ms":1800000000000,"nonce":"BwcHBwcHBwcHBwcHBwcHBw==","serials":["ff"]}"#.utf8),
                                            signature: signed.signature)
        #expect(throws: PharosFormatError.signatureInvalid) { _ = try forged.verified(signingKey: publicKey, fleetID: fleet) }
        // Signed by another key (a relay's own list, say): refused too.
        let other = try trimmed.signed(with: Curve25519.Signing.PrivateKey())
        #expect(throws: PharosFormatError.signatureInvalid) { _ = try other.verified(signingKey: publicKey, fleetID: fleet) }
    }

    @Test func anotherFleetsListIsRefused() throws {
        let signed = try signed(["ff"])
        #expect(throws: PharosFormatError.self) { _ = try signed.verified(signingKey: publicKey, fleetID: String(repeating: "cd", count: 32)) }
    }

    @Test(arguments: [
        #"{"v":2,"list":"e30=","sig":"\#(String(repeating: "A", count: 86))=="}"#,
        #"{"v":1,"list":"e30=","sig":"AAAA"}"#,
        #"{"v":1,"list":"not base64!","sig":"\#(String(repeating: "A", count: 86))=="}"#,
        "[]", "",
    ])
    func aDamagedStoredFileIsRefused(_ text: String) {
        #expect(throws: PharosFormatError.self) { _ = try DeniedRelayList.Signed(jsonBytes: Array(text.utf8)) }
    }

    @Test func aSignedPayloadThatIsNotAListIsRefused() throws {
        for payload in [#"{"v":1,"fleet":"x","issued_at_ms":1,"nonce":"BwcHBwcHBwcHBwcHBwcHBw==","serials":["NOT-HEX"]}"#, #"{"v":9}"#, "{"] {
            let bytes = Array(payload.utf8)
            let signed = DeniedRelayList.Signed(payload: bytes, signature: Array(try key.signature(for: DeniedRelayList.context + bytes)))
            #expect(throws: PharosFormatError.self) { _ = try signed.verified(signingKey: publicKey, fleetID: "x") }
        }
    }
}
