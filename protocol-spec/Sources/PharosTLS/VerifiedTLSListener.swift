import NIOCore
import PharosSpec
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization
import X509

/// What every TLS listener of ours enforces before a connection reaches its own handlers.
public struct ListenerLimits: Sendable, Equatable {
    /// A connection must complete its TLS handshake within this, or it is closed: a
    /// connection that never handshakes does not hold a slot forever.
    public var handshakeTimeout: TimeAmount
    /// Connections open at once on the listener; one more is closed as it is accepted.
    public var maxConnections: Int
    /// Connections open at once from one source address, so one host cannot take every slot.
    public var maxConnectionsPerAddress: Int

    public init(handshakeTimeout: TimeAmount = .seconds(10), maxConnections: Int = 10_000, maxConnectionsPerAddress: Int = 256) {
        self.handshakeTimeout = handshakeTimeout
        self.maxConnections = maxConnections
        self.maxConnectionsPerAddress = maxConnectionsPerAddress
    }
}

/// Open connections of one listener, in total and per source address.
public final class ConnectionBudget: Sendable {
    public enum Refusal: Equatable, Sendable, CustomStringConvertible {
        case listenerFull(limit: Int)
        case addressFull(address: String, limit: Int)

        public var description: String {
            switch self {
            case .listenerFull(let limit): "the listener already holds its \(limit) connections"
            case .addressFull(let address, let limit): "\(address) already holds its \(limit) connections"
            }
        }
    }

    private struct Counts {
        var total = 0
        var byAddress: [String: Int] = [:]
    }

    public let limits: ListenerLimits
    private let counts = Mutex(Counts())

    public init(limits: ListenerLimits) {
        self.limits = limits
    }

    /// Takes a slot for a connection from `address` (counted by its `SourceBucket`: an IPv6
    /// /64 is one source), or says why there is none.
    public func admit(_ address: String) -> Refusal? {
        let address = SourceBucket.of(address)
        return counts.withLock { counts in
            if counts.total >= limits.maxConnections { return .listenerFull(limit: limits.maxConnections) }
            let fromAddress = counts.byAddress[address, default: 0]
            if fromAddress >= limits.maxConnectionsPerAddress {
                return .addressFull(address: address, limit: limits.maxConnectionsPerAddress)
            }
            counts.total += 1
            counts.byAddress[address] = fromAddress + 1
            return nil
        }
    }

    /// Returns the slot `admit` gave a connection from `address`.
    public func release(_ address: String) {
        let address = SourceBucket.of(address)
        counts.withLock { counts in
            counts.total -= 1
            let left = counts.byAddress[address, default: 1] - 1
            counts.byAddress[address] = left > 0 ? left : nil
        }
    }

    public var openConnections: Int { counts.withLock { $0.total } }
}

/// The TLS context a listener gives each new connection. Replacing it (a renewed leaf)
/// changes what the next handshakes present; the port and every open connection stay.
public final class SwappableTLSContext: Sendable {
    private let context: Mutex<NIOSSLContext>

    public init(_ context: NIOSSLContext) {
        self.context = Mutex(context)
    }

    public var current: NIOSSLContext { context.withLock { $0 } }

    public func replace(with context: NIOSSLContext) {
        self.context.withLock { $0 = context }
    }
}

/// A TCP listener whose connections pass, in order: the connection budget (refused ones are
/// closed as they are accepted), TLS checked by a `PeerVerifier`, and a handshake deadline;
/// `configure` then adds the listener's own handlers. Every TLS port of the fleet (the
/// node's control port, the relay's client and tunnel ports) is one of these.
public enum VerifiedTLSListener {
    struct Refused: Error, CustomStringConvertible {
        var refusal: ConnectionBudget.Refusal
        var description: String { "connection refused: \(refusal)" }
    }

    public static func bind(host: String, port: Int, context: NIOSSLContext, verifier: PeerVerifier, limits: ListenerLimits,
                            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                            onRefusal: @escaping @Sendable (ConnectionBudget.Refusal) -> Void = { _ in },
                            configure: @escaping @Sendable (any Channel) throws -> Void) async throws -> any Channel {
        try await bind(host: host, port: port, context: context, verifier: verifier, budget: ConnectionBudget(limits: limits),
                       group: group, onRefusal: onRefusal, configure: configure)
    }

    /// As above, counting into `budget` (which the caller can read: open connections).
    public static func bind(host: String, port: Int, context: NIOSSLContext, verifier: PeerVerifier, budget: ConnectionBudget,
                            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                            onRefusal: @escaping @Sendable (ConnectionBudget.Refusal) -> Void = { _ in },
                            configure: @escaping @Sendable (any Channel) throws -> Void) async throws -> any Channel {
        try await bind(host: host, port: port, tls: SwappableTLSContext(context), verifier: verifier, budget: budget,
                       group: group, onRefusal: onRefusal, configure: configure)
    }

    /// As above, each new connection handshaking with whatever `tls` holds at the time (a
    /// renewed leaf is swapped in without closing the port or any connection).
    /// Connections are admitted on their own event loops, so two that arrive together are
    /// not necessarily admitted in arrival order; the limits hold at every instant.
    public static func bind(host: String, port: Int, tls: SwappableTLSContext, verifier: PeerVerifier, budget: ConnectionBudget,
                            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                            onRefusal: @escaping @Sendable (ConnectionBudget.Refusal) -> Void = { _ in },
                            configure: @escaping @Sendable (any Channel) throws -> Void) async throws -> any Channel {
        let callback = verifier.callback
        let limits = budget.limits
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelInitializer { connection in
                let address = connection.remoteAddress?.ipAddress ?? "unknown"
                if let refusal = budget.admit(address) {
                    onRefusal(refusal)
                    return connection.eventLoop.makeFailedFuture(Refused(refusal: refusal))
                }
                connection.closeFuture.whenComplete { _ in budget.release(address) }
                return connection.eventLoop.makeCompletedFuture {
                    try connection.pipeline.syncOperations.addHandler(
                        NIOSSLServerHandler(context: tls.current, customVerificationCallbackWithMetadata: callback))
                    // After the TLS handler, which is what announces a completed handshake.
                    try connection.pipeline.syncOperations.addHandler(HandshakeDeadline(timeout: limits.handshakeTimeout))
                    if let denied = verifier.requirements.denied {
                        try connection.pipeline.syncOperations.addHandler(RevocationWatch(denied: denied))
                    }
                    try configure(connection)
                }
            }
            .bind(host: host, port: port).get()
    }
}

/// Once the handshake completes, has the connection closed when a deny list names the
/// peer's leaf (`DeniedCertificates.watch`); it must sit after the TLS handler, as
/// `HandshakeDeadline` does, and leaves the pipeline once it registered.
final class RevocationWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let denied: DeniedCertificates

    init(denied: DeniedCertificates) { self.denied = denied }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        context.fireUserInboundEventTriggered(event)
        guard case .handshakeCompleted = event as? TLSUserEvent else { return }
        let channel = context.channel
        // A listener whose clients may come without a certificate has nothing to watch there.
        guard let peer = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).peerCertificate else {
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
            return
        }
        // The serial as the verifier computed it (X509's bytes, not OpenSSL's integer's).
        guard let leaf = try? Certificate(derEncoded: peer.toDERBytes()) else {
            channel.close(promise: nil)  // the verifier parsed it; a leaf that does not parse now is refused
            return
        }
        if let id = denied.watch(serial: leaf.serialHex, close: { channel.close(promise: nil) }) {
            let denied = self.denied
            channel.closeFuture.whenComplete { _ in denied.unwatch(id) }
        }
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
    }
}

/// Closes a connection whose TLS handshake has not completed within the deadline. It must
/// sit after the TLS handler: the handshake's completion is an inbound event that handler
/// fires towards the tail (placed before it, the deadline never heard of the handshake and
/// closed every connection, the controller's tunnel included, after 10 s).
final class HandshakeDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Pass the event on first: the handlers after this one set the connection up on it,
        // and a handler that has left the pipeline forwards nothing.
        context.fireUserInboundEventTriggered(event)
        if case .handshakeCompleted = event as? TLSUserEvent {
            timer?.cancel()
            context.pipeline.syncOperations.removeHandler(self, promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) { timer?.cancel() }
}
