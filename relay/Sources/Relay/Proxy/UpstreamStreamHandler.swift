import NIOCore
import NIOHPACK
import NIOHTTP2

/// The controller's side of one relayed call: forwards response headers, messages and
/// trailers to the client stream, reading only while the client can take writes. If the
/// controller connection dies mid-call the client gets `unavailable`, never a hang.
final class UpstreamStreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let client: any Channel
    private var meter: GRPCMessageMeter
    private var sentHeaders = false
    private var ended = false
    /// The client is gone and the cancel waits for the budget: read everything, forward nothing.
    private var discarding = false

    /// Sent by `Upstream.cancel` when it holds the reset back.
    struct Discard {}

    init(client: any Channel, maxMessageBytes: Int) {
        self.client = client
        self.meter = GRPCMessageMeter(limit: maxMessageBytes)
    }

    func channelActive(context: ChannelHandlerContext) {
        context.read()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !ended, !discarding else { return }
        switch unwrapInboundIn(data) {
        case .headers(let headers):
            sentHeaders = true
            if headers.endStream { ended = true }
            client.write(HTTP2Frame.FramePayload.headers(.init(headers: headers.headers, endStream: headers.endStream)), promise: nil)
        case .data(var data):
            if case .byteBuffer(let buffer) = data.data, let size = meter.feed(buffer.readableBytesView) {
                finishClient(status: .resourceExhausted, message: "response message of \(size) bytes exceeds the relay's \(meter.limit)-byte limit")
                context.close(promise: nil)
                return
            }
            if data.endStream { ended = true }
            data.paddingBytes = nil
            guard data.data.readableBytes > 0 || data.endStream else { return }
            client.write(HTTP2Frame.FramePayload.data(data), promise: nil)
        case .rstStream(let code):
            ended = true
            client.writeAndFlush(HTTP2Frame.FramePayload.rstStream(code), promise: nil)
        default:
            break
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is Discard {
            discarding = true
            context.read()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        client.flush()
        if client.isWritable || discarding { context.read() }
        context.fireChannelReadComplete()
    }

    /// The controller can take more: let the client side read again.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { client.read() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !ended && !discarding { finishClient(status: .unavailable, message: "the connection to the controller was lost") }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.fireErrorCaught(error)
    }

    private func finishClient(status: GRPCStatusCode, message: String) {
        ended = true
        let trailers = sentHeaders ? CallPolicy.trailers(status: status, message: message)
            : CallPolicy.trailersOnly(status: status, message: message)
        client.write(HTTP2Frame.FramePayload.headers(.init(headers: trailers, endStream: true)), promise: nil)
        client.writeAndFlush(HTTP2Frame.FramePayload.rstStream(.noError), promise: nil)
    }
}

@available(*, unavailable)
extension UpstreamStreamHandler: Sendable {}
