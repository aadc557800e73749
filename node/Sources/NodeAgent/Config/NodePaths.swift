/// Where a node keeps its files. The config directory (default /etc/pharos/node) holds what
/// the operator provides: the key `gen-csr` created, the certificates, node.yaml. The state
/// directory holds what the agent writes while it runs; it is the config directory unless
/// `--state-dir` says otherwise (the Debian package uses /var/lib/pharos/node, so the config
/// directory can stay read-only to the daemon).
public struct NodePaths: Sendable {
    public static let defaultDirectory = "/etc/pharos/node"

    public let directory: String
    public let stateDirectory: String

    public init(directory: String = NodePaths.defaultDirectory, stateDirectory: String? = nil) {
        self.directory = Self.trimmed(directory)
        self.stateDirectory = stateDirectory.map(Self.trimmed) ?? self.directory
    }

    private static func trimmed(_ path: String) -> String {
        path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    public var config: String { directory + "/node.yaml" }
    /// P-256 key, created once by `node gen-csr`, 0600; never leaves the host.
    public var key: String { directory + "/node.key" }
    /// Leaf + Fleet CA, written by the operator from `cox nodes enroll`.
    public var certificate: String { directory + "/node.crt" }
    /// The root the controller's client certificate must chain to.
    public var caCertificate: String { directory + "/ca.crt" }
    /// The node's AmneziaWG private key and obfuscation set, 0600.
    public var amneziaWGIdentity: String { stateDirectory + "/awg-node.json" }
    /// The node's REALITY keypair, 0600.
    public var xrayIdentity: String { stateDirectory + "/xray-node.json" }
    /// The rendered xray server config (holds the REALITY private key), 0600.
    public var xrayConfig: String { stateDirectory + "/xray.json" }
    /// Every applied revision, restored at cold start, 0600.
    public var state: String { stateDirectory + "/state.json" }
    /// The applied network policy with its exact teardown, 0600.
    public var networkPolicy: String { stateDirectory + "/netpolicy.json" }
    /// The leaf the controller renewed the enrolled one to, with its key, in one file (0600).
    public var renewedIdentity: String { stateDirectory + "/node-renewed.pem" }
    /// The key of a renewal in progress (0600): the controller has its CSR, not yet its certificate.
    public var pendingKey: String { stateDirectory + "/node-pending.key" }
    /// Serials of controller leaves revoked before they expired, refused at the handshake.
    public var deniedControllers: String { stateDirectory + "/denied-controllers.json" }
    /// The plaintext gRPC socket behind the mTLS front door (0600, not network-reachable).
    public var controlSocket: String { stateDirectory + "/control.sock" }
}
