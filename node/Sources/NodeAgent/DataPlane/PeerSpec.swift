import PharosSpec
import Foundation
import PharosWireGuard

/// One AmneziaWG/WireGuard peer as the controller pushed it and the data plane applies it.
/// Pushed peers are checked with `validate()` before anything is applied.
public struct PeerSpec: Sendable, Equatable, Codable {
    public var id: String
    /// Base64, 32 bytes.
    public var publicKey: String
    /// Base64, 32 bytes, or empty.
    public var presharedKey: String
    public var allowedIPs: [String]
    /// `IP:port` this side dials (an inner link's exit); nil for clients, which roam.
    public var endpoint: String?

    public init(id: String, publicKey: String, presharedKey: String = "", allowedIPs: [String], endpoint: String? = nil) {
        self.id = id
        self.publicKey = publicKey
        self.presharedKey = presharedKey
        self.allowedIPs = allowedIPs
        self.endpoint = endpoint
    }

    /// Nothing of a push is applied unless every one of its peers passes.
    public func validate() throws(PeerValidationError) {
        guard WireGuardKey.hex(fromBase64: publicKey) != nil else {
            throw .invalid(peer: id, field: "public_key", reason: "must be a base64 32-byte key")
        }
        if !presharedKey.isEmpty, WireGuardKey.hex(fromBase64: presharedKey) == nil {
            throw .invalid(peer: id, field: "preshared_key", reason: "must be a base64 32-byte key")
        }
        for cidr in allowedIPs where !CIDR.isValid(cidr) {
            throw .invalid(peer: id, field: "allowed_ips", reason: "\"\(cidr)\" is not an IPv4 or IPv6 CIDR")
        }
        if let endpoint {
            let parsed = try? HostPort.parse(endpoint)
            guard let parsed, parsed.isIPv4Literal || parsed.isIPv6Literal else {
                throw .invalid(peer: id, field: "endpoints", reason: "\"\(endpoint)\" is not an IP:port")
            }
        }
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
                  allowedIPs: spec.allowedIPs, endpoint: spec.endpoint.flatMap { try? HostPort.parse($0) }?.description,
                  persistentKeepaliveSeconds: spec.endpoint == nil ? nil : 25)
    }
}
