import Logging
import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import PharosProto
import PharosSpec
import PharosTLS

extension Upstream {
    /// Asks the controller, on this upstream connection, for the fingerprints of revoked
    /// device certificates (`PharosIdentity.deniedDevicesPath`). Fails when no connection is
    /// up or the controller does not answer OK (an upstream Go controller has no such method).
    public func fetchDeniedDevices(timeout: TimeAmount = .seconds(10)) async throws -> Set<String> {
        try await fetchDenyLists(timeout: timeout).devices
    }

    /// Both lists of one answer: device fingerprints and revoked controller serials.
    public func fetchDenyLists(timeout: TimeAmount = .seconds(10)) async throws -> (devices: Set<String>, controllers: Set<String>) {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let promise = eventLoop.makePromise(of: [UInt8].self)
        let opened = multiplexer(on: eventLoop).flatMap { mux in
            mux.createStreamChannel { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.pipeline.syncOperations.addHandler(DenyListFetchHandler(promise: promise))
                }
            }
        }
        opened.whenFailure { promise.fail($0) }
        let timer = eventLoop.scheduleTask(in: timeout) { promise.fail(UpstreamUnavailable(reason: "deny list request timed out")) }
        defer { timer.cancel() }
        let body = try await promise.futureResult.get()
        if let stream = try? await opened.get() { stream.close(promise: nil) }
        let response: Pharos_Relay_V1_DeniedDevicesResponse
        do { response = try Pharos_Relay_V1_DeniedDevicesResponse(serializedBytes: body) } catch {
            throw UpstreamUnavailable(reason: "the deny list answer is not a DeniedDevicesResponse: \(error)")
        }
        return (Set(response.fingerprints.filter { $0.hasPrefix(Fingerprint.prefix) }),
                Set(response.controllerSerials.filter { !$0.isEmpty && $0.allSatisfy(\.isHexDigit) }))
    }

    /// Keeps `denyList` (and `controllers`, the revoked controller leaves the tunnel port
    /// refuses) in step with the controller every `interval` while it can be reached (a socket
    /// upstream is dialed on demand; a tunnel must already be up). The controller list only
    /// grows from an answer to the next: a tunnel opened with a revoked leaf could otherwise
    /// answer with an empty list and let itself back in.
    public func syncDenyList(_ denyList: DeviceDenyList, controllers: DeniedCertificates? = nil,
                             every interval: Duration = .seconds(5)) async {
        var failedBefore = false
        while !Task.isCancelled {
            if dialsOnDemand || isConnected {
                do {
                    let (denied, revokedControllers) = try await fetchDenyLists()
                    if denied.count != denyList.count { logger.info("deny list updated", metadata: ["revoked_devices": "\(denied.count)"]) }
                    denyList.replace(with: denied)
                    if let controllers, !revokedControllers.isSubset(of: controllers.all) {
                        controllers.replace(with: controllers.all.union(revokedControllers))
                        logger.info("controller certificates denied", metadata: ["count": "\(controllers.all.count)"])
                    }
                    failedBefore = false
                } catch {
                    if !failedBefore { logger.warning("deny list not refreshed", metadata: ["error": "\(error)"]) }
                    failedBefore = true
                }
            }
            try? await Task.sleep(for: interval)
        }
    }

    private var dialsOnDemand: Bool { if case .socket = mode { true } else { false } }
}

/// One unary call with an empty request; collects the single response message.
final class DenyListFetchHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let promise: EventLoopPromise<[UInt8]>
    private var body: [UInt8] = []

    init(promise: EventLoopPromise<[UInt8]>) { self.promise = promise }

    func channelActive(context: ChannelHandlerContext) {
        let headers: HPACKHeaders = [":method": "POST", ":scheme": "http", ":path": PharosIdentity.deniedDevicesPath,
                                     ":authority": "coxswain", "content-type": "application/grpc", "te": "trailers"]
        context.write(wrapOutboundOut(.headers(.init(headers: headers))), promise: nil)
        var empty = context.channel.allocator.buffer(capacity: 5)
        empty.writeBytes([0, 0, 0, 0, 0])
        context.writeAndFlush(wrapOutboundOut(.data(.init(data: .byteBuffer(empty), endStream: true))), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let frame):
            if let status = frame.headers.first(name: "grpc-status") {
                guard status == "0" else {
                    promise.fail(UpstreamUnavailable(reason: "controller answered grpc-status \(status) \(frame.headers.first(name: "grpc-message") ?? "")"))
                    return
                }
            }
            if frame.endStream { finish() }
        case .data(let frame):
            if case .byteBuffer(var buffer) = frame.data, let bytes = buffer.readBytes(length: buffer.readableBytes) { body += bytes }
            if frame.endStream { finish() }
        case .rstStream:
            promise.fail(UpstreamUnavailable(reason: "deny list request reset"))
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(UpstreamUnavailable(reason: "deny list stream closed early"))
        context.fireChannelInactive()
    }

    /// The body is one length-prefixed gRPC message (or none for an empty list).
    private func finish() {
        guard body.count >= 5 else { return promise.succeed([]) }
        let length = Int(body[1]) << 24 | Int(body[2]) << 16 | Int(body[3]) << 8 | Int(body[4])
        guard body[0] == 0, body.count >= 5 + length else {
            return promise.fail(UpstreamUnavailable(reason: "malformed deny list response"))
        }
        promise.succeed(Array(body[5..<(5 + length)]))
    }
}
