import Crypto
import Testing
@testable import PharosSpec

@Suite struct ProfileEnvelopeTests {
    var expected: ProfileBundle { try! ProfileBundle(jsonBytes: Vectors.bytes("profile_bundle.json")) }

    @Test func opensEveryModeOfTheIndependentVectors() throws {
        let none = try ProfileEnvelope(jsonBytes: Vectors.bytes("profile_none.pharos"))
        #expect(none.encryption == .none)
        #expect(try none.open() == expected)

        let password = try ProfileEnvelope(jsonBytes: Vectors.bytes("profile_password.pharos"))
        #expect(try password.open(.init(password: Vectors.password)) == expected)

        let account = try ProfileEnvelope(jsonBytes: Vectors.bytes("profile_account.pharos"))
        #expect(try account.open(.init(accountKey: Vectors.recipient, signingPublicKey: Vectors.signingPublic)) == expected)
    }

    @Test func plainEnvelopeIsByteIdenticalToTheVector() throws {
        #expect(ProfileEnvelope.plain(expected).encoded() == Vectors.bytes("profile_none.pharos").filterUnknownProtocol())
    }

    @Test func passwordEnvelopeWithPinnedSaltAndNonceMatchesTheVector() throws {
        let vector = try ProfileEnvelope(jsonBytes: Vectors.bytes("profile_password.pharos"))
        let bundle = try ProfileBundle(jsonBytes: Vectors.bytes("profile_bundle.json"))
        let ours = try ProfileEnvelope.passwordProtected(bundle, password: Vectors.password,
                                                         salt: vector.kdf!.salt!, nonce: vector.nonce)
        // The vector's plaintext carries an unknown protocol type we drop, so compare headers and open both.
        #expect(ours.additionalData == vector.additionalData)
        #expect(try ours.open(.init(password: Vectors.password)) == expected)
    }

    @Test func roundTripsEveryMode() throws {
        let recipient = Curve25519.KeyAgreement.PrivateKey()
        let signer = Curve25519.Signing.PrivateKey()
        let envelopes = [
            ProfileEnvelope.plain(expected),
            try ProfileEnvelope.passwordProtected(expected, password: Array("pw".utf8)),
            ProfileEnvelope.account(try SealedBundle.seal(expected.json.compactBytes(), to: recipient.publicKey, signingKey: signer)),
        ]
        for envelope in envelopes {
            let reread = try ProfileEnvelope(jsonBytes: envelope.encoded())
            #expect(reread == envelope)
            let secrets = ProfileEnvelope.Secrets(password: Array("pw".utf8), accountKey: recipient, signingPublicKey: signer.publicKey)
            #expect(try reread.open(secrets) == expected)
        }
    }

    @Test func passwordToNoneDowngradeIsRefused() throws {
        let text = Vectors.text("profile_password.pharos").replacingOccurrences(of: "\"enc\": \"password\"", with: "\"enc\": \"none\"")
        let envelope = try ProfileEnvelope(jsonBytes: Array(text.utf8))
        let error = #expect(throws: PharosFormatError.self) { _ = try envelope.open() }
        guard case .downgradeDetected = error else { Issue.record("expected a downgrade error, got \(String(describing: error))"); return }
    }

    @Test func headerTamperingFailsAuthentication() throws {
        var envelope = try ProfileEnvelope(jsonBytes: Vectors.bytes("profile_password.pharos"))
        envelope.kdf!.parameters.time = 2
        #expect(throws: PharosFormatError.wrongPasswordOrTampered(format: ".pharos")) {
            _ = try envelope.open(.init(password: Vectors.password))
        }
    }

    @Test func wrongPassword() throws {
        let envelope = try ProfileEnvelope(jsonBytes: Vectors.bytes("profile_password.pharos"))
        #expect(throws: PharosFormatError.wrongPasswordOrTampered(format: ".pharos")) {
            _ = try envelope.open(.init(password: Array("Tr0ub4dor&3".utf8)))
        }
        #expect(throws: PharosFormatError.passwordRequired) { _ = try envelope.open() }
    }

    @Test func hostileKDFParametersAreRefusedBeforeDeriving() throws {
        var envelope = try ProfileEnvelope(jsonBytes: Vectors.bytes("profile_password.pharos"))
        envelope.kdf!.parameters.memoryKiB = 4 << 20
        let error = #expect(throws: PharosFormatError.self) { _ = try envelope.open(.init(password: Vectors.password)) }
        guard case .kdfRejected = error else { Issue.record("expected kdfRejected, got \(String(describing: error))"); return }
    }

    @Test func aKDFWeakerThanEveryWriterUsesIsADowngrade() throws {
        var envelope = try ProfileEnvelope(jsonBytes: Vectors.bytes("profile_password.pharos"))
        envelope.kdf!.parameters.memoryKiB = 8192
        let error = #expect(throws: PharosFormatError.self) { _ = try envelope.open(.init(password: Vectors.password)) }
        guard case .downgradeDetected = error else { Issue.record("expected downgradeDetected, got \(String(describing: error))"); return }
    }

    @Test func accountModeNeedsKeys() throws {
        let envelope = try ProfileEnvelope(jsonBytes: Vectors.bytes("profile_account.pharos"))
        #expect(throws: PharosFormatError.accountKeysRequired) { _ = try envelope.open() }
    }

    @Test func unknownVersionAndFormat() throws {
        let v2 = Vectors.text("profile_none.pharos").replacingOccurrences(of: "\"v\": 1,\n  \"enc\"", with: "\"v\": 2,\n  \"enc\"")
        #expect(throws: PharosFormatError.unsupportedVersion(format: ".pharos", version: "2")) {
            _ = try ProfileEnvelope(jsonBytes: Array(v2.utf8))
        }
        #expect(throws: PharosFormatError.notThisFormat(format: ".pharos", found: "\"pharos-device\"")) {
            _ = try ProfileEnvelope(jsonBytes: Vectors.bytes("device.pharosid"))
        }
        let unknownEnc = Vectors.text("profile_none.pharos").replacingOccurrences(of: "\"enc\": \"none\"", with: "\"enc\": \"quantum\"")
        #expect(throws: PharosFormatError.unknownEncryptionMode("quantum")) {
            _ = try ProfileEnvelope(jsonBytes: Array(unknownEnc.utf8))
        }
    }

    @Test func sniffsContentNotNames() {
        #expect(ProfileEnvelope.sniff(Vectors.bytes("profile_account.pharos")))
        #expect(ProfileEnvelope.sniff(Vectors.bytes("profile_password.pharos")))
        #expect(!ProfileEnvelope.sniff(Vectors.bytes("device.pharosid")))
        #expect(!ProfileEnvelope.sniff(Vectors.bytes("device_leaf.pem")))
    }
}

extension [UInt8] {
    /// The vector's "none" file with the unknown protocol entry removed, as our reader drops it.
    fileprivate func filterUnknownProtocol() -> [UInt8] {
        let value = try! JSONValue(parsing: self)
        return Self.strip(value).indentedBytes()
    }

    private static func strip(_ v: JSONValue) -> JSONValue {
        switch v {
        case .array(let items):
            return .array(items.filter { $0["type"] != .string("wireguard-quantum") }.map(strip))
        case .object(let members):
            return .object(members.map { JSONMember($0.key, strip($0.value)) })
        default:
            return v
        }
    }
}
