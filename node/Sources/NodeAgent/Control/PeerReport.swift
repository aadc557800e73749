import PharosWireGuard

/// One row of ListPeers and GetMetrics: a peer as the controller pushed it and, for
/// AmneziaWG, what the data plane last saw of it.
public enum PeerReport: Sendable, Equatable {
    case xrayReality(XRayServerConfig.Client)
    /// `live` is nil when the data plane does not know the peer or could not be asked.
    case amneziaWG(PeerSpec, live: UAPI.PeerStatus?)

    public var peerID: String {
        switch self {
        case .xrayReality(let client): client.peerID
        case .amneziaWG(let spec, _): spec.id
        }
    }
}
