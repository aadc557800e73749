public enum ProvisioningError: Error, Equatable, CustomStringConvertible {
    case subnetExhausted(String)
    case nodeNotReady(node: String)
    case protocolUnavailable(node: String, protocol: String)
    case pathsNotSupported(spec: String)
    case invalidEncryptionKey(String)
    /// One node would route the device's address two ways (directly and through a path, or
    /// through two paths from different hops): WireGuard gives an address to one peer only.
    case cascadeConflict(device: String, node: String)

    public var description: String {
        switch self {
        case .subnetExhausted(let subnet): "no free tunnel address left in \(subnet); widen fleet.vpn_subnet"
        case .nodeNotReady(let node):
            "node \(node) has not reported its keys yet (AmneziaWG key, obfuscation, REALITY key); devices are placed on it once `cox nodes status \(node)` succeeds"
        case .protocolUnavailable(let node, let proto): "node \(node) does not serve \(proto) (it reported no key for it)"
        case .pathsNotSupported(let spec): "profile \(spec) names a path that does not exist (or has fewer than 2 hops)"
        case .invalidEncryptionKey(let reason): "the device encryption key is invalid: \(reason)"
        case .cascadeConflict(let device, let node):
            "device \(device) would be routed two ways at node \(node) (a direct profile there and a path through it, or two paths that enter, leave or continue differently); a node routes one device's traffic one way: use another node or path for one of its profiles"
        }
    }
}
