import GRPCCore
import PharosSpec

/// What relays ask the controller for themselves (not a client API; relays refuse client
/// calls under `PharosIdentity.relayControlPrefix`). `DeniedDevices` answers the
/// fingerprints of revoked, still-valid device certificates, one per line, so a remote
/// relay refuses a revoked device on its next call.
struct RelayControlService: RegistrableRPCService {
    static let deniedDevices = MethodDescriptor(fullyQualifiedService: "pharos.relay.v1.RelayControl", method: "DeniedDevices")

    let store: Store

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        let store = self.store
        router.registerHandler(forMethod: Self.deniedDevices, deserializer: RawBytes(), serializer: RawBytes()) { request, _ in
            for try await _ in request.messages {}
            let denied = try await store.read { tx in try tx.deniedDeviceFingerprints() }
            return StreamingServerResponse(single: ServerResponse(message: Array(denied.sorted().joined(separator: "\n").utf8)))
        }
    }
}

/// Messages as raw bytes, no protobuf.
struct RawBytes: MessageSerializer, MessageDeserializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
        serializedMessageBytes.withUnsafeBytes { Array($0) }
    }
}
