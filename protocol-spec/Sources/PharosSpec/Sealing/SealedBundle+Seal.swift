import Crypto

extension SealedBundle {
    /// The random inputs of one seal; injectable so test vectors can pin them.
    struct SealRandomness {
        var dataKey: [UInt8]
        var ephemeralKey: Curve25519.KeyAgreement.PrivateKey
        var wrapNonce: [UInt8]
        var nonce: [UInt8]

        static func fresh() -> SealRandomness {
            SealRandomness(dataKey: secureRandomBytes(32), ephemeralKey: .init(),
                           wrapNonce: secureRandomBytes(XChaCha20Poly1305.nonceLength),
                           nonce: secureRandomBytes(XChaCha20Poly1305.nonceLength))
        }
    }

    /// Seals `plaintext` to `recipient` and signs the result with `signingKey`.
    public static func seal(_ plaintext: [UInt8], to recipient: Curve25519.KeyAgreement.PublicKey,
                            signingKey: Curve25519.Signing.PrivateKey) throws(PharosFormatError) -> SealedBundle {
        try seal(plaintext, to: recipient, signingKey: signingKey, randomness: .fresh())
    }

    static func seal(_ plaintext: [UInt8], to recipient: Curve25519.KeyAgreement.PublicKey,
                     signingKey: Curve25519.Signing.PrivateKey,
                     randomness r: SealRandomness) throws(PharosFormatError) -> SealedBundle {
        let wrapKey = try Self.wrapKey(r.ephemeralKey, recipient)
        var bundle = SealedBundle(
            ephemeralPublicKey: Array(r.ephemeralKey.publicKey.rawRepresentation),
            wrapNonce: r.wrapNonce,
            wrappedKey: XChaCha20Poly1305.seal(r.dataKey, key: wrapKey, nonce: r.wrapNonce),
            nonce: r.nonce,
            ciphertext: XChaCha20Poly1305.seal(plaintext, key: r.dataKey, nonce: r.nonce),
            signature: nil)
        do {
            bundle.signature = Array(try signingKey.signature(for: bundle.signedBytes))
        } catch {
            throw .cryptoFailure(reason: "Ed25519 signing failed: \(error)")
        }
        return bundle
    }

    /// Verifies the signature first, then unwraps the data key and opens the payload.
    public func open(with recipientKey: Curve25519.KeyAgreement.PrivateKey,
                     signingPublicKey: Curve25519.Signing.PublicKey) throws(PharosFormatError) -> [UInt8] {
        guard let signature, signingPublicKey.isValidSignature(signature, for: signedBytes) else {
            throw .signatureInvalid
        }
        let ephemeral: Curve25519.KeyAgreement.PublicKey
        do {
            ephemeral = try .init(rawRepresentation: ephemeralPublicKey)
        } catch {
            throw .invalidKey(field: "epk", reason: "not an X25519 public key")
        }
        let wrapKey = try Self.wrapKey(recipientKey, ephemeral)
        guard let dataKey = XChaCha20Poly1305.open(wrappedKey, key: wrapKey, nonce: wrapNonce) else {
            throw .notSealedToThisKey
        }
        guard let plaintext = XChaCha20Poly1305.open(ciphertext, key: dataKey, nonce: nonce) else {
            throw .payloadAuthenticationFailed
        }
        return plaintext
    }

    /// Parses and opens bundle JSON in one step.
    public static func open(_ jsonBytes: [UInt8], with recipientKey: Curve25519.KeyAgreement.PrivateKey,
                            signingPublicKey: Curve25519.Signing.PublicKey) throws(PharosFormatError) -> [UInt8] {
        try SealedBundle(jsonBytes: jsonBytes).open(with: recipientKey, signingPublicKey: signingPublicKey)
    }

    private static func wrapKey(_ privateKey: Curve25519.KeyAgreement.PrivateKey,
                                _ publicKey: Curve25519.KeyAgreement.PublicKey) throws(PharosFormatError) -> [UInt8] {
        let shared: SharedSecret
        do {
            shared = try privateKey.sharedSecretFromKeyAgreement(with: publicKey)
        } catch {
            // A low-order point yields an all-zero secret, which X25519 rejects.
            throw .invalidKey(field: "epk", reason: "X25519 agreement failed (low-order point)")
        }
        let key = shared.hkdfDerivedSymmetricKey(using: SHA256.self, salt: [UInt8](), sharedInfo: keyWrapInfo,
                                                 outputByteCount: 32)
        return key.withUnsafeBytes { Array($0) }
    }
}
