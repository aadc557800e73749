import PharosTLS

/// `relay gen-csr`: the relay's P-256 key is created once (0600) and never leaves the host.
/// The controller assigns subject, SAN (the relay's public hostname) and usages itself.
/// Run as root in a config directory owned by `pharos-relay` (the Debian package's), the key
/// goes to that user, so the daemon can read it.
public enum RelayCSR {
    public static func generate(paths: RelayPaths) throws -> String {
        try HostKey.certificateSigningRequest(keyPath: paths.key, commonName: "pharos-relay")
    }
}

public enum RelayIdentityError: Error, CustomStringConvertible {
    case missingFleetCA(path: String)

    public var description: String {
        switch self {
        case .missingFleetCA(let path): "\(path) must hold the relay leaf followed by the Fleet CA certificate"
        }
    }
}
