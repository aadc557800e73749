import Crypto
import Foundation
import PharosSpec
import PharosTLS
import SwiftASN1
import X509

/// A throwaway CA hierarchy shaped like the controller's: P-384 root → P-384 Fleet CA → P-256 leaves.
struct TestPKI {
    let rootKey: P384.Signing.PrivateKey
    let fleetKey: P384.Signing.PrivateKey
    let root: Certificate
    let fleet: Certificate

    init(name: String = "PharosVPN") throws {
        let now = Date()
        let rootKey = P384.Signing.PrivateKey(), fleetKey = P384.Signing.PrivateKey()
        self.rootKey = rootKey
        self.fleetKey = fleetKey
        let rootName = try DistinguishedName { OrganizationName(name); CommonName("\(name) Root CA") }
        let root = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(rootKey.publicKey),
            notValidBefore: now - 300, notValidAfter: now + 86400 * 3650, issuer: rootName, subject: rootName,
            signatureAlgorithm: .ecdsaWithSHA384,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 1))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: Certificate.PublicKey(rootKey.publicKey))
            },
            issuerPrivateKey: .init(rootKey))
        self.root = root
        let fleetName = try DistinguishedName { OrganizationName(name); CommonName("\(name) Fleet CA") }
        self.fleet = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(fleetKey.publicKey),
            notValidBefore: now - 300, notValidAfter: now + 86400 * 1825, issuer: rootName, subject: fleetName,
            signatureAlgorithm: .ecdsaWithSHA384,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: Certificate.PublicKey(fleetKey.publicKey))
                AuthorityKeyIdentifier(keyIdentifier: try root.extensions.subjectKeyIdentifier?.keyIdentifier)
            },
            issuerPrivateKey: .init(rootKey))
    }

    struct Leaf {
        let certificatePEM: String
        let keyPEM: String
        func identity() throws -> TLSIdentity { try TLSIdentity(certificatePEM: certificatePEM, keyPEM: keyPEM) }
    }

    func leaf(commonName: String, organization: String = "PharosVPN", usage: [ExtendedKeyUsage.Usage],
              notValidBefore: Date = Date() - 300, notValidAfter: Date = Date() + 86400) throws -> Leaf {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName { OrganizationName(organization); CommonName(commonName) }
        let cert = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: notValidBefore, notValidAfter: notValidAfter, issuer: fleet.subject, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA384,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage(usage)
                SubjectAlternativeNames([.dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))])
                AuthorityKeyIdentifier(keyIdentifier: try fleet.extensions.subjectKeyIdentifier?.keyIdentifier)
            },
            issuerPrivateKey: .init(fleetKey))
        return Leaf(certificatePEM: try cert.pemString() + fleet.pemString(), keyPEM: key.pemRepresentation)
    }

    func roots() throws -> TrustRoots { try TrustRoots(certificates: [root]) }
}
