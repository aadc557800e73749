import Foundation

/// What a peer row is on its node: an AmneziaWG peer (keyed by its public key) or a VLESS
/// client (keyed by its UUID). The raw values are upstream's.
public enum PeerProtocol: String, Codable, Sendable, CaseIterable, SQLStringEnum {
    case amneziawg
    case xrayReality = "xray-reality"
}
