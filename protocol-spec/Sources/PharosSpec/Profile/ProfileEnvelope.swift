import Crypto

/// The `.pharos` file: a readable header (`fmt`, `v`, `enc`) around a payload that is
/// plaintext (`none`), Argon2id + XChaCha20-Poly1305 (`password`) or a SealedBundle (`account`).
public struct ProfileEnvelope: Sendable, Equatable {
    public static let formatTag = "pharos-profile"
    public static let currentVersion = 1
    public static let fileExtension = ".pharos"
    public static let mimeType = "application/vnd.pharosvpn.profile"
    public static let maximumSize = 4 << 20
    static let format = ".pharos"

    public enum Encryption: String, Sendable {
        case none, password, account
    }

    /// Password-mode key derivation, as stored in the file.
    public struct KDF: Sendable, Equatable {
        public var algorithm: String
        public var parameters: Argon2id.Parameters
        /// `nil` is written as `null`, empty as `""`: both are part of the AAD.
        public var salt: [UInt8]?

        public init(algorithm: String = "argon2id", parameters: Argon2id.Parameters = .upstream, salt: [UInt8]?) {
            self.algorithm = algorithm
            self.parameters = parameters
            self.salt = salt
        }
    }

    public var version: Int
    public var encryption: Encryption
    public var kdf: KDF?
    /// Empty means absent (omitted from the JSON).
    public var nonce: [UInt8]
    /// The profile bundle object (none), a base64 ciphertext string (password) or
    /// a SealedBundle object (account).
    public var payload: JSONValue

    public init(version: Int = ProfileEnvelope.currentVersion, encryption: Encryption, kdf: KDF? = nil,
                nonce: [UInt8] = [], payload: JSONValue) {
        self.version = version
        self.encryption = encryption
        self.kdf = kdf
        self.nonce = nonce
        self.payload = payload
    }

    /// The secrets that open the encrypted modes.
    public struct Secrets: Sendable {
        public var password: [UInt8]?
        public var accountKey: Curve25519.KeyAgreement.PrivateKey?
        public var signingPublicKey: Curve25519.Signing.PublicKey?

        public init(password: [UInt8]? = nil, accountKey: Curve25519.KeyAgreement.PrivateKey? = nil,
                    signingPublicKey: Curve25519.Signing.PublicKey? = nil) {
            self.password = password
            self.accountKey = accountKey
            self.signingPublicKey = signingPublicKey
        }
    }
}

extension ProfileEnvelope {
    /// An unencrypted profile.
    public static func plain(_ bundle: ProfileBundle) -> ProfileEnvelope {
        ProfileEnvelope(encryption: .none, payload: bundle.json)
    }

    /// A password-protected profile (Argon2id t=1 m=64 MiB p=4, 16-byte salt).
    public static func passwordProtected(_ bundle: ProfileBundle, password: [UInt8]) throws(PharosFormatError) -> ProfileEnvelope {
        try passwordProtected(bundle, password: password, salt: secureRandomBytes(Argon2id.saltLength),
                              nonce: secureRandomBytes(XChaCha20Poly1305.nonceLength))
    }

    static func passwordProtected(_ bundle: ProfileBundle, password: [UInt8], salt: [UInt8],
                                  nonce: [UInt8]) throws(PharosFormatError) -> ProfileEnvelope {
        var envelope = ProfileEnvelope(encryption: .password, kdf: KDF(salt: salt), nonce: nonce, payload: .null)
        let key = try Argon2id.deriveKey(password: password, salt: salt, parameters: .upstream)
        let sealed = XChaCha20Poly1305.seal(bundle.json.compactBytes(), key: key, nonce: nonce,
                                            aad: envelope.additionalData)
        envelope.payload = .string(Base64.standard(sealed))
        return envelope
    }

    /// A profile sealed to an account or device key.
    public static func account(_ sealed: SealedBundle) -> ProfileEnvelope {
        ProfileEnvelope(encryption: .account, payload: sealed.json)
    }

    /// Opens the payload and decodes the profile bundle.
    public func open(_ secrets: Secrets = Secrets()) throws(PharosFormatError) -> ProfileBundle {
        switch encryption {
        case .none:
            if kdf != nil || !nonce.isEmpty {
                throw .downgradeDetected(reason: "enc is \"none\" but the file carries password-mode kdf/nonce fields")
            }
            guard case .object = payload else {
                throw .downgradeDetected(reason: "enc is \"none\" but the payload is not a plaintext profile object")
            }
            return try ProfileBundle(json: payload)
        case .password:
            guard let password = secrets.password else { throw .passwordRequired }
            guard let kdf else { throw .missingField(format: Self.format, field: "kdf") }
            guard kdf.algorithm == "argon2id" else { throw .kdfRejected(reason: "unknown algorithm \"\(kdf.algorithm)\"") }
            try kdf.parameters.validateForUntrustedInput()
            // Every PharosVPN writer uses upstream's 64 MiB; less is an edit the AAD check would
            // only report as a wrong password.
            if kdf.parameters.memoryKiB < Argon2id.Parameters.upstream.memoryKiB {
                throw .downgradeDetected(reason: "the password KDF asks for \(kdf.parameters.memoryKiB) KiB, less than the \(Argon2id.Parameters.upstream.memoryKiB) KiB every PharosVPN writer uses")
            }
            guard nonce.count == XChaCha20Poly1305.nonceLength else {
                throw .wrongLength(format: Self.format, field: "nonce", expected: XChaCha20Poly1305.nonceLength, actual: nonce.count)
            }
            guard case .string(let b64) = payload else {
                throw .wrongFieldType(format: Self.format, field: "payload", expected: "a base64 string", found: payload.kindName)
            }
            guard let ciphertext = Base64.decodeStandard(b64) else { throw .invalidBase64(format: Self.format, field: "payload") }
            let key = try Argon2id.deriveKey(password: password, salt: kdf.salt ?? [], parameters: kdf.parameters)
            guard let plaintext = XChaCha20Poly1305.open(ciphertext, key: key, nonce: nonce, aad: additionalData) else {
                throw .wrongPasswordOrTampered(format: Self.format)
            }
            return try ProfileBundle(jsonBytes: plaintext)
        case .account:
            guard let accountKey = secrets.accountKey, let signingKey = secrets.signingPublicKey else {
                throw .accountKeysRequired
            }
            let plaintext = try SealedBundle(json: payload).open(with: accountKey, signingPublicKey: signingKey)
            return try ProfileBundle(jsonBytes: plaintext)
        }
    }
}
