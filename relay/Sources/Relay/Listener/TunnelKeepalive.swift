import Logging
import NIOCore
import NIOHTTP2

/// Keeps the controller's tunnel honest: a PING every `interval`, and a tunnel whose peer has
/// not acknowledged the previous PING within `timeout` is closed. A controller that vanished
/// without a FIN (a host that lost power, a NAT that forgot us) is then noticed within
/// interval + timeout, clients get `unavailable` at once instead of waiting on TCP, and the
/// controller's dialer reconnects on a fresh connection.
final class TunnelKeepalive: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    let interval: TimeAmount
    let timeout: TimeAmount
    private let logger: Logger
    private var outstanding: (data: HTTP2PingData, sentAt: NIODeadline)?
    private var task: RepeatedTask?

    init(interval: TimeAmount, timeout: TimeAmount, logger: Logger) {
        self.interval = interval
        self.timeout = timeout
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        // Checked more often than PINGs are sent, so a missing ACK is seen soon after `timeout`.
        let tick = TimeAmount.nanoseconds(max(min(interval.nanoseconds, timeout.nanoseconds) / 2, 1_000_000))
        task = context.eventLoop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { _ in
            let (handler, context) = loopBound.value
            handler.tick(context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) { stop() }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    private func stop() {
        task?.cancel()
        task = nil
    }

    private var lastSent = NIODeadline.now()

    private func tick(context: ChannelHandlerContext) {
        let now = NIODeadline.now()
        if let outstanding {
            if now - outstanding.sentAt >= timeout {
                logger.warning("controller tunnel silent: no PING ACK, closing it",
                               metadata: ["waited_ms": "\((now - outstanding.sentAt).nanoseconds / 1_000_000)"])
                self.outstanding = nil
                context.close(promise: nil)
            }
            return
        }
        guard now - lastSent >= interval else { return }
        let data = HTTP2PingData(withInteger: now.uptimeNanoseconds)
        outstanding = (data, now)
        lastSent = now
        context.writeAndFlush(wrapOutboundOut(HTTP2Frame(streamID: .rootStream, payload: .ping(data, ack: false))), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .ping(let ping, ack: true) where ping == outstanding?.data:
            outstanding = nil
        case .goAway(let lastStreamID, let code, let opaque):
            let reason = opaque.map { String(buffer: $0) } ?? ""
            logger.warning("controller sent GOAWAY on the tunnel",
                           metadata: ["code": "\(code)", "last_stream": "\(lastStreamID)", "reason": "\(reason)"])
        default:
            break
        }
        context.fireChannelRead(data)
    }
}
