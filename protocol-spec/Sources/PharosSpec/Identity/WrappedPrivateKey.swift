/// An account's X25519 private key wrapped with the account passphrase:
/// compact `{"v":1,"salt":…,"n":…,"ct":…}`, KEK = Argon2id(t=1, m=64 MiB, p=4),
/// XChaCha20-Poly1305 without AAD. The Argon2id parameters are fixed, not stored.
public struct WrappedPrivateKey: Sendable, Equatable {
    public static let currentVersion = 1
    static let format = "wrapped private key"

    public var salt: [UInt8]
    public var nonce: [UInt8]
    public var ciphertext: [UInt8]

    public init(salt: [UInt8], nonce: [UInt8], ciphertext: [UInt8]) {
        self.salt = salt
        self.nonce = nonce
        self.ciphertext = ciphertext
    }

    public static func wrap(_ privateKey: [UInt8], passphrase: [UInt8]) throws(PharosFormatError) -> WrappedPrivateKey {
        let salt = secureRandomBytes(Argon2id.saltLength)
        let nonce = secureRandomBytes(XChaCha20Poly1305.nonceLength)
        let kek = try Argon2id.deriveKey(password: passphrase, salt: salt)
        return WrappedPrivateKey(salt: salt, nonce: nonce,
                                 ciphertext: XChaCha20Poly1305.seal(privateKey, key: kek, nonce: nonce))
    }

    public func unwrap(passphrase: [UInt8]) throws(PharosFormatError) -> [UInt8] {
        let kek = try Argon2id.deriveKey(password: passphrase, salt: salt)
        guard let key = XChaCha20Poly1305.open(ciphertext, key: kek, nonce: nonce) else {
            throw .wrongPasswordOrTampered(format: Self.format)
        }
        return key
    }

    public var json: JSONValue {
        .object([
            JSONMember("v", .integer(Self.currentVersion)),
            JSONMember("salt", .bytes(salt)),
            JSONMember("n", .bytes(nonce)),
            JSONMember("ct", .bytes(ciphertext)),
        ])
    }

    public func encoded() -> [UInt8] { json.compactBytes() }

    public init(jsonBytes: [UInt8]) throws(PharosFormatError) {
        let f = try JSONFields(parsing: jsonBytes, format: Self.format, limit: 64 << 10)
        let version = try f.integer("v", as: Int.self)
        guard version == Self.currentVersion else { throw .unsupportedVersion(format: Self.format, version: String(version)) }
        self.init(salt: try f.bytes("salt", length: Argon2id.saltLength),
                  nonce: try f.bytes("n", length: XChaCha20Poly1305.nonceLength),
                  ciphertext: try f.bytes("ct", length: 32 + XChaCha20Poly1305.tagLength))
    }
}
