import Logging
import NIOCore
import NIOHTTP2
import NIOPosix
import Synchronization

/// The relay's one HTTP/2 connection to the controller, over which every client stream is
/// multiplexed. Embedded: dialed to the controller's private Unix socket on demand.
/// Remote: attached when the controller dials in on the tunnel port (the newest wins).
public final class Upstream: Sendable {
    public enum Mode: Sendable {
        case socket(path: String)
        case tunnel
    }

    struct Connection: @unchecked Sendable {
        var channel: any Channel
        var multiplexer: NIOHTTP2Handler.StreamMultiplexer
    }

    public let mode: Mode
    let settings: HTTP2Limits
    let logger: Logger
    private let current = Mutex<Connection?>(nil)
    private let openStreams = Atomic<Int>(0)
    private let connecting = Mutex<EventLoopFuture<Connection>?>(nil)

    public init(mode: Mode, settings: HTTP2Limits = HTTP2Limits(), logger: Logger) {
        self.mode = mode
        self.settings = settings
        self.logger = logger
    }

    public var isConnected: Bool { current.withLock { $0?.channel.isActive ?? false } }

    /// Calls in flight to the controller (all clients together).
    public var streamsInFlight: Int { openStreams.load(ordering: .relaxed) }

    /// Takes one of `settings.maxUpstreamStreams` slots; false when all are taken, so the
    /// call is refused at once instead of queueing behind the controller's stream limit.
    func reserveStream() -> Bool {
        let after = openStreams.wrappingAdd(1, ordering: .relaxed).newValue
        if after > settings.maxUpstreamStreams {
            openStreams.wrappingSubtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func releaseStream() { openStreams.wrappingSubtract(1, ordering: .relaxed) }

    /// The multiplexer to open a stream on, or a failure meaning "unavailable".
    func multiplexer(on eventLoop: any EventLoop) -> EventLoopFuture<NIOHTTP2Handler.StreamMultiplexer> {
        if let connection = current.withLock({ $0 }), connection.channel.isActive {
            return eventLoop.makeSucceededFuture(connection.multiplexer)
        }
        guard case .socket(let path) = mode else {
            return eventLoop.makeFailedFuture(UpstreamUnavailable(reason: "no tunnel from the controller is up"))
        }
        // Decide under the lock, dial outside it: a connect that fails at once completes its
        // callbacks synchronously, and they take the lock again.
        let (future, promise) = connecting.withLock { pending -> (EventLoopFuture<Connection>, EventLoopPromise<Connection>?) in
            if let pending { return (pending, nil) }
            let promise = eventLoop.makePromise(of: Connection.self)
            pending = promise.futureResult
            return (promise.futureResult, promise)
        }
        if let promise { dial(path: path, on: eventLoop).cascade(to: promise) }
        return future.map(\.multiplexer).hop(to: eventLoop)
    }

    private func dial(path: String, on eventLoop: any EventLoop) -> EventLoopFuture<Connection> {
        let settings = self.settings
        let connected = ClientBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                        mode: .client, connectionConfiguration: settings.upstreamConnection,
                        streamConfiguration: settings.stream) { $0.close() }
                }
            }
            .connect(unixDomainSocketPath: path)
            .flatMapThrowing { channel in
                Connection(channel: channel,
                           multiplexer: try channel.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self).syncMultiplexer())
            }
        connected.whenComplete { result in
            self.connecting.withLock { $0 = nil }
            switch result {
            case .success(let connection): self.attach(connection)
            case .failure(let error):
                self.logger.warning("controller socket unreachable", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
        return connected.flatMapErrorThrowing { error in
            throw UpstreamUnavailable(reason: "the controller's socket is not reachable: \(error)")
        }
    }

    /// A new controller connection replaces the old one; streams on the old one run out.
    func attach(_ connection: Connection) {
        let previous = current.withLock { state -> Connection? in
            let old = state
            state = connection
            return old
        }
        if let previous, previous.channel !== connection.channel { previous.channel.close(promise: nil) }
        connection.channel.closeFuture.whenComplete { _ in
            self.current.withLock { state in
                if state?.channel === connection.channel { state = nil }
            }
        }
    }

    func attach(channel: any Channel, multiplexer: NIOHTTP2Handler.StreamMultiplexer) {
        attach(Connection(channel: channel, multiplexer: multiplexer))
    }
}

struct UpstreamUnavailable: Error, CustomStringConvertible {
    var reason: String
    var description: String { reason }
}

/// HTTP/2 limits on both legs.
public struct HTTP2Limits: Sendable {
    public var maxConcurrentStreamsPerClient = 100
    public var maxFrameSize = 16_384
    public var streamWindow = 65_535
    public var connectionWindow = 1 << 20
    public var maxMessageBytes = 16 << 20
    /// Calls the relay keeps in flight to the controller at once. Must stay below the
    /// controller server's own concurrent-stream limit (coxswain allows 20,000): beyond it,
    /// HTTP/2 would queue new streams inside the relay with no bound and no answer.
    public var maxUpstreamStreams = 10_000
    /// The relay PINGs the controller's tunnel this often (idle NATs keep it) ...
    public var tunnelPingInterval = TimeAmount.seconds(20)
    /// ... and closes it when a PING is not acknowledged in time (a controller that vanished
    /// without a FIN), so clients get `unavailable` at once and the dialer starts over.
    public var tunnelPingTimeout = TimeAmount.seconds(10)
    /// A connection to either listener must complete its TLS handshake within this.
    public var handshakeTimeout = TimeAmount.seconds(10)

    public init() {}

    var clientConnection: NIOHTTP2Handler.ConnectionConfiguration {
        var c = NIOHTTP2Handler.ConnectionConfiguration()
        c.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreamsPerClient),
            HTTP2Setting(parameter: .initialWindowSize, value: streamWindow),
            HTTP2Setting(parameter: .maxFrameSize, value: maxFrameSize),
            HTTP2Setting(parameter: .maxHeaderListSize, value: 16_384),
        ]
        c.targetWindowSize = connectionWindow
        return c
    }

    var upstreamConnection: NIOHTTP2Handler.ConnectionConfiguration {
        var c = clientConnection
        c.initialSettings = [
            HTTP2Setting(parameter: .enablePush, value: 0),
            HTTP2Setting(parameter: .initialWindowSize, value: streamWindow),
            HTTP2Setting(parameter: .maxFrameSize, value: maxFrameSize),
            HTTP2Setting(parameter: .maxHeaderListSize, value: 16_384),
        ]
        c.targetWindowSize = connectionWindow
        return c
    }

    var stream: NIOHTTP2Handler.StreamConfiguration {
        var s = NIOHTTP2Handler.StreamConfiguration()
        s.targetWindowSize = streamWindow
        s.outboundBufferSizeHighWatermark = 64 << 10
        s.outboundBufferSizeLowWatermark = 32 << 10
        return s
    }
}
