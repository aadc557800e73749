/// Files in the relay's config directory. Nothing else is on disk: no database, no CA key.
public struct RelayPaths: Sendable {
    public static let defaultDirectory = "/etc/pharos/relay"

    public let directory: String

    public init(directory: String = RelayPaths.defaultDirectory) {
        self.directory = directory
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
}
