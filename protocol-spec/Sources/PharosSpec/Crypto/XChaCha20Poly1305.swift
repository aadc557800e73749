import CSodium

/// XChaCha20-Poly1305 (IETF), from libsodium: identical to Go's
/// `chacha20poly1305.NewX`.
public enum XChaCha20Poly1305 {
    public static let keyLength = 32
    public static let nonceLength = 24
    public static let tagLength = 16

    public static func seal(_ plaintext: [UInt8], key: [UInt8], nonce: [UInt8], aad: [UInt8] = []) -> [UInt8] {
        precondition(key.count == keyLength && nonce.count == nonceLength, "XChaCha20-Poly1305 key/nonce size")
        Sodium.ensureInitialized()
        var out = [UInt8](repeating: 0, count: plaintext.count + tagLength)
        var outLength: UInt64 = 0
        let rc = crypto_aead_xchacha20poly1305_ietf_encrypt(
            &out, &outLength, plaintext, UInt64(plaintext.count),
            aad.isEmpty ? nil : aad, UInt64(aad.count), nil, nonce, key)
        precondition(rc == 0, "libsodium encrypt cannot fail for valid sizes")
        return out
    }

    /// `nil` when authentication fails (wrong key, nonce, AAD, or altered ciphertext).
    public static func open(_ ciphertext: [UInt8], key: [UInt8], nonce: [UInt8], aad: [UInt8] = []) -> [UInt8]? {
        guard key.count == keyLength, nonce.count == nonceLength, ciphertext.count >= tagLength else { return nil }
        Sodium.ensureInitialized()
        var out = [UInt8](repeating: 0, count: ciphertext.count - tagLength)
        var outLength: UInt64 = 0
        let rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
            &out, &outLength, nil, ciphertext, UInt64(ciphertext.count),
            aad.isEmpty ? nil : aad, UInt64(aad.count), nonce, key)
        return rc == 0 ? out : nil
    }
}

enum Sodium {
    private static let initialized: Bool = sodium_init() >= 0

    static func ensureInitialized() {
        precondition(initialized, "libsodium failed to initialise")
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        ensureInitialized()
        var out = [UInt8](repeating: 0, count: count)
        randombytes_buf(&out, count)
        return out
    }
}

/// Cryptographically secure random bytes (libsodium's `randombytes_buf`, getrandom(2)).
public func secureRandomBytes(_ count: Int) -> [UInt8] { Sodium.randomBytes(count) }
