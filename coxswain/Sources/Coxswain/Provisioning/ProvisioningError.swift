public enum ProvisioningError: Error, Equatable, CustomStringConvertible {
    case subnetExhausted(String)
    case nodeNotReady(node: String)
    case protocolUnavailable(node: String, protocol: String)
    case pathsNotSupported(spec: String)
    case invalidEncryptionKey(String)

    public var description: String {
        switch self {
        case .subnetExhausted(let subnet): "no free tunnel address left in \(subnet); widen fleet.vpn_subnet"
        case .nodeNotReady(let node):
            "node \(node) has not reported its keys yet (AmneziaWG key, obfuscation, REALITY key); devices are placed on it once `cox nodes status \(node)` succeeds"
        case .protocolUnavailable(let node, let proto): "node \(node) does not serve \(proto) (it reported no key for it)"
        case .pathsNotSupported(let spec): "profile \(spec) uses a path; multi-hop paths are not built yet"
        case .invalidEncryptionKey(let reason): "the device encryption key is invalid: \(reason)"
        }
    }
}
