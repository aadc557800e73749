import Crypto
import X509

/// The fleet root's signature over the controller's Ed25519 profile-signing key, sent in
/// the enrollment answer (ClaimEnrollmentResponse field 7, a Swift-side addition upstream
/// ignores). The device pins the root through its join link, so with this it knows the
/// signing key is the fleet's and not one a relay or an interceptor put in the answer: every
/// profile it will ever open is checked against that key.
///
/// The signed message is a context string, a zero byte and the 32-byte key, so the root's
/// signature over it cannot be replayed as any other statement. ECDSA with the root's curve
/// (P-384 and SHA-384 for fleets this controller creates), DER-encoded.
public enum SigningKeyEndorsement {
    static let context = Array("pharos profile-signing key v1".utf8) + [0]

    static func message(_ signingKey: [UInt8]) -> [UInt8] { context + signingKey }

    public static func sign(_ signingKey: [UInt8], rootKey: P384.Signing.PrivateKey) throws -> [UInt8] {
        Array(try rootKey.signature(for: message(signingKey)).derRepresentation)
    }

    /// True when `endorsement` is `root`'s signature over `signingKey` (a P-256 or P-384 root).
    public static func isValid(_ endorsement: [UInt8], of signingKey: [UInt8], by root: Certificate) -> Bool {
        guard signingKey.count == 32 else { return false }
        let signed = message(signingKey)
        if let key = P384.Signing.PublicKey(root.publicKey),
           let signature = try? P384.Signing.ECDSASignature(derRepresentation: endorsement) {
            return key.isValidSignature(signature, for: signed)
        }
        if let key = P256.Signing.PublicKey(root.publicKey),
           let signature = try? P256.Signing.ECDSASignature(derRepresentation: endorsement) {
            return key.isValidSignature(signature, for: signed)
        }
        return false
    }
}
