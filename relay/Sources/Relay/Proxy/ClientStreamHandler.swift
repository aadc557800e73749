import NIOCore
import PharosSpec
import NIOHPACK
import NIOHTTP2

/// One client call on the public side: checks it against `CallPolicy`, opens the matching
/// stream on the controller connection, and forwards the request's frames to it with
/// back-pressure (this stream reads only while the upstream stream can take writes).
final class ClientStreamHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private enum State {
        case awaitingHeaders
        /// A certless request, held whole before the controller sees any of it.
        case holding(buffered: [HTTP2Frame.FramePayload], bytes: Int)
        case connecting(buffered: [HTTP2Frame.FramePayload])
        case forwarding(upstream: any Channel)
        case closed
    }

    private let fingerprint: String?
    private let upstream: Upstream
    private let denyList: DeviceDenyList?
    private var state = State.awaitingHeaders
    private var requestEnded = false
    /// The controller's END_STREAM (or a local answer) has been written to the client.
    private var responseEnded = false
    private var meter: GRPCMessageMeter
    private var context: ChannelHandlerContext?
    /// Request deadlines (`HTTP2Limits.certlessRequestTimeout`, `requestIdleTimeout`).
    private let requestTimeout: TimeAmount?
    private let idleTimeout: TimeAmount
    private var requestStarted = NIODeadline.now()
    private var lastClientFrame = NIODeadline.now()
    private var requestTimer: Scheduled<Void>?
    private let certlessMaxRequestBytes: Int
    /// Counted in `Upstream.certlessRequestsHeld` (given back exactly once).
    private var countedAsHeld = false {
        didSet {
            guard countedAsHeld != oldValue else { return }
            upstream.held.wrappingAdd(countedAsHeld ? 1 : -1, ordering: .relaxed)
        }
    }

    init(fingerprint: String?, upstream: Upstream, denyList: DeviceDenyList?, limits: HTTP2Limits) {
        self.fingerprint = fingerprint
        self.denyList = denyList
        self.upstream = upstream
        self.meter = GRPCMessageMeter(limit: limits.maxMessageBytes)
        self.requestTimeout = fingerprint == nil ? limits.certlessRequestTimeout : nil
        self.idleTimeout = limits.requestIdleTimeout
        self.certlessMaxRequestBytes = limits.certlessMaxRequestBytes
    }

    private var certless: Bool { fingerprint == nil }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelActive(context: ChannelHandlerContext) {
        context.read()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let payload = unwrapInboundIn(data)
        lastClientFrame = .now()
        switch state {
        case .awaitingHeaders:
            guard case .headers(let request) = payload else {
                context.close(promise: nil)
                return
            }
            requestEnded = request.endStream
            switch CallPolicy.decide(request.headers, deviceFingerprint: fingerprint,
                                      denied: fingerprint.map { denyList?.contains($0) ?? false } ?? false) {
            case .reject(let status, let message):
                respond(status: status, message: message)
            case .forward(let headers):
                let first = HTTP2Frame.FramePayload.headers(.init(headers: headers, endStream: request.endStream))
                requestStarted = .now()
                armRequestTimer(context: context)
                if certless && !request.endStream {
                    state = .holding(buffered: [first], bytes: 0)
                    countedAsHeld = true
                } else {
                    state = .connecting(buffered: [first])
                    openUpstream(context: context)
                }
            }
        case .holding(var buffered, var bytes):
            if case .rstStream = payload {
                close()  // cancelled before the controller heard of it
                return
            }
            guard let forwardable = filter(payload) else { return }
            if case .closed = state { return }  // refused by the filter (message size)
            if case .data(let data) = forwardable { bytes += data.data.readableBytes }
            guard bytes <= certlessMaxRequestBytes else {
                respond(status: .resourceExhausted,
                        message: "a call without a device certificate may send at most \(certlessMaxRequestBytes) bytes")
                return
            }
            buffered.append(forwardable)
            if requestEnded {
                countedAsHeld = false
                state = .connecting(buffered: buffered)
                openUpstream(context: context)
            } else {
                state = .holding(buffered: buffered, bytes: bytes)
            }
        case .connecting(var buffered):
            if case .rstStream = payload {
                state = .closed  // cancelled before the controller's stream exists: it is closed unused
                return
            }
            guard let forwardable = filter(payload) else { return }
            buffered.append(forwardable)
            state = .connecting(buffered: buffered)
        case .forwarding(let upstream):
            if case .rstStream = payload {
                self.upstream.cancel(upstream)
                state = .closed
                return
            }
            if let forwardable = filter(payload) { upstream.write(forwardable, promise: nil) }
        case .closed:
            break
        }
    }

    /// What of a client frame goes upstream; meters message sizes on the way.
    private func filter(_ payload: HTTP2Frame.FramePayload) -> HTTP2Frame.FramePayload? {
        switch payload {
        case .headers(let headers):
            if headers.endStream { requestEnded = true }
            return .headers(.init(headers: CallPolicy.sanitized(headers.headers, deviceFingerprint: fingerprint),
                                  endStream: headers.endStream))
        case .data(var data):
            if data.endStream { requestEnded = true }
            if case .byteBuffer(let buffer) = data.data, let size = meter.feed(buffer.readableBytesView) {
                fail(status: .resourceExhausted, message: "request message of \(size) bytes exceeds the relay's \(meter.limit)-byte limit")
                return nil
            }
            data.paddingBytes = nil
            guard data.data.readableBytes > 0 || data.endStream else { return nil }
            return .data(data)
        default:
            return nil
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        switch state {
        case .forwarding(let upstream):
            upstream.flush()
            if upstream.isWritable { context.read() }
        case .awaitingHeaders, .holding:
            context.read()
        case .connecting, .closed:
            break
        }
        context.fireChannelReadComplete()
    }

    /// The client can take more: let the upstream side read again.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .forwarding(let upstream) = state { upstream.read() }
        context.fireChannelWritabilityChanged()
    }

    /// Notes when the response is complete; `UpstreamStreamHandler` writes it from the
    /// controller's side.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .headers(let headers) where headers.endStream: responseEnded = true
        case .data(let data) where data.endStream: responseEnded = true
        case .rstStream: responseEnded = true
        default: break
        }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        requestTimer?.cancel()
        if case .forwarding(let upstream) = state {
            if requestEnded && responseEnded {
                // The call completed: END_STREAM went both ways, the controller's stream closes
                // on its own. Closing it here would race that and send a RST_STREAM for every
                // call — the controller's server takes 200 per 30 s and then drops the tunnel.
                upstream.flush()
            } else {
                // The client went away mid-call: cancel it at the controller.
                self.upstream.cancel(upstream)
            }
        }
        close()
        context.fireChannelInactive()
    }

    /// Ends the call on this side; a held request stops being counted.
    private func close() {
        state = .closed
        countedAsHeld = false
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.fireErrorCaught(error)
    }

    /// While the request is open: refused when a certless request is not complete within its
    /// timeout, or any request sends nothing for the idle timeout (a stream held open with
    /// HEADERS alone would otherwise keep its controller slot for ever).
    private func armRequestTimer(context: ChannelHandlerContext) {
        guard !requestEnded else { return }
        var due = lastClientFrame + idleTimeout
        if let requestTimeout { due = min(due, requestStarted + requestTimeout) }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        requestTimer = context.eventLoop.scheduleTask(deadline: due) { loopBound.value.requestTimerFired() }
    }

    private func requestTimerFired() {
        guard !requestEnded, let context else { return }
        if case .closed = state { return }
        let now = NIODeadline.now()
        if let requestTimeout, now >= requestStarted + requestTimeout {
            fail(status: .deadlineExceeded,
                 message: "a call without a device certificate must send its whole request within \(requestTimeout.nanoseconds / 1_000_000_000) s")
        } else if now >= lastClientFrame + idleTimeout {
            fail(status: .deadlineExceeded, message: "the request sent nothing for \(idleTimeout.nanoseconds / 1_000_000_000) s")
        } else {
            armRequestTimer(context: context)
        }
    }

    private func openUpstream(context: ChannelHandlerContext) {
        // A certless call is counted against its source address (the connection's peer).
        let certlessFrom: String? = certless ? SourceBucket.of(context.channel.parent?.remoteAddress?.ipAddress ?? "unknown") : nil
        switch upstream.reserveStream(certlessFrom: certlessFrom) {
        case nil:
            break
        case .allTaken:
            respond(status: .resourceExhausted,
                    message: "the relay has \(upstream.settings.maxUpstreamStreams) calls in flight to the controller, its limit; retry shortly")
            return
        case .certlessBudgetTaken:
            respond(status: .resourceExhausted,
                    message: "the relay has \(upstream.settings.maxCertlessUpstreamStreams) enrollments in flight, its limit; retry shortly")
            return
        case .certlessAddressBudgetTaken:
            respond(status: .resourceExhausted,
                    message: "\(upstream.settings.maxCertlessStreamsPerAddress) enrollments from this address are in flight, the limit; retry shortly")
            return
        }
        let client = context.channel
        let limit = meter.limit
        let upstream = self.upstream
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        upstream.multiplexer(on: context.eventLoop).flatMap { mux in
            mux.createStreamChannel { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.syncOptions!.setOption(.autoRead, value: false)
                    try stream.pipeline.syncOperations.addHandler(UpstreamStreamHandler(client: client, maxMessageBytes: limit))
                }
            }
        }.hop(to: context.eventLoop).whenComplete { result in
            switch result {
            case .success(let stream): stream.closeFuture.whenComplete { _ in upstream.releaseStream(certlessFrom: certlessFrom) }
            case .failure: upstream.releaseStream(certlessFrom: certlessFrom)
            }
            loopBound.value.upstreamOpened(result)
        }
    }

    private func upstreamOpened(_ result: Result<any Channel, any Error>) {
        switch result {
        case .success(let stream):
            guard case .connecting(let buffered) = state else {
                stream.close(promise: nil)  // the client gave up meanwhile
                return
            }
            state = .forwarding(upstream: stream)
            for payload in buffered { stream.write(payload, promise: nil) }
            stream.flush()
            if stream.isWritable { context?.read() }
        case .failure(let error):
            respond(status: .unavailable, message: "the controller cannot be reached: \(error)")
        }
    }

    /// Answers the call locally with an error status (trailers-only) and ends the stream.
    private func respond(status: GRPCStatusCode, message: String) {
        guard let context else { return }
        close()
        context.write(wrapOutboundOut(.headers(.init(headers: CallPolicy.trailersOnly(status: status, message: message), endStream: true))),
                      promise: nil)
        if !requestEnded { context.write(wrapOutboundOut(.rstStream(.noError)), promise: nil) }
        context.flush()
    }

    /// A violation after the call reached the controller: cancel upstream, tell the client.
    private func fail(status: GRPCStatusCode, message: String) {
        // Answer first: closing the upstream stream makes its handler report "unavailable".
        let upstream: (any Channel)? = if case .forwarding(let channel) = state { channel } else { nil }
        respond(status: status, message: message)
        if let upstream { self.upstream.cancel(upstream) }
    }
}

@available(*, unavailable)
extension ClientStreamHandler: Sendable {}
