import Crypto
import PharosSpec

/// Bearer secrets of the account plane (join-link tickets, session tokens): 32 random bytes,
/// base64url without padding; only their SHA-256 hex is ever stored.
public enum AccountSecrets {
    public static func newToken() -> String { Base64.rawURL(secureRandomBytes(32)) }

    public static func hash(_ token: String) -> String { Base64.hex(SHA256.hash(data: Array(token.utf8))) }
}

/// Password hashes in the PHC format upstream writes:
/// `$argon2id$v=19$m=65536,t=1,p=4$<salt>$<hash>` (16-byte salt, 32-byte hash, unpadded
/// standard base64), compared in constant time.
public enum PasswordHash {
    public static func make(password: String, parameters: Argon2id.Parameters = .upstream) throws -> String {
        let salt = secureRandomBytes(Argon2id.saltLength)
        let hash = try Argon2id.deriveKey(password: Array(password.utf8), salt: salt, parameters: parameters)
        return "$argon2id$v=19$m=\(parameters.memoryKiB),t=\(parameters.time),p=\(parameters.parallelism)$"
            + unpadded(Base64.standard(salt)) + "$" + unpadded(Base64.standard(hash))
    }

    /// False for a wrong password and for any hash this build cannot read.
    public static func verify(password: String, against phc: String) -> Bool {
        let parts = phc.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0].isEmpty, parts[1] == "argon2id", parts[2] == "v=19" else { return false }
        var fields: [Substring: UInt32] = [:]
        for pair in parts[3].split(separator: ",") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, let value = UInt32(kv[1]) else { return false }
            fields[kv[0]] = value
        }
        guard let m = fields["m"], let t = fields["t"], let p = fields["p"], p > 0, p <= 255,
              let salt = Base64.decodeStandard(padded(String(parts[4]))),
              let expected = Base64.decodeStandard(padded(String(parts[5]))), !expected.isEmpty else { return false }
        let parameters = Argon2id.Parameters(time: t, memoryKiB: m, parallelism: UInt8(p))
        guard (try? parameters.validateForUntrustedInput()) != nil,
              let actual = try? Argon2id.deriveKey(password: Array(password.utf8), salt: salt, parameters: parameters,
                                                   length: expected.count) else { return false }
        return zip(actual, expected).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    static func unpadded(_ text: String) -> String { String(text.prefix { $0 != "=" }) }
    static func padded(_ text: String) -> String { text + String(repeating: "=", count: (4 - text.count % 4) % 4) }
}
