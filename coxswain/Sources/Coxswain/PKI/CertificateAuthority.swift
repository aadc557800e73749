import Crypto
import Foundation
import PharosSpec
import SwiftASN1
import X509

/// The fleet's CA hierarchy: a P-384 root (10 years, path length 1) over the Fleet CA
/// (nodes, relays, the controller) and the Device CA (client devices), each P-384 for
/// 5 years with path length 0. Serials are 128-bit random; NotBefore is backdated
/// five minutes for clock skew.
public struct CertificateAuthority: Sendable {
    public struct Authority: Sendable {
        public let certificate: Certificate
        public let key: P384.Signing.PrivateKey
    }

    public let root: Authority
    public let fleet: Authority
    public let device: Authority

    public static let backdate: TimeInterval = 300

    public init(root: Authority, fleet: Authority, device: Authority) {
        self.root = root
        self.fleet = fleet
        self.device = device
    }

    /// A new hierarchy, as the controller creates at its first start.
    public static func generate(now: Date = Date()) throws -> CertificateAuthority {
        let rootKey = P384.Signing.PrivateKey()
        let rootName = try DistinguishedName {
            OrganizationName(PharosIdentity.Organization.fleet)
            CommonName(PharosIdentity.CommonName.root)
        }
        let root = Authority(certificate: try caCertificate(
            subject: rootName, key: rootKey, issuer: rootName, issuerKey: rootKey, issuerCertificate: nil,
            years: 10, pathLength: 1, now: now), key: rootKey)
        func intermediate(_ commonName: String) throws -> Authority {
            let key = P384.Signing.PrivateKey()
            let name = try DistinguishedName { OrganizationName(PharosIdentity.Organization.fleet); CommonName(commonName) }
            return Authority(certificate: try caCertificate(
                subject: name, key: key, issuer: rootName, issuerKey: rootKey, issuerCertificate: root.certificate,
                years: 5, pathLength: 0, now: now), key: key)
        }
        return CertificateAuthority(root: root, fleet: try intermediate(PharosIdentity.CommonName.fleetCA),
                                    device: try intermediate(PharosIdentity.CommonName.deviceCA))
    }

    /// Lowercase hex SHA-256 of the root DER: the `ca` of every join link.
    public var fingerprint: String {
        get throws {
            var serializer = DER.Serializer()
            try serializer.serialize(root.certificate)
            return Fingerprint.caRoot(der: serializer.serializedBytes)
        }
    }

    static func serialNumber() -> Certificate.SerialNumber {
        var bytes = secureRandomBytes(16)
        bytes[0] &= 0x7F  // positive
        if bytes[0] == 0 { bytes[0] = 1 }  // keep all 128 bits significant in DER
        return Certificate.SerialNumber(bytes: bytes)
    }

    private static func caCertificate(subject: DistinguishedName, key: P384.Signing.PrivateKey, issuer: DistinguishedName,
                                      issuerKey: P384.Signing.PrivateKey, issuerCertificate: Certificate?,
                                      years: Int, pathLength: Int, now: Date) throws -> Certificate {
        let publicKey = Certificate.PublicKey(key.publicKey)
        return try Certificate(
            version: .v3, serialNumber: serialNumber(), publicKey: publicKey,
            notValidBefore: now - backdate, notValidAfter: now + TimeInterval(years) * 365.25 * 86400,
            issuer: issuer, subject: subject, signatureAlgorithm: .ecdsaWithSHA384,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: pathLength))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: publicKey)
                if let issuerCertificate {
                    AuthorityKeyIdentifier(keyIdentifier: try issuerCertificate.extensions.subjectKeyIdentifier?.keyIdentifier)
                }
            },
            issuerPrivateKey: .init(issuerKey))
    }
}
