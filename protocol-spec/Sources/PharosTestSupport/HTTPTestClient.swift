import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A keep-alive HTTP/1.1 client for tests and benchmarks (real sockets, async, never blocks
/// a thread of the cooperative pool): one connection, requests answered in order.
public enum HTTPTestClient {
    public struct Response: Sendable {
        public var status: Int
        public var headers: [(name: String, value: String)]
        public var body: [UInt8]

        public var text: String { String(decoding: body, as: UTF8.self) }

        /// The first value of `name` (case-insensitive).
        public func header(_ name: String) -> String? { headers(name).first }

        public func headers(_ name: String) -> [String] {
            headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
        }

        /// `name=value` from a Set-Cookie header, if the response sets that cookie.
        public func cookie(_ name: String) -> String? {
            for line in headers("set-cookie") {
                let pair = line.split(separator: ";", maxSplits: 1).first ?? ""
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name { return String(parts[1]) }
            }
            return nil
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public struct Connection {
        var inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
        let outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
        let authority: String

        public mutating func send(_ method: String, _ path: String, headers: [(String, String)] = [],
                                  body: [UInt8]? = nil) async throws -> Response {
            var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path)
            head.headers.add(name: "Host", value: authority)
            for (name, value) in headers { head.headers.add(name: name, value: value) }
            if let body { head.headers.add(name: "Content-Length", value: String(body.count)) }
            try await outbound.write(.head(head))
            if let body { try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body)))) }
            try await outbound.write(.end(nil))
            var response = Response(status: 0, headers: [], body: [])
            while let part = try await inbound.next() {
                switch part {
                case .head(let head):
                    response.status = Int(head.status.code)
                    response.headers = head.headers.map { ($0.name, $0.value) }
                case .body(var buffer):
                    response.body += buffer.readBytes(length: buffer.readableBytes) ?? []
                case .end:
                    return response
                }
            }
            throw Failure(description: "the server closed the connection before answering \(method) \(path)")
        }
    }

    /// Opens one connection to `host:port` for `body`, closed afterwards.
    public static func withConnection<T: Sendable>(host: String = "127.0.0.1", port: Int,
                                                   _ body: (inout Connection) async throws -> T) async throws -> T {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(ChannelOptions.socket(SocketOptionLevel(IPPROTO_TCP), TCP_NODELAY), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var connection = Connection(inbound: inbound.makeAsyncIterator(), outbound: outbound, authority: "\(host):\(port)")
            return try await body(&connection)
        }
    }

    /// One request on a connection of its own.
    public static func send(_ method: String, _ path: String, port: Int, host: String = "127.0.0.1",
                            headers: [(String, String)] = [], body: [UInt8]? = nil) async throws -> Response {
        try await withConnection(host: host, port: port) { try await $0.send(method, path, headers: headers, body: body) }
    }
}
