import PharosSpec

/// The node as GetStatus reports it: what runs, what is applied, and the public halves of the
/// keys (and the obfuscation set) clients need.
public struct NodeStatus: Sendable, Equatable {
    /// One protocol's daemon.
    public struct ServiceStatus: Sendable, Equatable {
        public var running = false
        public var listening = false
        public var detail = ""
        public var peerCount = 0
        /// Seconds since the newest handshake of any peer; nil when none has handshaken.
        public var newestHandshakeAge: Int64?
        /// Peers with a handshake younger than `HandshakeTracker.staleAfter`.
        public var handshakingPeers = 0

        public init(peerCount: Int) { self.peerCount = peerCount }
    }

    public var uptimeSeconds: Int64
    /// The newer of the AmneziaWG and XRay revisions.
    public var appliedRevision: Int64
    public var amneziaWG: ServiceStatus
    public var xrayReality: ServiceStatus
    public var amneziaWGPublicKey: String
    /// The set clients must be given; nil when the data plane cannot speak it (plain WireGuard).
    public var obfuscation: Obfuscation?
    public var xrayPublicKey: String
}
