import Logging
import NIOCore
import NIOHTTP2
import NIOPosix
import PharosTLS
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
    private let openCertlessStreams = Atomic<Int>(0)
    private let certlessByAddress = Mutex<[String: Int]>([:])
    private let attached = Atomic<Int>(0)
    private let cancelled = Atomic<Int>(0)
    private let waiting = Atomic<Int>(0)
    private let cancelTimes = Mutex<[NIODeadline]>([])
    private let connecting = Mutex<EventLoopFuture<Connection>?>(nil)

    public init(mode: Mode, settings: HTTP2Limits = HTTP2Limits(), logger: Logger) {
        self.mode = mode
        self.settings = settings
        self.logger = logger
    }

    public var isConnected: Bool { current.withLock { $0?.channel.isActive ?? false } }

    /// Requests without a device certificate held by the relay until they are complete.
    public var certlessRequestsHeld: Int { held.load(ordering: .relaxed) }
    let held = Atomic<Int>(0)

    /// Controller connections attached so far (a tunnel that keeps dropping shows here).
    public var attachedConnections: Int { attached.load(ordering: .relaxed) }

    /// Calls the relay has cancelled at the controller (RST_STREAM) because their client
    /// cancelled them or left mid-call. The controller's HTTP/2 server tolerates 200 resets per 30 s on one
    /// connection: a relay whose clients drop calls faster than that loses its tunnel.
    public var cancelledCalls: Int { cancelled.load(ordering: .relaxed) }

    /// Cancellations held back by the budget below, not yet sent.
    public var cancelsWaiting: Int { waiting.load(ordering: .relaxed) }

    /// Cancels one call at the controller with RST_STREAM — at once while fewer than
    /// `maxCancelsPerWindow` went out in the last `cancelWindow`, otherwise as soon as one
    /// more fits. The controller's HTTP/2 server (swift-nio-http2's DoS heuristics, not
    /// configurable through grpc-swift) answers a 201st reset within 30 s on one connection
    /// with GOAWAY ENHANCE_YOUR_CALM, and the tunnel carries every client's calls: a burst of
    /// departing clients must not take it down. Until its reset goes out, a held-back
    /// stream's responses are read and dropped, so they never fill the tunnel's shared
    /// flow-control window.
    func cancel(_ stream: any Channel) {
        guard stream.isActive else { return }
        let limit = settings.maxCancelsPerWindow, window = settings.cancelWindow
        let wait = cancelTimes.withLock { times -> TimeAmount? in
            let now = NIODeadline.now()
            times.removeAll { now - $0 >= window }
            guard times.count >= limit else {
                times.append(now)
                return nil
            }
            return times[0] + window - now
        }
        guard let wait else {
            cancelled.wrappingAdd(1, ordering: .relaxed)
            stream.close(promise: nil)  // NIO resets an open stream it closes: RST_STREAM(CANCEL)
            return
        }
        waiting.wrappingAdd(1, ordering: .relaxed)
        stream.eventLoop.execute {
            stream.pipeline.fireUserInboundEventTriggered(UpstreamStreamHandler.Discard())
        }
        stream.eventLoop.scheduleTask(in: max(wait, .milliseconds(1))) {
            self.waiting.wrappingSubtract(1, ordering: .relaxed)
            self.cancel(stream)
        }
    }

    /// Calls in flight to the controller (all clients together).
    public var streamsInFlight: Int { openStreams.load(ordering: .relaxed) }

    /// Certless calls in flight to the controller.
    public var certlessStreamsInFlight: Int { openCertlessStreams.load(ordering: .relaxed) }

    /// Why a call gets no slot.
    enum SlotRefusal {
        case allTaken, certlessBudgetTaken, certlessAddressBudgetTaken
    }

    /// Takes one of `settings.maxUpstreamStreams` slots (a `certless` call also one of
    /// `maxCertlessUpstreamStreams`); nil when it got one, so a call without one is refused
    /// at once instead of queueing behind the controller's stream limit.
    /// `certlessFrom` is the source address of a call without a device certificate, nil for
    /// a device's call.
    func reserveStream(certlessFrom address: String?) -> SlotRefusal? {
        if let address {
            let perAddress = settings.maxCertlessStreamsPerAddress
            let admitted = certlessByAddress.withLock { counts in
                guard counts[address, default: 0] < perAddress else { return false }
                counts[address, default: 0] += 1
                return true
            }
            guard admitted else { return .certlessAddressBudgetTaken }
            let after = openCertlessStreams.wrappingAdd(1, ordering: .relaxed).newValue
            if after > settings.maxCertlessUpstreamStreams {
                releaseCertless(address)
                return .certlessBudgetTaken
            }
        }
        let after = openStreams.wrappingAdd(1, ordering: .relaxed).newValue
        if after > settings.maxUpstreamStreams {
            openStreams.wrappingSubtract(1, ordering: .relaxed)
            if let address { releaseCertless(address) }
            return .allTaken
        }
        return nil
    }

    func releaseStream(certlessFrom address: String?) {
        openStreams.wrappingSubtract(1, ordering: .relaxed)
        if let address { releaseCertless(address) }
    }

    private func releaseCertless(_ address: String) {
        openCertlessStreams.wrappingSubtract(1, ordering: .relaxed)
        certlessByAddress.withLock { counts in
            let left = counts[address, default: 1] - 1
            counts[address] = left > 0 ? left : nil
        }
    }

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
        let logger = self.logger
        let connected = ClientBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    _ = try Upstream.configureConnection(channel, settings: settings, logger: logger)
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

    /// The relay's end of a controller connection (socket or tunnel): HTTP/2 client with the
    /// controller-side limits, and the guard that closes it when NIO gives up on it.
    static func configureConnection(_ channel: any Channel, settings: HTTP2Limits,
                                    logger: Logger) throws -> NIOHTTP2Handler.StreamMultiplexer {
        let mux = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .client, connectionConfiguration: settings.upstreamConnection,
            streamConfiguration: settings.upstreamStream) { $0.close() }
        try channel.pipeline.syncOperations.addHandler(UpstreamConnectionGuard(logger: logger))
        return mux
    }

    /// A new controller connection replaces the old one; streams on the old one run out.
    func attach(_ connection: Connection) {
        attached.wrappingAdd(1, ordering: .relaxed)
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
    /// Calls without a device certificate (only ClaimEnrollment is allowed) take at most this
    /// many of those slots together, so strangers can never starve enrolled devices ...
    public var maxCertlessUpstreamStreams = 256
    /// ... at most this many from one source address ...
    public var maxCertlessStreamsPerAddress = 16
    /// ... open at most this many streams on one connection ...
    public var maxConcurrentStreamsPerCertlessClient = 4
    /// ... and must finish their request (END_STREAM) within this time: a ClaimEnrollment is
    /// one small message, so a caller holding a stream open is refused, not waited for.
    /// The relay holds such a request until it is complete and only then opens a stream to
    /// the controller: a half-open call never takes a controller slot, and cutting it off
    /// spends none of the controller's reset budget.
    public var certlessRequestTimeout = TimeAmount.seconds(10)
    /// What one such request may send while it is held (a ClaimEnrollment is under 2 KiB).
    public var certlessMaxRequestBytes = 8 * 1024
    /// A device's request that sends nothing for this long while still open is cancelled.
    public var requestIdleTimeout = TimeAmount.seconds(60)
    /// The relay PINGs the controller's tunnel this often (idle NATs keep it) ...
    public var tunnelPingInterval = TimeAmount.seconds(20)
    /// ... and closes it when a PING is not acknowledged in time (a controller that vanished
    /// without a FIN), so clients get `unavailable` at once and the dialer starts over.
    public var tunnelPingTimeout = TimeAmount.seconds(10)
    /// At most this many calls are cancelled at the controller (RST_STREAM) per
    /// `cancelWindow`; more wait their turn (`Upstream.cancel`). The controller's server
    /// tolerates 200 per 30 s per connection: this leaves room for resets it sees otherwise.
    public var maxCancelsPerWindow = 150
    public var cancelWindow = TimeAmount.seconds(30)
    /// Streams NIO remembers as reset on one connection, so that the peer's frames already in
    /// flight for them are ignored. NIO's default of 32 turns a late frame for an older reset
    /// into a connection error: it sends GOAWAY and stops decoding, and every later answer on
    /// the connection is stranded (a burst of cancelled calls did exactly that).
    public var recentlyResetStreams = 4096
    /// The public client port: handshake deadline, connections in total and per source address.
    public var clientListener = ListenerLimits(handshakeTimeout: .seconds(10), maxConnections: 10_000, maxConnectionsPerAddress: 256)
    /// The tunnel port: only the controller connects, with one connection at a time (a few
    /// while a lost one is being replaced).
    public var tunnelListener = ListenerLimits(handshakeTimeout: .seconds(10), maxConnections: 64, maxConnectionsPerAddress: 16)

    public init() {}

    /// A client connection's HTTP/2 settings; `certless` connections get fewer streams.
    func clientConnection(certless: Bool) -> NIOHTTP2Handler.ConnectionConfiguration {
        var c = clientConnection
        if certless {
            c.initialSettings = c.initialSettings.map {
                $0.parameter == .maxConcurrentStreams ? HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreamsPerCertlessClient) : $0
            }
        }
        return c
    }

    var clientConnection: NIOHTTP2Handler.ConnectionConfiguration {
        var c = NIOHTTP2Handler.ConnectionConfiguration()
        c.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: maxConcurrentStreamsPerClient),
            HTTP2Setting(parameter: .initialWindowSize, value: streamWindow),
            HTTP2Setting(parameter: .maxFrameSize, value: maxFrameSize),
            HTTP2Setting(parameter: .maxHeaderListSize, value: 16_384),
        ]
        c.targetWindowSize = connectionWindow
        c.maximumRecentlyResetStreams = recentlyResetStreams
        return c
    }

    var upstreamConnection: NIOHTTP2Handler.ConnectionConfiguration {
        var c = clientConnection
        c.maximumConnectionGlitches = 1 << 30
        c.initialSettings = [
            HTTP2Setting(parameter: .enablePush, value: 0),
            HTTP2Setting(parameter: .initialWindowSize, value: streamWindow),
            HTTP2Setting(parameter: .maxFrameSize, value: maxFrameSize),
            HTTP2Setting(parameter: .maxHeaderListSize, value: 16_384),
        ]
        c.targetWindowSize = connectionWindow
        return c
    }

    /// The controller is authenticated and the relay's only peer on this connection, and the
    /// frames NIO counts as a peer's "glitches" (answers on streams the relay has just reset,
    /// for every client that left) are normal for a proxy: NIO's DoS limits, meant for
    /// strangers, would have the relay give up on its own controller.
    var upstreamStream: NIOHTTP2Handler.StreamConfiguration {
        var s = stream
        s.streamErrorRateLimit.maximumCount = 1 << 30
        s.streamResetFrameRateLimit.maximumCount = 1 << 30
        return s
    }

    var stream: NIOHTTP2Handler.StreamConfiguration {
        var s = NIOHTTP2Handler.StreamConfiguration()
        s.targetWindowSize = streamWindow
        s.outboundBufferSizeHighWatermark = 64 << 10
        s.outboundBufferSizeLowWatermark = 32 << 10
        return s
    }
}

/// Closes a controller connection on which NIO has raised a connection error: NIO writes
/// GOAWAY and reports the error, but leaves the closing to the pipeline — a connection left
/// open then swallowed every new call without an answer. Closed, its clients get
/// `unavailable` at once and a fresh connection is dialed (socket) or awaited (tunnel).
/// Errors that concern one stream only (a write on a stream that has just ended) pass.
final class UpstreamConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame
    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if Self.endsConnection(error) {
            logger.warning("controller connection failed, closing it", metadata: ["error": "\(error)"])
            context.close(promise: nil)
        }
        context.fireErrorCaught(error)
    }

    static func endsConnection(_ error: any Error) -> Bool {
        switch error {
        case let missing as NIOHTTP2Errors.NoSuchStream:
            // From the connection's state machine it is a connection error (GOAWAY sent,
            // decoding stopped); from a write on a stream that has just ended, it is not.
            return missing.location.contains("ConnectionStreamsState")
        case is NIOHTTP2Errors.StreamClosed, is NIOHTTP2Errors.StreamError,
             is NIOHTTP2Errors.StreamIDTooSmall, is NIOHTTP2Errors.CreatedStreamAfterGoaway, is ChannelError:
            return false
        default:
            // Everything else NIO reports here is a connection error it has answered with
            // GOAWAY (the DoS heuristics' Excessive… errors, protocol violations).
            return true
        }
    }
}
