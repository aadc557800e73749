import CSodium

/// libsodium's `crypto_secretstream_xchacha20poly1305`: a file too large for one AEAD
/// message as a sequence of XChaCha20-Poly1305 chunks, each authenticated with its position,
/// so a chunk cannot be dropped, repeated or moved, and a stream cut short is told apart
/// from a whole one (only the last chunk carries the final tag).
public enum SecretStream {
    public static let keyLength = 32
    public static let headerLength = Int(crypto_secretstream_xchacha20poly1305_HEADERBYTES)
    /// Bytes a chunk's ciphertext adds to its plaintext.
    public static let overhead = Int(crypto_secretstream_xchacha20poly1305_ABYTES)

    /// Encrypts chunks in order; `header` goes before them (it is not secret).
    public struct Sealer {
        private var state = crypto_secretstream_xchacha20poly1305_state()
        public let header: [UInt8]

        public init(key: [UInt8]) {
            precondition(key.count == SecretStream.keyLength, "secretstream key size")
            Sodium.ensureInitialized()
            var header = [UInt8](repeating: 0, count: SecretStream.headerLength)
            crypto_secretstream_xchacha20poly1305_init_push(&state, &header, key)
            self.header = header
        }

        public mutating func seal(_ chunk: [UInt8], aad: [UInt8] = [], final: Bool) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: chunk.count + SecretStream.overhead)
            var length: UInt64 = 0
            let tag = UInt8(final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
            let rc = crypto_secretstream_xchacha20poly1305_push(&state, &out, &length, chunk, UInt64(chunk.count),
                                                                aad.isEmpty ? nil : aad, UInt64(aad.count), tag)
            precondition(rc == 0, "secretstream push cannot fail for valid sizes")
            return out
        }
    }

    /// Decrypts the chunks a `Sealer` wrote, in the same order.
    public struct Opener {
        private var state = crypto_secretstream_xchacha20poly1305_state()

        /// Nil when the header has the wrong length or is refused.
        public init?(key: [UInt8], header: [UInt8]) {
            guard key.count == SecretStream.keyLength, header.count == SecretStream.headerLength else { return nil }
            Sodium.ensureInitialized()
            guard crypto_secretstream_xchacha20poly1305_init_pull(&state, header, key) == 0 else { return nil }
        }

        /// The plaintext and whether this was the last chunk; nil when the chunk does not
        /// authenticate (altered, out of place, another key, or another `aad`).
        public mutating func open(_ chunk: [UInt8], aad: [UInt8] = []) -> (plaintext: [UInt8], final: Bool)? {
            guard chunk.count >= SecretStream.overhead else { return nil }
            var out = [UInt8](repeating: 0, count: chunk.count - SecretStream.overhead)
            var length: UInt64 = 0
            var tag: UInt8 = 0
            let rc = crypto_secretstream_xchacha20poly1305_pull(&state, &out, &length, &tag, chunk, UInt64(chunk.count),
                                                                aad.isEmpty ? nil : aad, UInt64(aad.count))
            guard rc == 0 else { return nil }
            return (out, tag == UInt8(crypto_secretstream_xchacha20poly1305_TAG_FINAL))
        }
    }
}
