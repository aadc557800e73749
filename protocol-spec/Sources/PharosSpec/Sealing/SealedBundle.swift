/// SealedBundle v1: a payload sealed end to end to one X25519 recipient and signed
/// by the controller's Ed25519 profile-signing key.
///
/// - data key: 32 random bytes; `ct` = XChaCha20-Poly1305(data key, `n`, payload), no AAD
/// - `epk`: ephemeral X25519 public key; shared = X25519(ephemeral, recipient)
/// - wrap key = HKDF-SHA256(shared, no salt, info `pharosvpn/profile/keywrap/v1`, 32 bytes)
/// - `wk` = XChaCha20-Poly1305(wrap key, `wn`, data key), no AAD
/// - `sig` = Ed25519 over the compact JSON `{"v":1,"epk":…,"wn":…,"wk":…,"n":…,"ct":…,"sig":null}`
public struct SealedBundle: Sendable, Equatable {
    public static let currentVersion = 1
    public static let keyWrapInfo = Array("pharosvpn/profile/keywrap/v1".utf8)
    /// Bundles are small (a few KiB per node); anything past this is refused unread.
    public static let maximumSize = 4 << 20
    static let format = "sealed bundle"

    public var version: Int
    public var ephemeralPublicKey: [UInt8]
    public var wrapNonce: [UInt8]
    public var wrappedKey: [UInt8]
    public var nonce: [UInt8]
    public var ciphertext: [UInt8]
    public var signature: [UInt8]?

    public init(version: Int = SealedBundle.currentVersion, ephemeralPublicKey: [UInt8], wrapNonce: [UInt8],
                wrappedKey: [UInt8], nonce: [UInt8], ciphertext: [UInt8], signature: [UInt8]?) {
        self.version = version
        self.ephemeralPublicKey = ephemeralPublicKey
        self.wrapNonce = wrapNonce
        self.wrappedKey = wrappedKey
        self.nonce = nonce
        self.ciphertext = ciphertext
        self.signature = signature
    }
}
