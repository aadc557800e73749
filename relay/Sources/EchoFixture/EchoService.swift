import GRPCCore

/// A real grpc-swift service standing in for the controller behind the relay (tests and
/// `relay-bench`; never linked into the relay). Messages are
/// raw bytes (no protobuf), so what arrives can be compared byte for byte.
public struct RawSerializer: MessageSerializer {
    public init() {}
    public func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
}

public struct RawDeserializer: MessageDeserializer {
    public init() {}
    public func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
        serializedMessageBytes.withUnsafeBytes { Array($0) }
    }
}

public enum Echo {
    public static let unary = MethodDescriptor(fullyQualifiedService: "test.Echo", method: "Unary")
    public static let clientStream = MethodDescriptor(fullyQualifiedService: "test.Echo", method: "ClientStream")
    public static let serverStream = MethodDescriptor(fullyQualifiedService: "test.Echo", method: "ServerStream")
    public static let bidi = MethodDescriptor(fullyQualifiedService: "test.Echo", method: "Bidi")
    public static let hang = MethodDescriptor(fullyQualifiedService: "test.Echo", method: "Hang")
    public static let claim = MethodDescriptor(fullyQualifiedService: "pharos.account.v1.AccountSync", method: "ClaimEnrollment")
}

public struct EchoService: RegistrableRPCService {
    public init() {}

    /// Every `x-pharos-*` header the service received, as `name=value` lines, in response metadata.
    static func seen(_ metadata: Metadata) -> Metadata {
        var lines: [String] = []
        for (key, value) in metadata where key.hasPrefix("x-pharos-") {
            if case .string(let text) = value { lines.append("\(key)=\(text)") }
        }
        return ["seen": .string(lines.sorted().joined(separator: ";"))]
    }

    public func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        for method in [Echo.unary, Echo.claim] {
            router.registerHandler(forMethod: method, deserializer: RawDeserializer(), serializer: RawSerializer()) { request, _ in
                var body: [UInt8] = []
                for try await message in request.messages { body += message }
                let reply = body
                return StreamingServerResponse(metadata: Self.seen(request.metadata)) { writer in
                    try await writer.write(reply)
                    return [:]
                }
            }
        }
        router.registerHandler(forMethod: Echo.clientStream, deserializer: RawDeserializer(), serializer: RawSerializer()) { request, _ in
            var body: [UInt8] = []
            for try await message in request.messages { body += message }
            let reply = body
            return StreamingServerResponse(metadata: Self.seen(request.metadata)) { writer in
                try await writer.write(reply)
                return ["count": "\(reply.count)"]
            }
        }
        // Request: 8 bytes: message count (4, big endian) and message size (4).
        router.registerHandler(forMethod: Echo.serverStream, deserializer: RawDeserializer(), serializer: RawSerializer()) { request, _ in
            var spec: [UInt8] = []
            for try await message in request.messages { spec += message }
            let count = spec.prefix(4).reduce(0) { $0 << 8 | Int($1) }
            let size = spec.dropFirst(4).prefix(4).reduce(0) { $0 << 8 | Int($1) }
            return StreamingServerResponse(metadata: [:]) { writer in
                for index in 0..<count { try await writer.write([UInt8](repeating: UInt8(index & 0xFF), count: size)) }
                return [:]
            }
        }
        router.registerHandler(forMethod: Echo.bidi, deserializer: RawDeserializer(), serializer: RawSerializer()) { request, _ in
            StreamingServerResponse(metadata: Self.seen(request.metadata)) { writer in
                for try await message in request.messages { try await writer.write(message) }
                return [:]
            }
        }
        router.registerHandler(forMethod: Echo.hang, deserializer: RawDeserializer(), serializer: RawSerializer()) { request, _ in
            StreamingServerResponse(metadata: [:]) { writer in
                try await writer.write([1])
                try await Task.sleep(for: .seconds(3600))
                return [:]
            }
        }
    }
}
