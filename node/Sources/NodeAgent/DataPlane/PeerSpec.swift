import PharosWireGuard
import Foundation
import PharosProto
import PharosSpec

/// One AmneziaWG/WireGuard peer as the data plane applies it, validated.
public struct PeerSpec: Sendable, Equatable, Codable {
    public var id: String
    /// Base64, 32 bytes.
    public var publicKey: String
    /// Base64, 32 bytes, or empty.
    public var presharedKey: String
    public var allowedIPs: [String]

    public init(id: String, publicKey: String, presharedKey: String = "", allowedIPs: [String]) {
        self.id = id
        self.publicKey = publicKey
        self.presharedKey = presharedKey
        self.allowedIPs = allowedIPs
    }

    /// Validates a pushed peer; nothing is applied unless every peer of a push passes.
    public init(validating peer: Pharos_Node_V1_Peer) throws(PeerValidationError) {
        guard WireGuardKey.hex(fromBase64: peer.publicKey) != nil else {
            throw .invalid(peer: peer.id, field: "public_key", reason: "must be a base64 32-byte key")
        }
        if !peer.presharedKey.isEmpty, WireGuardKey.hex(fromBase64: peer.presharedKey) == nil {
            throw .invalid(peer: peer.id, field: "preshared_key", reason: "must be a base64 32-byte key")
        }
        for cidr in peer.allowedIps where !CIDR.isValid(cidr) {
            throw .invalid(peer: peer.id, field: "allowed_ips", reason: "\"\(cidr)\" is not an IPv4 or IPv6 CIDR")
        }
        self.init(id: peer.id, publicKey: peer.publicKey, presharedKey: peer.presharedKey, allowedIPs: peer.allowedIps)
    }

    public var proto: Pharos_Node_V1_Peer {
        var p = Pharos_Node_V1_Peer()
        p.id = id
        p.protocol = .amneziawg
        p.publicKey = publicKey
        p.presharedKey = presharedKey
        p.allowedIps = allowedIPs
        return p
    }
}

public enum PeerValidationError: Error, Equatable, CustomStringConvertible {
    case invalid(peer: String, field: String, reason: String)

    public var description: String {
        switch self {
        case .invalid(let peer, let field, let reason): "peer \"\(peer)\": \(field) \(reason)"
        }
    }
}

extension UAPI.Peer {
    public init?(_ spec: PeerSpec) {
        guard let pub = WireGuardKey.hex(fromBase64: spec.publicKey) else { return nil }
        self.init(publicKeyHex: pub, presharedKeyHex: spec.presharedKey.isEmpty ? nil : WireGuardKey.hex(fromBase64: spec.presharedKey),
                  allowedIPs: spec.allowedIPs)
    }
}

public enum CIDR {
    /// Address bytes and prefix length, or nil when `text` is not a CIDR.
    static func parse(_ text: String) -> (bytes: [UInt8], bits: Int)? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let bits = Int(parts[1]), String(bits) == parts[1] else { return nil }
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, String(parts[0]), &v4) == 1, (0...32).contains(bits) {
            return (withUnsafeBytes(of: &v4) { Array($0) }, bits)
        }
        if inet_pton(AF_INET6, String(parts[0]), &v6) == 1, (0...128).contains(bits) {
            return (withUnsafeBytes(of: &v6) { Array($0) }, bits)
        }
        return nil
    }

    /// True when every address of `inner` lies inside `outer` (same family).
    public static func contains(_ outer: String, _ inner: String) -> Bool {
        guard let o = parse(outer), let i = parse(inner), o.bytes.count == i.bytes.count, i.bits >= o.bits else { return false }
        for bit in 0..<o.bits {
            let mask = UInt8(0x80) >> UInt8(bit % 8)
            if o.bytes[bit / 8] & mask != i.bytes[bit / 8] & mask { return false }
        }
        return true
    }

    public static func isValid(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let bits = Int(parts[1]), String(bits) == parts[1] else { return false }
        var v4 = in_addr(), v6 = in6_addr()
        if inet_pton(AF_INET, String(parts[0]), &v4) == 1 { return (0...32).contains(bits) }
        if inet_pton(AF_INET6, String(parts[0]), &v6) == 1 { return (0...128).contains(bits) }
        return false
    }
}
