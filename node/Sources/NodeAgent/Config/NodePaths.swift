/// Where a node keeps its files inside its config directory (default /etc/pharos/node).
public struct NodePaths: Sendable {
    public static let defaultDirectory = "/etc/pharos/node"

    public let directory: String

    public init(directory: String = NodePaths.defaultDirectory) {
        self.directory = directory.hasSuffix("/") ? String(directory.dropLast()) : directory
    }

    public var config: String { directory + "/node.yaml" }
    /// P-256 key, created once by `node gen-csr`, 0600; never leaves the host.
    public var key: String { directory + "/node.key" }
    /// Leaf + Fleet CA, written by the operator from `cox nodes enroll`.
    public var certificate: String { directory + "/node.crt" }
    /// The root the controller's client certificate must chain to.
    public var caCertificate: String { directory + "/ca.crt" }
    /// The node's AmneziaWG private key and obfuscation set, 0600.
    public var amneziaWGIdentity: String { directory + "/awg-node.json" }
    /// The node's REALITY keypair, 0600.
    public var xrayIdentity: String { directory + "/xray-node.json" }
    /// The rendered xray server config (holds the REALITY private key), 0600.
    public var xrayConfig: String { directory + "/xray.json" }
    /// Every applied revision, restored at cold start, 0600.
    public var state: String { directory + "/state.json" }
    /// The applied network policy with its exact teardown, 0600.
    public var networkPolicy: String { directory + "/netpolicy.json" }
    /// The plaintext gRPC socket behind the mTLS front door (0600, not network-reachable).
    public var controlSocket: String { directory + "/control.sock" }
}
