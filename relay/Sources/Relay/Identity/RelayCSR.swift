import Crypto
import Foundation
import X509

/// `relay gen-csr`: the relay's P-256 key is created once (0600) and never leaves the host.
/// The controller assigns subject, SAN (the relay's public hostname) and usages itself.
public enum RelayCSR {
    public static func generate(paths: RelayPaths) throws -> String {
        let key = try loadOrCreateKey(at: paths.key)
        let csr = try CertificateSigningRequest(
            version: .v1, subject: try DistinguishedName { CommonName("pharos-relay") }, privateKey: Certificate.PrivateKey(key),
            attributes: CertificateSigningRequest.Attributes(), signatureAlgorithm: .ecdsaWithSHA256)
        return try csr.serializeAsPEM().pemString + "\n"
    }

    static func loadOrCreateKey(at path: String) throws -> P256.Signing.PrivateKey {
        if let existing = FileManager.default.contents(atPath: path) {
            guard let key = try? P256.Signing.PrivateKey(pemRepresentation: String(decoding: existing, as: UTF8.self)) else {
                throw RelayIdentityError.unreadableKey(path: path)
            }
            return key
        }
        let key = P256.Signing.PrivateKey()
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        guard FileManager.default.createFile(atPath: path, contents: Data(key.pemRepresentation.utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw RelayIdentityError.unwritableKey(path: path)
        }
        return key
    }
}

public enum RelayIdentityError: Error, CustomStringConvertible {
    case unreadableKey(path: String)
    case unwritableKey(path: String)
    case missingFleetCA(path: String)

    public var description: String {
        switch self {
        case .unreadableKey(let path): "\(path) exists but is not a PEM P-256 private key; it was not replaced"
        case .unwritableKey(let path): "cannot create \(path)"
        case .missingFleetCA(let path): "\(path) must hold the relay leaf followed by the Fleet CA certificate"
        }
    }
}
