import Crypto
import Foundation
import PharosRuntime
import X509

/// A daemon's own P-256 key (`node.key`, `relay.key`): created once, 0600, never leaves the
/// host; `gen-csr` prints a CSR for it, whose subject is cosmetic — the controller assigns
/// subject and SANs itself. Created by root in a directory that belongs to the daemon's user,
/// the key goes to that user, so the daemon can read it and nobody else can.
public enum HostKey {
    public static func loadOrCreate(at path: String) throws -> P256.Signing.PrivateKey {
        if let existing = try AtomicFile.read(path) {
            do {
                return try P256.Signing.PrivateKey(pemRepresentation: String(decoding: existing, as: UTF8.self))
            } catch {
                throw HostKeyError.unreadable(path: path)
            }
        }
        let key = P256.Signing.PrivateKey()
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try AtomicFile.write(Array(key.pemRepresentation.utf8), to: path, mode: 0o600)
        try Privileges.giveToDirectoryOwner(path, directory: directory)
        return key
    }

    /// `gen-csr`: loads or creates the key at `path` and returns a PEM CSR for it.
    public static func certificateSigningRequest(keyPath path: String, commonName: String) throws -> String {
        let key = try loadOrCreate(at: path)
        let csr = try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName(commonName) }, privateKey: Certificate.PrivateKey(key),
            attributes: CertificateSigningRequest.Attributes(), signatureAlgorithm: .ecdsaWithSHA256)
        return try csr.serializeAsPEM().pemString + "\n"
    }
}

public enum HostKeyError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String)

    public var description: String {
        switch self {
        case .unreadable(let path):
            "\(path) exists but is not a PEM P-256 private key; it was not replaced (move it away to create a new identity)"
        }
    }
}
