import Crypto
import Foundation
import SwiftASN1
import X509

extension CertificateAuthority {
    /// Signs the public key of `csrPEM` (after checking the CSR's own signature) into a
    /// leaf shaped entirely by `profile`.
    public func issue(csrPEM: String, profile: LeafProfile, validity: TimeInterval,
                      now: Date = Date()) throws(CertificateIssueError) -> Certificate {
        try issue(publicKey: Self.verifiedKey(ofCSR: csrPEM), profile: profile, validity: validity, now: now)
    }

    /// The CSR's public key, once the CSR parses, its self-signature holds and the key is one
    /// we sign (P-256 or P-384): everything about a CSR that can be checked without signing.
    public static func verifiedKey(ofCSR csrPEM: String) throws(CertificateIssueError) -> Certificate.PublicKey {
        let csr: CertificateSigningRequest
        do { csr = try CertificateSigningRequest(pemEncoded: csrPEM) } catch {
            throw .unreadableCSR("\(error)")
        }
        guard csr.publicKey.isValidSignature(csr.signature, for: csr) else { throw .badCSRSignature }
        guard P256.Signing.PublicKey(csr.publicKey) != nil || P384.Signing.PublicKey(csr.publicKey) != nil else {
            throw .unsupportedKey("\(csr.publicKey)")
        }
        return csr.publicKey
    }

    /// Signs a public key the controller already holds (its own leaves).
    public func issue(publicKey: Certificate.PublicKey, profile: LeafProfile, validity: TimeInterval,
                      now: Date = Date()) throws(CertificateIssueError) -> Certificate {
        guard P256.Signing.PublicKey(publicKey) != nil || P384.Signing.PublicKey(publicKey) != nil else {
            throw .unsupportedKey("\(publicKey)")
        }
        let issuer = profile.issuedByDeviceCA ? device : fleet
        do {
            let subjectAlternativeNames = try profile.subjectAlternativeNames()
            return try Certificate(
                version: .v3, serialNumber: Self.serialNumber(), publicKey: publicKey,
                notValidBefore: now - Self.backdate, notValidAfter: now + validity,
                issuer: issuer.certificate.subject, subject: try profile.subject(), signatureAlgorithm: .ecdsaWithSHA384,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage(profile.usages)
                    SubjectKeyIdentifier(hash: publicKey)
                    AuthorityKeyIdentifier(keyIdentifier: try issuer.certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
                    if let subjectAlternativeNames { subjectAlternativeNames }
                },
                issuerPrivateKey: .init(issuer.key))
        } catch let error as CertificateIssueError {
            throw error
        } catch {
            throw .invalidProfile("could not build the certificate: \(error)")
        }
    }

    /// The chain a leaf's holder presents: its issuing intermediate.
    public func issuingCA(for profile: LeafProfile) -> Certificate {
        profile.issuedByDeviceCA ? device.certificate : fleet.certificate
    }
}
