import Foundation

/// Something the observer saw happen on the data plane, as WatchEvents reports it. Every event
/// is about the AmneziaWG plane: XRay has no handshakes to watch.
public struct NodeEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case handshakeUp
        case handshakeDown
        case peerConnected
        case peerDisconnected
        /// The data plane could not be polled.
        case error
    }

    public var at: Date
    public var type: Kind
    /// The controller's id of the peer; empty when the peer is unknown or for an error.
    public var peerID: String
    public var message: String
    public var sourceEndpoint: String
    /// Cumulative bytes of the peer.
    public var rxBytes: Int64
    public var txBytes: Int64

    public init(at: Date, type: Kind, peerID: String = "", message: String, sourceEndpoint: String = "",
                rxBytes: Int64 = 0, txBytes: Int64 = 0) {
        self.at = at
        self.type = type
        self.peerID = peerID
        self.message = message
        self.sourceEndpoint = sourceEndpoint
        self.rxBytes = rxBytes
        self.txBytes = txBytes
    }
}
