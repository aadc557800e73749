/// Where a relay keeps its files. The config directory holds what the operator installed;
/// the state directory what the relay writes while it runs (its renewed leaf, nothing else:
/// no database, no CA key). The state directory is the config directory unless
/// `--state-dir` says otherwise (the Debian package uses /var/lib/pharos/relay, so the config
/// directory stays read-only to the daemon).
public struct RelayPaths: Sendable {
    public static let defaultDirectory = "/etc/pharos/relay"

    public let directory: String
    public let stateDirectory: String

    public init(directory: String = RelayPaths.defaultDirectory, stateDirectory: String? = nil) {
        self.directory = directory
        self.stateDirectory = stateDirectory ?? directory
    }

    public var config: String { directory + "/relay.yaml" }
    /// P-256, created by `relay gen-csr`, 0600, never leaves the host.
    public var key: String { directory + "/relay.key" }
    /// The relay leaf (O=PharosVPN Relay, ServerAuth + ClientAuth) followed by the Fleet CA.
    public var certificate: String { directory + "/relay.crt" }
    /// The fleet's root: every chain the relay accepts ends here.
    public var rootCertificate: String { directory + "/ca.crt" }
    /// Client device leaves must be issued by this CA.
    public var deviceCACertificate: String { directory + "/device-ca.crt" }
    /// The leaf the relay renewed the enrolled one to, after its key, in one file (0600): key
    /// and chain are replaced together or not at all.
    public var renewedIdentity: String { stateDirectory + "/relay-renewed.pem" }
    /// The key of a renewal in progress (0600), kept until its certificate is accepted: a
    /// retry after a lost answer asks for the same leaf.
    public var pendingKey: String { stateDirectory + "/relay-pending.key" }
}
