import Crypto
import Testing
@testable import PharosSpec

@Suite struct SealedBundleTests {
    let plaintext = Array(#"{"profiles":[]}"#.utf8)

    @Test func roundTrip() throws {
        let recipient = Curve25519.KeyAgreement.PrivateKey()
        let signer = Curve25519.Signing.PrivateKey()
        let sealed = try SealedBundle.seal(plaintext, to: recipient.publicKey, signingKey: signer)
        let reread = try SealedBundle(jsonBytes: sealed.encoded())
        #expect(reread == sealed)
        #expect(try reread.open(with: recipient, signingPublicKey: signer.publicKey) == plaintext)
    }

    @Test func opensTheIndependentVector() throws {
        let opened = try SealedBundle.open(Vectors.bytes("sealed_bundle.json"), with: Vectors.recipient,
                                           signingPublicKey: Vectors.signingPublic)
        #expect(opened == Vectors.bytes("profile_bundle.json"))
    }

    @Test func sealWithPinnedRandomnessIsByteIdenticalToTheVector() throws {
        let r = try Vectors.keys.objectOrEmpty("sealed_bundle_randomness")
        let randomness = SealedBundle.SealRandomness(
            dataKey: try r.bytes("data_key"),
            ephemeralKey: try .init(rawRepresentation: r.bytes("ephemeral_private")),
            wrapNonce: try r.bytes("wn"), nonce: try r.bytes("n"))
        let sealed = try SealedBundle.seal(Vectors.bytes("profile_bundle.json"), to: Vectors.recipient.publicKey,
                                           signingKey: Vectors.signer, randomness: randomness)
        #expect(sealed.encoded() == Vectors.bytes("sealed_bundle.json"))
    }

    @Test func signedBytesIgnoreKeyOrderAndUnknownMembers() throws {
        let original = try SealedBundle(jsonBytes: Vectors.bytes("sealed_bundle.json"))
        guard case .object(let members) = original.json else { Issue.record("not an object"); return }
        let shuffled = JSONValue.object(members.reversed() + [JSONMember("future", .string("ignored"))])
        let reread = try SealedBundle(jsonBytes: shuffled.compactBytes())
        #expect(try reread.open(with: Vectors.recipient, signingPublicKey: Vectors.signingPublic) == Vectors.bytes("profile_bundle.json"))
    }

    @Test func everySingleByteFlipIsRejected() throws {
        let file = Vectors.bytes("sealed_bundle.json")
        for index in file.indices {
            for mask: UInt8 in [0x01, 0x80] {
                var flipped = file
                flipped[index] ^= mask
                #expect(throws: PharosFormatError.self, "flip of byte \(index) with mask \(mask) was accepted") {
                    _ = try SealedBundle.open(flipped, with: Vectors.recipient, signingPublicKey: Vectors.signingPublic)
                }
            }
        }
    }

    @Test func signatureIsVerifiedBeforeAnyDecryption() throws {
        var bundle = try SealedBundle(jsonBytes: Vectors.bytes("sealed_bundle.json"))
        bundle.ciphertext[0] ^= 1
        // Also wrong recipient: the signature failure must win.
        #expect(throws: PharosFormatError.signatureInvalid) {
            _ = try bundle.open(with: Curve25519.KeyAgreement.PrivateKey(), signingPublicKey: Vectors.signingPublic)
        }
    }

    @Test func wrongRecipientKey() throws {
        #expect(throws: PharosFormatError.notSealedToThisKey) {
            _ = try SealedBundle.open(Vectors.bytes("sealed_bundle.json"), with: Curve25519.KeyAgreement.PrivateKey(),
                                      signingPublicKey: Vectors.signingPublic)
        }
    }

    @Test func wrongSigningKey() throws {
        #expect(throws: PharosFormatError.signatureInvalid) {
            _ = try SealedBundle.open(Vectors.bytes("sealed_bundle.json"), with: Vectors.recipient,
                                      signingPublicKey: Curve25519.Signing.PrivateKey().publicKey)
        }
    }

    @Test func truncatedInput() throws {
        let file = Vectors.bytes("sealed_bundle.json")
        let error = #expect(throws: PharosFormatError.self) {
            _ = try SealedBundle(jsonBytes: Array(file.prefix(file.count / 2)))
        }
        guard case .malformed(_, let reason) = error else { Issue.record("unexpected \(String(describing: error))"); return }
        #expect(reason.contains("unterminated") || reason.contains("end of input"), "\(reason)")
    }

    @Test func invalidBase64() throws {
        var bundle = try SealedBundle(jsonBytes: Vectors.bytes("sealed_bundle.json")).json
        guard case .object(var members) = bundle else { return }
        members[3].value = .string("not*base64")
        bundle = .object(members)
        #expect(throws: PharosFormatError.invalidBase64(format: "sealed bundle", field: "wk")) {
            _ = try SealedBundle(jsonBytes: bundle.compactBytes())
        }
    }

    @Test func nonCanonicalBase64IsInvalid() throws {
        // 32 bytes: the last character carries two unused bits; setting one must not verify.
        let text = Vectors.text("sealed_bundle.json")
        let epk = try SealedBundle(jsonBytes: Vectors.bytes("sealed_bundle.json")).ephemeralPublicKey
        let canonical = Base64.standard(epk)
        let chars = Array(canonical)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        let last = alphabet.firstIndex(of: chars[42])!
        let sibling = String(chars[0..<42]) + String(alphabet[last ^ 1]) + "="
        let altered = text.replacingOccurrences(of: canonical, with: sibling)
        #expect(throws: PharosFormatError.invalidBase64(format: "sealed bundle", field: "epk")) {
            _ = try SealedBundle(jsonBytes: Array(altered.utf8))
        }
    }

    @Test func oversizedInput() throws {
        let huge = [UInt8](repeating: UInt8(ascii: " "), count: SealedBundle.maximumSize + 1)
        #expect(throws: PharosFormatError.tooLarge(format: "sealed bundle", limit: SealedBundle.maximumSize, actual: huge.count)) {
            _ = try SealedBundle(jsonBytes: huge)
        }
    }

    @Test func unknownVersion() throws {
        let text = Vectors.text("sealed_bundle.json").replacingOccurrences(of: "\"v\": 1", with: "\"v\": 2")
        #expect(throws: PharosFormatError.unsupportedVersion(format: "sealed bundle", version: "2")) {
            _ = try SealedBundle(jsonBytes: Array(text.utf8))
        }
    }

    @Test func wrongFieldLengths() throws {
        var bundle = try SealedBundle(jsonBytes: Vectors.bytes("sealed_bundle.json"))
        bundle.wrapNonce = Array(bundle.wrapNonce.prefix(12))
        #expect(throws: PharosFormatError.wrongLength(format: "sealed bundle", field: "wn", expected: 24, actual: 12)) {
            _ = try SealedBundle(jsonBytes: bundle.encoded())
        }
    }

    @Test func errorsAreDistinctSentences() {
        let errors: [PharosFormatError] = [
            .signatureInvalid, .notSealedToThisKey, .payloadAuthenticationFailed,
            .invalidBase64(format: "f", field: "x"), .tooLarge(format: "f", limit: 1, actual: 2),
            .unsupportedVersion(format: "f", version: "2"), .malformed(format: "f", reason: "r"),
            .downgradeDetected(reason: "r"), .wrongPasswordOrTampered(format: "f"),
        ]
        #expect(Set(errors.map(\.description)).count == errors.count)
    }
}
