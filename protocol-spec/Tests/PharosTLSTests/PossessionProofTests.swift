import Crypto
import PharosTestSupport
import PharosTLS
import Testing
import X509

/// The proof a relay sends with its renewal request: only the current leaf's key makes one
/// that holds, and only for the CSR it was made over.
struct PossessionProofTests {
    static func leafAndKey() throws -> (Certificate, P256.Signing.PrivateKey) {
        let pki = try TestPKI()
        let leaf = try pki.leaf(commonName: "edge", organization: "PharosVPN Relay", usage: [.serverAuth])
        return (leaf.certificate, try P256.Signing.PrivateKey(pemRepresentation: leaf.keyPEM))
    }

    @Test func theCurrentKeysSignatureOverTheCSRHolds() throws {
        let (leaf, key) = try Self.leafAndKey()
        let csr = try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName("pharos-relay") },
            privateKey: Certificate.PrivateKey(P256.Signing.PrivateKey()), attributes: CertificateSigningRequest.Attributes(),
            signatureAlgorithm: .ecdsaWithSHA256).serializeAsPEM().pemString
        let proof = try PossessionProof.sign(csrPEM: csr, with: key)
        #expect(PossessionProof.verify(proof, csrPEM: csr, by: leaf))
    }

    @Test func anotherKeyAnotherCSROrGarbageDoesNot() throws {
        let (leaf, key) = try Self.leafAndKey()
        let csr = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"
        // Someone who saw the leaf but holds another key.
        #expect(!PossessionProof.verify(try PossessionProof.sign(csrPEM: csr, with: P256.Signing.PrivateKey()), csrPEM: csr, by: leaf))
        // The holder's proof moved to another CSR (one line changed).
        let proof = try PossessionProof.sign(csrPEM: csr, with: key)
        #expect(!PossessionProof.verify(proof, csrPEM: csr.replacingOccurrences(of: "MIIB", with: "MIIC"), by: leaf))
        // The signature over the bare CSR, without the context (a signature made for another purpose).
        let bare = Array(try key.signature(for: Array(csr.utf8)).derRepresentation)
        #expect(!PossessionProof.verify(bare, csrPEM: csr, by: leaf))
        #expect(!PossessionProof.verify([], csrPEM: csr, by: leaf))
        #expect(!PossessionProof.verify([0x30, 0x02, 0x00, 0x00], csrPEM: csr, by: leaf))
    }
}
