import PharosSpec

/// A cascade hop (ConfigureInnerLink): on an entry or mid node, a second WireGuard interface
/// with this node's own key that speaks the exit's obfuscation set to one peer, the next hop,
/// at its public endpoint with AllowedIPs 0.0.0.0/0. No routes are added for it (`Table =
/// off`): only the transit routes of SetNetworkConfig send devices' traffic into it.
public struct InnerLink: Sendable, Equatable, Codable {
    public var interface: String
    /// This side's UDP port; 0 lets the daemon choose.
    public var listenPort: Int
    /// 0 = the node's tunnel MTU.
    public var mtu: Int
    /// The next hop's set, which its interface expects; nil only where obfuscation is not spoken.
    public var peerObfuscation: Obfuscation?
    /// The next hop: its public key, `endpoint`, AllowedIPs (0.0.0.0/0), optional PSK.
    public var exit: PeerSpec
    public var revision: Int64

    public init(interface: String, listenPort: Int, mtu: Int, peerObfuscation: Obfuscation?, exit: PeerSpec, revision: Int64) {
        self.interface = interface
        self.listenPort = listenPort
        self.mtu = mtu
        self.peerObfuscation = peerObfuscation
        self.exit = exit
        self.revision = revision
    }

    enum CodingKeys: String, CodingKey {
        case interface
        case listenPort = "listen_port"
        case mtu
        case peerObfuscation = "peer_obfuscation"
        case exit
        case revision
    }

    /// 1-15 ASCII letters, digits, `-` or `_`, starting with a letter (never read as a flag).
    static func isInterfaceName(_ name: String) -> Bool {
        guard let first = name.first, first.isASCII, first.isLetter, name.count <= 15 else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }
    }

    /// The most inner links one node serves.
    static let maximumPerNode = 32

    /// Everything checked before anything is applied; `others` are the node's other links.
    func validate(mainInterface: String, mainPort: Int, others: [InnerLink], obfuscationRequired: Bool) throws(InnerLinkError) {
        guard Self.isInterfaceName(interface) else {
            throw .invalid("interface \"\(interface)\" is not 1-15 letters, digits, - or _, starting with a letter")
        }
        guard interface != mainInterface else { throw .invalid("interface \(interface) is the node's own tunnel") }
        guard (0...65535).contains(listenPort) else { throw .invalid("listen_port \(listenPort) is outside 0-65535") }
        if listenPort != 0 {
            guard listenPort != mainPort else { throw .invalid("listen_port \(listenPort) is the node's own tunnel port") }
            if let other = others.first(where: { $0.listenPort == listenPort }) {
                throw .invalid("listen_port \(listenPort) is already used by the inner link \(other.interface)")
            }
        }
        guard others.count < Self.maximumPerNode else { throw .invalid("this node already serves \(others.count) inner links") }
        if let endpoint = exit.endpoint, let host = try? HostPort.parse(endpoint), host.host.hasPrefix("127.") || host.host == "::1"
            || host.host.hasPrefix("169.254.") || host.host.lowercased().hasPrefix("fe80:") {
            throw .invalid("exit endpoint \(endpoint) is a loopback or link-local address")
        }
        guard mtu == 0 || (1280...9000).contains(mtu) else { throw .invalid("mtu \(mtu) is outside 1280-9000 (0 = the node's)") }
        do { try exit.validate() } catch { throw .invalid("exit \(error.description)") }
        guard exit.endpoint != nil else { throw .invalid("exit peer \"\(exit.id)\" has no endpoint") }
        guard !exit.allowedIPs.isEmpty else { throw .invalid("exit peer \"\(exit.id)\" has no allowed_ips") }
        if let peerObfuscation, let broken = peerObfuscation.violatedInvariant {
            throw .invalid("peer_obfuscation breaks an invariant: \(broken)")
        }
        if obfuscationRequired, peerObfuscation == nil {
            throw .invalid("peer_obfuscation is required: the exit's AmneziaWG set, without which it drops every packet")
        }
    }
}

public enum InnerLinkError: Error, Equatable, CustomStringConvertible {
    case invalid(String)

    public var description: String {
        switch self {
        case .invalid(let reason): "inner link: \(reason)"
        }
    }
}
