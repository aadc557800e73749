import Crypto
import Foundation
import PharosSpec
import X509

extension Certificate {
    /// The first certificate of a PEM text (a chain's leaf); nil when none parses.
    public init?(firstIn pem: String) {
        guard let der = PEM.decodeAll(type: "CERTIFICATE", from: pem).first, let leaf = try? Certificate(derEncoded: der) else {
            return nil
        }
        self = leaf
    }

    /// When this leaf is due for renewal (`Certificate.renewalDate(notBefore:notAfter:)`).
    public var renewalDate: Date { Self.renewalDate(notBefore: notValidBefore, notAfter: notValidAfter) }

    /// Every leaf of the fleet is renewed two thirds into its life (DESIGN.md "Trust and
    /// identity"): the last third is what survives a controller or client that is away. A leaf
    /// is never kept longer than `longestRenewalInterval` either: a longer one (a relay
    /// enrolled with `--cert-days 365`, a leaf issued before leaves lasted 30 days) is renewed
    /// 20 days into its life like a 30-day one, and its extra length only lets its holder stay
    /// away longer.
    public static func renewalDate(notBefore: Date, notAfter: Date) -> Date {
        notBefore + Swift.min(notAfter.timeIntervalSince(notBefore) * 2 / 3, longestRenewalInterval)
    }

    /// Two thirds of the 30 days no leaf should live past without renewal.
    public static let longestRenewalInterval: TimeInterval = 20 * 86400
}

extension Certificate {
    /// The DNS names (lowercased) and IP addresses among the leaf's SANs: what a renewed leaf
    /// must name again.
    public var subjectNames: Set<String> { PharosPeerPolicy.names(of: self) }
}

/// Proof that whoever asks for a renewed leaf holds the key of the leaf it presents now
/// (`RenewRelayCertificateRequest.possession_signature`): ECDSA P-256 with SHA-256 over a
/// fixed context and the CSR exactly as sent. The CSR's own signature proves the new key;
/// this one ties the request to the current leaf, which anyone may have seen, so that only
/// its holder can renew it. Replaying a request gains nothing: the answer certifies a key
/// only the relay holds.
public enum PossessionProof {
    static let context = Array("pharos-relay-renewal-v1\n".utf8)

    public static func sign(csrPEM: String, with key: P256.Signing.PrivateKey) throws -> [UInt8] {
        Array(try key.signature(for: context + Array(csrPEM.utf8)).derRepresentation)
    }

    /// Whether `signature` was made over `csrPEM` by the key `leaf` certifies.
    public static func verify(_ signature: [UInt8], csrPEM: String, by leaf: Certificate) -> Bool {
        guard let key = P256.Signing.PublicKey(leaf.publicKey),
              let parsed = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
        return key.isValidSignature(parsed, for: context + Array(csrPEM.utf8))
    }
}
