/// Why a connect plan cannot become a tunnel on this host, each a sentence that says what
/// to do next. `LinuxTunnel` reports them as `CaravelError.tunnel` (exit 74).
public enum TunnelPlanError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The plan is for XRay, which runs as a SOCKS proxy rather than a tunnel.
    case notAmneziaWG
    /// Debian's wireguard-go cannot speak AmneziaWG's obfuscation.
    case obfuscationUnsupported(node: String, daemon: String)
    /// A key of the profile is not 32 bytes of base64.
    case malformedKeys
    /// WireGuard's UAPI takes an address, never a name.
    case endpointNotAnAddress(node: String, host: String)
    /// A profile field that goes to UAPI or `ip` is not what it must be: a hostile or damaged
    /// profile is refused before anything is configured.
    case notANetwork(field: String, value: String)
    /// A value that must be a bare IPv4 or IPv6 address (a DNS server).
    case notAnAddress(field: String, value: String)
    case portOutOfRange(node: String, port: Int)
    case unsafeObfuscation(node: String, key: String)
    case mtuOutOfRange(Int)
    case badInterfaceName(String)

    public var description: String {
        switch self {
        case .notAmneziaWG:
            "this plan is not an AmneziaWG plan"
        case .obfuscationUnsupported(let node, let daemon):
            "node \(node) uses AmneziaWG obfuscation, which \(daemon) cannot speak: install amneziawg-go"
        case .malformedKeys:
            "the profile's WireGuard keys are malformed; sync again"
        case .endpointNotAnAddress(let node, let host):
            "node \(node)'s endpoint \"\(host)\" is not an IP address, and WireGuard connects only to addresses; sync again or ask your administrator"
        case .notANetwork(let field, let value):
            "the profile's \(field) \(String(reflecting: value)) is not an IPv4 or IPv6 network such as 10.86.0.2/32; the profile is refused"
        case .notAnAddress(let field, let value):
            "the \(field) \(String(reflecting: value)) is not an IPv4 or IPv6 address such as 1.1.1.1"
        case .portOutOfRange(let node, let port):
            "node \(node)'s endpoint port \(port) is not 1 to 65535; the profile is refused"
        case .unsafeObfuscation(let node, let key):
            "node \(node)'s obfuscation value \(key) contains a control character; the profile is refused"
        case .mtuOutOfRange(let mtu):
            "the profile's MTU \(mtu) is not 576 to 65535; the profile is refused"
        case .badInterfaceName(let name):
            "\(String(reflecting: name)) is not an interface name (1 to 15 letters, digits, '-', '_' or '.')"
        }
    }
}
