/// Everything that can be wrong with a PharosVPN format, each case a sentence that
/// says what was wrong, in which input, and (where it helps) what to do.
public enum PharosFormatError: Error, Sendable, Equatable {
    /// The input is not valid JSON or not shaped like the format.
    case malformed(format: String, reason: String)
    case missingField(format: String, field: String)
    case wrongFieldType(format: String, field: String, expected: String, found: String)
    case invalidBase64(format: String, field: String)
    case wrongLength(format: String, field: String, expected: Int, actual: Int)
    case tooLarge(format: String, limit: Int, actual: Int)
    case unsupportedVersion(format: String, version: String)
    /// A `.pharos` file whose `fmt` is not `pharos-profile` (or a `.pharosid` not `pharos-device`).
    case notThisFormat(format: String, found: String)
    case unknownEncryptionMode(String)
    /// The Ed25519 signature over the bundle does not verify.
    case signatureInvalid
    /// The data key could not be unwrapped: the bundle was sealed to another key.
    case notSealedToThisKey
    /// The payload failed authentication after the data key was unwrapped.
    case payloadAuthenticationFailed
    /// Password mode: wrong password, or the header (enc, kdf, nonce) was altered.
    case wrongPasswordOrTampered(format: String)
    case passwordRequired
    case accountKeysRequired
    /// The envelope claims no encryption but carries password-mode fields.
    case downgradeDetected(reason: String)
    case kdfRejected(reason: String)
    case invalidKey(field: String, reason: String)
    case invalidJoinLink(reason: String)
    case cryptoFailure(reason: String)
}

extension PharosFormatError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .malformed(let format, let reason):
            "\(format): malformed input: \(reason)"
        case .missingField(let format, let field):
            "\(format): required field \"\(field)\" is missing"
        case .wrongFieldType(let format, let field, let expected, let found):
            "\(format): field \"\(field)\" must be \(expected), found \(found)"
        case .invalidBase64(let format, let field):
            "\(format): field \"\(field)\" is not canonical standard base64"
        case .wrongLength(let format, let field, let expected, let actual):
            "\(format): field \"\(field)\" must be \(expected) bytes, found \(actual)"
        case .tooLarge(let format, let limit, let actual):
            "\(format): input is \(actual) bytes, larger than the \(limit)-byte limit"
        case .unsupportedVersion(let format, let version):
            "\(format): version \(version) is not supported by this build (protocol-spec \(PharosSpec.version)); upgrade to read it"
        case .notThisFormat(let format, let found):
            "not a \(format) file (fmt is \(found))"
        case .unknownEncryptionMode(let mode):
            ".pharos: unknown enc mode \"\(mode)\" (expected none, password or account)"
        case .signatureInvalid:
            "sealed bundle: the signature does not verify: it was altered, or it was signed by another controller's key"
        case .notSealedToThisKey:
            "sealed bundle: it was sealed to a different recipient key; this device or account key cannot open it"
        case .payloadAuthenticationFailed:
            "sealed bundle: the payload failed authentication after unwrapping the data key"
        case .wrongPasswordOrTampered(let format):
            "\(format): wrong password, or the file's header was altered"
        case .passwordRequired:
            ".pharos: this profile is password-protected; a password is required"
        case .accountKeysRequired:
            ".pharos: this profile is sealed to an account; the account key and the controller's signing key are required"
        case .downgradeDetected(let reason):
            ".pharos: refusing a downgraded envelope: \(reason)"
        case .kdfRejected(let reason):
            ".pharos: key-derivation parameters rejected: \(reason)"
        case .invalidKey(let field, let reason):
            "invalid key in \"\(field)\": \(reason)"
        case .invalidJoinLink(let reason):
            "invalid join link: \(reason)"
        case .cryptoFailure(let reason):
            "cryptographic failure: \(reason)"
        }
    }
}
