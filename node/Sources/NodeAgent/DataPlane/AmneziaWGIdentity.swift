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
    public var obfuscation: ObfuscationSet

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

/// AmneziaWG obfuscation parameters with upstream's generation ranges and invariants.
public struct ObfuscationSet: Sendable, Equatable, Codable {
    public var jc: UInt32, jmin: UInt32, jmax: UInt32
    public var s1: UInt32, s2: UInt32, s3: UInt32, s4: UInt32
    public var h1: UInt32, h2: UInt32, h3: UInt32, h4: UInt32

    /// Jc 3–10; Jmin 25–75; Jmax = Jmin + 700–900; S1–S4 15–150 with S2 ≠ S1 + 56;
    /// H1–H4 four distinct values in [5, 2^31 − 1].
    public static func generate<R: RandomNumberGenerator>(using rng: inout R) -> ObfuscationSet {
        let jmin = UInt32.random(in: 25...75, using: &rng)
        let s1 = UInt32.random(in: 15...150, using: &rng)
        var s2 = UInt32.random(in: 15...150, using: &rng)
        while s2 == s1 + 56 { s2 = UInt32.random(in: 15...150, using: &rng) }
        var headers = Set<UInt32>()
        while headers.count < 4 { headers.insert(UInt32.random(in: 5...UInt32(Int32.max), using: &rng)) }
        let h = Array(headers).shuffled(using: &rng)
        return ObfuscationSet(jc: .random(in: 3...10, using: &rng), jmin: jmin, jmax: jmin + .random(in: 700...900, using: &rng),
                              s1: s1, s2: s2, s3: .random(in: 15...150, using: &rng), s4: .random(in: 15...150, using: &rng),
                              h1: h[0], h2: h[1], h3: h[2], h4: h[3])
    }

    public static func generate() -> ObfuscationSet {
        var rng = SystemRandomNumberGenerator()
        return generate(using: &rng)
    }

    /// The first invariant this set breaks, or nil.
    public var violatedInvariant: String? {
        if jmin > jmax { return "jmin > jmax" }
        if Set([h1, h2, h3, h4]).count != 4 { return "h1-h4 are not distinct" }
        if [h1, h2, h3, h4].contains(where: { $0 < 5 }) { return "an h value is below 5" }
        if s2 == s1 + 56 { return "s2 = s1 + 56" }
        return nil
    }

    /// UAPI device keys, in AmneziaWG's order.
    public var uapiLines: [String] {
        ["jc=\(jc)", "jmin=\(jmin)", "jmax=\(jmax)", "s1=\(s1)", "s2=\(s2)", "s3=\(s3)", "s4=\(s4)",
         "h1=\(h1)", "h2=\(h2)", "h3=\(h3)", "h4=\(h4)"]
    }
}
