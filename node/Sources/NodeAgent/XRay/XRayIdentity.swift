import PharosRuntime
import Crypto
import Foundation
import PharosSpec

/// The node's REALITY X25519 keypair (`xray-node.json`, 0600), generated once and
/// clamped as `xray x25519` does; keys are raw base64url, as xray writes them.
public struct XRayIdentity: Sendable, Equatable, Codable {
    public var privateKey: String

    enum CodingKeys: String, CodingKey { case privateKey = "private_key" }

    public var publicKey: String {
        let raw = Base64.decodeRawURL(privateKey)!
        return Base64.rawURL(Array(try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw).publicKey.rawRepresentation))
    }

    public static func generate() -> XRayIdentity {
        var raw = secureRandomBytes(32)
        raw[0] &= 248
        raw[31] &= 127
        raw[31] |= 64
        return XRayIdentity(privateKey: Base64.rawURL(raw))
    }

    public static func loadOrCreate(at path: String) throws -> XRayIdentity {
        if let bytes = try AtomicFile.read(path) {
            guard let identity = try? JSONDecoder().decode(XRayIdentity.self, from: Data(bytes)),
                  Base64.decodeRawURL(identity.privateKey)?.count == 32 else {
                throw NodeStateError.corrupt(path: path, reason: "expected {\"private_key\": <base64url 32 bytes>}")
            }
            return identity
        }
        let identity = generate()
        try AtomicFile.write(Array(try JSONEncoder().encode(identity)), to: path, mode: 0o600)
        return identity
    }
}
