import PharosRuntime
import PharosWireGuard
import Crypto
import Foundation
import PharosSpec

/// The node's own AmneziaWG key and obfuscation set (`awg-node.json`, 0600), generated
/// once: clients must be given exactly these values to handshake.
public struct AmneziaWGIdentity: Sendable, Equatable, Codable {
    /// Base64.
    public var privateKey: String
    public var obfuscation: Obfuscation

    public var publicKey: String {
        let raw = Base64.decodeStandard(privateKey)!
        return Base64.standard(Array(try! Curve25519.KeyAgreement.PrivateKey(rawRepresentation: raw).publicKey.rawRepresentation))
    }

    enum CodingKeys: String, CodingKey {
        case privateKey = "private_key"
        case obfuscation
    }

    public static func generate() -> AmneziaWGIdentity {
        AmneziaWGIdentity(privateKey: Base64.standard(Array(Curve25519.KeyAgreement.PrivateKey().rawRepresentation)),
                          obfuscation: .generate())
    }

    /// Loads the identity, creating and persisting it on first use.
    public static func loadOrCreate(at path: String) throws -> AmneziaWGIdentity {
        if let bytes = try AtomicFile.read(path) {
            let identity: AmneziaWGIdentity
            do { identity = try JSONDecoder().decode(AmneziaWGIdentity.self, from: Data(bytes)) } catch {
                throw NodeStateError.corrupt(path: path, reason: "\(error)")
            }
            guard let raw = Base64.decodeStandard(identity.privateKey), raw.count == 32 else {
                throw NodeStateError.corrupt(path: path, reason: "private_key is not a base64 32-byte key")
            }
            if let broken = identity.obfuscation.violatedInvariant {
                throw NodeStateError.corrupt(path: path, reason: "obfuscation set breaks an invariant: \(broken)")
            }
            return identity
        }
        let identity = generate()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(Array(try encoder.encode(identity)), to: path, mode: 0o600)
        return identity
    }
}
