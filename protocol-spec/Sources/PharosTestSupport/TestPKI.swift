import Crypto
import Foundation
import PharosSpec
import PharosTLS
import SwiftASN1
import X509

/// FOR TESTS ONLY: a throwaway CA hierarchy shaped like the controller's (P-384 root →
/// P-384 Fleet and Device CAs → P-256 leaves), so every package's tests can run real
/// mTLS without the controller. The controller's real CA lives in coxswain.
public struct TestPKI: Sendable {
    public let rootKey: P384.Signing.PrivateKey
    public let fleetKey: P384.Signing.PrivateKey
    public let deviceKey: P384.Signing.PrivateKey
    public let root: Certificate
    public let fleet: Certificate
    public let device: Certificate

    public enum Issuer: Sendable { case fleet, device }

    public init(name: String = "PharosVPN") throws {
        let rootKey = P384.Signing.PrivateKey()
        let rootName = try DistinguishedName { OrganizationName(name); CommonName("\(name) Root CA") }
        let root = try Self.ca(key: rootKey, subject: rootName, issuer: rootName, issuerKey: rootKey, issuerCert: nil, pathLength: 1)
        let fleetKey = P384.Signing.PrivateKey(), deviceKey = P384.Signing.PrivateKey()
        self.rootKey = rootKey
        self.root = root
        self.fleetKey = fleetKey
        self.fleet = try Self.ca(key: fleetKey, subject: DistinguishedName { OrganizationName(name); CommonName("\(name) Fleet CA") },
                                 issuer: rootName, issuerKey: rootKey, issuerCert: root, pathLength: 0)
        self.deviceKey = deviceKey
        self.device = try Self.ca(key: deviceKey, subject: DistinguishedName { OrganizationName(name); CommonName("\(name) Device CA") },
                                  issuer: rootName, issuerKey: rootKey, issuerCert: root, pathLength: 0)
    }

    private static func ca(key: P384.Signing.PrivateKey, subject: DistinguishedName, issuer: DistinguishedName,
                           issuerKey: P384.Signing.PrivateKey, issuerCert: Certificate?, pathLength: Int) throws -> Certificate {
        let now = Date()
        return try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now - 300, notValidAfter: now + 86400 * 1825, issuer: issuer, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA384,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: pathLength))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: Certificate.PublicKey(key.publicKey))
                if let issuerCert {
                    AuthorityKeyIdentifier(keyIdentifier: try issuerCert.extensions.subjectKeyIdentifier?.keyIdentifier)
                }
            },
            issuerPrivateKey: .init(issuerKey))
    }

    public struct Leaf: Sendable {
        /// Leaf then its issuing CA, PEM.
        public let certificatePEM: String
        public let keyPEM: String
        public let certificate: Certificate

        public func identity() throws -> TLSIdentity { try TLSIdentity(certificatePEM: certificatePEM, keyPEM: keyPEM) }

        /// Writes `<name>.crt` and `<name>.key` (0600) into `directory`.
        public func write(to directory: String, name: String) throws {
            try certificatePEM.write(toFile: "\(directory)/\(name).crt", atomically: true, encoding: .utf8)
            try keyPEM.write(toFile: "\(directory)/\(name).key", atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: "\(directory)/\(name).key")
        }
    }

    public func leaf(commonName: String, organization: String = "PharosVPN", usage: [ExtendedKeyUsage.Usage],
                     issuer: Issuer = .fleet, ipAddresses: [[UInt8]] = [[127, 0, 0, 1]],
                     notValidBefore: Date = Date() - 300, notValidAfter: Date = Date() + 86400,
                     publicKey: Certificate.PublicKey? = nil) throws -> Leaf {
        // A key of our own, unless the leaf is for a key someone else holds (a CSR's): then keyPEM is empty.
        let ownKey = P256.Signing.PrivateKey()
        let (issuerCert, issuerKey) = issuer == .fleet ? (fleet, fleetKey) : (device, deviceKey)
        let subject = try DistinguishedName { OrganizationName(organization); CommonName(commonName) }
        let cert = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: publicKey ?? .init(ownKey.publicKey),
            notValidBefore: notValidBefore, notValidAfter: notValidAfter, issuer: issuerCert.subject, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA384,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage(usage)
                SubjectAlternativeNames([.dnsName("localhost")] + ipAddresses.map { .ipAddress(ASN1OctetString(contentBytes: $0[...])) })
                AuthorityKeyIdentifier(keyIdentifier: try issuerCert.extensions.subjectKeyIdentifier?.keyIdentifier)
            },
            issuerPrivateKey: .init(issuerKey))
        return Leaf(certificatePEM: try cert.pemString() + issuerCert.pemString(), keyPEM: publicKey == nil ? ownKey.pemRepresentation : "", certificate: cert)
    }

    /// The controller's client leaf as coxswain issues it (`PeerRequirements.controller`).
    public func controllerLeaf(notValidBefore: Date = Date() - 300, notValidAfter: Date = Date() + 86400) throws -> Leaf {
        try leaf(commonName: PharosIdentity.CommonName.controller, usage: [.clientAuth],
                 notValidBefore: notValidBefore, notValidAfter: notValidAfter)
    }

    public func roots() throws -> TrustRoots { try TrustRoots(certificates: [root]) }

    public var rootPEM: String { get throws { try root.pemString() } }
}
