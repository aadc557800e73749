import Foundation
import PharosSpec

/// Row identifiers as upstream writes them: `<prefix>_<16 lowercase base32 chars>`
/// (80 random bits), e.g. `nod_k3x9m2pq7rtv4wzd`.
public enum EntityID {
    public enum Kind: String, Sendable, CaseIterable {
        case node = "nod", user = "usr", device = "dev", profileSpec = "prs", peer = "per"
        case profile = "prf", audit = "aud", nodeCert = "ncr", deviceCert = "dcr", relay = "rly"
        case ticket = "tkt", session = "ses", token = "tok", event = "evt", alert = "alr"
        case path = "pth", nodeLink = "lnk"
    }

    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)

    public static func make(_ kind: Kind) -> String {
        let bytes = secureRandomBytes(10)
        var bits: UInt64 = 0, count = 0
        var out = [UInt8]()
        out.reserveCapacity(16)
        for byte in bytes {
            bits = (bits << 8) | UInt64(byte)
            count += 8
            while count >= 5 {
                count -= 5
                out.append(alphabet[Int((bits >> UInt64(count)) & 31)])
            }
        }
        return kind.rawValue + "_" + String(decoding: out, as: UTF8.self)
    }

    /// True when `text` has the shape of an ID of `kind`.
    public static func isValid(_ text: String, _ kind: Kind) -> Bool {
        let prefix = kind.rawValue + "_"
        guard text.hasPrefix(prefix) else { return false }
        let body = text.utf8.dropFirst(prefix.utf8.count)
        return body.count == 16 && body.allSatisfy { alphabet.contains($0) }
    }
}
