import PharosTLS

/// `node gen-csr`: the node's P-256 key is created once (0600) and never leaves the host;
/// the CSR carries only its public half. The controller assigns subject and SANs itself,
/// so the CSR's subject is cosmetic.
public enum NodeCSR {
    public static func generate(paths: NodePaths, commonName: String = "pharos-node") throws -> String {
        try HostKey.certificateSigningRequest(keyPath: paths.key, commonName: commonName)
    }
}
