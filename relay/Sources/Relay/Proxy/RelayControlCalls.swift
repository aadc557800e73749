import Foundation
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
        let body = try await unaryCall(path: PharosIdentity.deniedDevicesPath, request: [], timeout: timeout)
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

    var dialsOnDemand: Bool { if case .socket = mode { true } else { false } }

    /// One unary call of the relay's own (`pharos.relay.v1.RelayControl`) on the upstream
    /// connection: the serialized request in, the serialized response out. Fails when no
    /// connection is up, on `timeout`, or when the controller answers a gRPC error
    /// (`UpstreamCallFailed`).
    func unaryCall(path: String, request: [UInt8], timeout: TimeAmount = .seconds(10)) async throws -> [UInt8] {
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        let promise = eventLoop.makePromise(of: [UInt8].self)
        let opened = multiplexer(on: eventLoop).flatMap { mux in
            mux.createStreamChannel { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.pipeline.syncOperations.addHandler(UnaryCallHandler(path: path, request: request, promise: promise))
                }
            }
        }
        opened.whenFailure { promise.fail($0) }
        let timer = eventLoop.scheduleTask(in: timeout) { promise.fail(UpstreamUnavailable(reason: "\(path) timed out")) }
        defer { timer.cancel() }
        let body = try await promise.futureResult.get()
        if let stream = try? await opened.get() { stream.close(promise: nil) }
        return body
    }
}

/// The controller answered a relay-control call with a gRPC error.
public struct UpstreamCallFailed: Error, CustomStringConvertible {
    public var path: String
    /// The gRPC status code (7 permission denied, 8 resource exhausted, 12 unimplemented...).
    public var status: Int
    public var message: String
    public var description: String { "the controller refused \(path): grpc-status \(status) \(message)" }
}

/// One unary call; collects the single response message.
final class UnaryCallHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let path: String
    private let request: [UInt8]
    private let promise: EventLoopPromise<[UInt8]>
    private var body: [UInt8] = []

    init(path: String, request: [UInt8], promise: EventLoopPromise<[UInt8]>) {
        self.path = path
        self.request = request
        self.promise = promise
    }

    func channelActive(context: ChannelHandlerContext) {
        let headers: HPACKHeaders = [":method": "POST", ":scheme": "http", ":path": path,
                                     ":authority": "coxswain", "content-type": "application/grpc", "te": "trailers"]
        context.write(wrapOutboundOut(.headers(.init(headers: headers))), promise: nil)
        // One length-prefixed, uncompressed gRPC message.
        var message = context.channel.allocator.buffer(capacity: 5 + request.count)
        message.writeInteger(UInt8(0))
        message.writeInteger(UInt32(request.count))
        message.writeBytes(request)
        context.writeAndFlush(wrapOutboundOut(.data(.init(data: .byteBuffer(message), endStream: true))), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let frame):
            if let status = frame.headers.first(name: "grpc-status") {
                guard status == "0" else {
                    let message = frame.headers.first(name: "grpc-message").map { $0.removingPercentEncoding ?? $0 } ?? ""
                    promise.fail(UpstreamCallFailed(path: path, status: Int(status) ?? -1, message: message))
                    return
                }
            }
            if frame.endStream { finish() }
        case .data(let frame):
            if case .byteBuffer(var buffer) = frame.data, let bytes = buffer.readBytes(length: buffer.readableBytes) { body += bytes }
            if frame.endStream { finish() }
        case .rstStream:
            promise.fail(UpstreamUnavailable(reason: "\(path) was reset"))
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(UpstreamUnavailable(reason: "\(path) closed before its answer"))
        context.fireChannelInactive()
    }

    /// The body is one length-prefixed gRPC message (or none for an empty list).
    private func finish() {
        guard body.count >= 5 else { return promise.succeed([]) }
        let length = Int(body[1]) << 24 | Int(body[2]) << 16 | Int(body[3]) << 8 | Int(body[4])
        guard body[0] == 0, body.count >= 5 + length else {
            return promise.fail(UpstreamUnavailable(reason: "malformed answer to \(path)"))
        }
        promise.succeed(Array(body[5..<(5 + length)]))
    }
}
