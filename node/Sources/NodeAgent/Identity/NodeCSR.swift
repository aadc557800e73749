import PharosRuntime
import Crypto
import Foundation
import SwiftASN1
import X509

/// `node gen-csr`: the node's P-256 key is created once (0600) and never leaves the
/// host; the CSR carries only its public half. The controller assigns subject and
/// SANs itself, so what we put in the CSR subject is cosmetic.
public enum NodeCSR {
    public static func generate(paths: NodePaths, commonName: String = "pharos-node") throws -> String {
        let key = try loadOrCreateKey(at: paths.key)
        let subject = try DistinguishedName { CommonName(commonName) }
        let csr = try CertificateSigningRequest(
            version: .v1, subject: subject, privateKey: Certificate.PrivateKey(key),
            attributes: CertificateSigningRequest.Attributes(), signatureAlgorithm: .ecdsaWithSHA256)
        return try csr.serializeAsPEM().pemString + "\n"
    }

    static func loadOrCreateKey(at path: String) throws -> P256.Signing.PrivateKey {
        if let existing = try AtomicFile.read(path) {
            do {
                return try P256.Signing.PrivateKey(pemRepresentation: String(decoding: existing, as: UTF8.self))
            } catch {
                throw NodeIdentityError.unreadableKey(path: path)
            }
        }
        let key = P256.Signing.PrivateKey()
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try AtomicFile.write(Array(key.pemRepresentation.utf8), to: path, mode: 0o600)
        return key
    }
}

public enum NodeIdentityError: Error, CustomStringConvertible {
    case unreadableKey(path: String)

    public var description: String {
        switch self {
        case .unreadableKey(let path):
            "\(path) exists but is not a PEM P-256 private key; it was not replaced (move it away to create a new identity)"
        }
    }
}
