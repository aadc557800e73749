import Foundation
import EchoFixture
import GRPCCore
import GRPCNIOTransportHTTP2
import NIOHPACK
import PharosSpec
import PharosTestSupport
import Testing
@testable import Relay

@Suite struct CallPolicyTests {
    @Test func certlessCallsAreLimitedToClaimEnrollment() {
        let claim: HPACKHeaders = [":method": "POST", ":path": "/pharos.account.v1.AccountSync/ClaimEnrollment"]
        let other: HPACKHeaders = [":method": "POST", ":path": "/pharos.account.v1.AccountSync/GetProfile"]
        guard case .forward = CallPolicy.decide(claim, deviceFingerprint: nil) else { Issue.record("claim refused"); return }
        guard case .reject(let status, let message) = CallPolicy.decide(other, deviceFingerprint: nil) else {
            Issue.record("certless GetProfile passed"); return
        }
        #expect(status == .unauthenticated && message.contains("GetProfile"))
        guard case .forward = CallPolicy.decide(other, deviceFingerprint: "sha256:ab") else { Issue.record("device refused"); return }
        guard case .reject(.unimplemented, _) = CallPolicy.decide([":method": "POST"], deviceFingerprint: "sha256:ab") else {
            Issue.record("no path passed"); return
        }
        let control: HPACKHeaders = [":method": "POST", ":path": PharosIdentity.deniedDevicesPath]
        guard case .reject(.permissionDenied, _) = CallPolicy.decide(control, deviceFingerprint: "sha256:ab") else {
            Issue.record("a client reached the relay-control service"); return
        }
        guard case .reject(.unauthenticated, let revoked) = CallPolicy.decide(other, deviceFingerprint: "sha256:ab", denied: true),
              revoked.contains("revoked") else { Issue.record("a denied device passed"); return }
    }

    @Test func reservedHeadersAreReplacedByExactlyOneFingerprint() {
        let request: HPACKHeaders = [":method": "POST", ":path": "/x/y", "x-pharos-device-fp": "sha256:spoofed",
                                     "X-Pharos-Other": "1", "pharos-session": "keep", "x-pharos-device-fp": "again"]
        let out = CallPolicy.sanitized(request, deviceFingerprint: "sha256:real")
        #expect(out[canonicalForm: "x-pharos-device-fp"] == ["sha256:real"])
        #expect(out[canonicalForm: "x-pharos-other"].isEmpty)
        #expect(out[canonicalForm: "pharos-session"] == ["keep"])
        #expect(out.first(name: ":path") == "/x/y")
        #expect(CallPolicy.sanitized(request, deviceFingerprint: nil)[canonicalForm: "x-pharos-device-fp"].isEmpty)
    }

    @Test func grpcMessageIsPercentEncoded() {
        #expect(CallPolicy.percentEncoded("100% sure\nnext") == "100%25 sure%0Anext")
    }

    @Test func meterFindsOversizedMessagesAcrossFrames() {
        var meter = GRPCMessageMeter(limit: 10)
        #expect(meter.feed([0, 0, 0]) == nil)
        #expect(meter.feed([0, 4, 1, 2]) == nil, "header split across frames; 4-byte body starts")
        #expect(meter.feed([3, 4, 0, 0, 0]) == nil, "body done, next header begins")
        #expect(meter.feed([0, 11]) == 11)
        var exact = GRPCMessageMeter(limit: 10)
        #expect(exact.feed([0, 0, 0, 0, 10] + [UInt8](repeating: 7, count: 10) + [1, 0, 0, 0, 0]) == nil)
    }
}

/// The real relay between a real grpc-swift client and a real grpc-swift service.
@Suite(.serialized) struct RelayForwardingTests {
    static func withRelay(_ transport: RelayHarness.Transport, maxMessageBytes: Int = 16 << 20, limits: HTTP2Limits = HTTP2Limits(),
                          _ body: (RelayHarness) async throws -> Void) async throws {
        let relay = try await RelayHarness(transport: transport, maxMessageBytes: maxMessageBytes, limits: limits)
        do { try await body(relay) } catch {
            await relay.stop()
            throw error
        }
        await relay.stop()
    }

    @Test(arguments: RelayHarness.Transport.allCases)
    func allFourCallKindsPassByteIdentical(transport: RelayHarness.Transport) async throws {
        try await Self.withRelay(transport) { relay in
            try await relay.withClient(leaf: relay.deviceLeaf) { client in
                let payload = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
                #expect(try await client.echo(payload).message == payload)

                let parts = (0..<20).map { i in [UInt8](repeating: UInt8(i), count: 1000 + i) }
                let joined = try await client.clientStreaming(
                    request: StreamingClientRequest(of: [UInt8].self) { writer in for part in parts { try await writer.write(part) } },
                    descriptor: Echo.clientStream, serializer: RawSerializer(), deserializer: RawDeserializer(), options: .defaults
                ) { try $0.message }
                #expect(joined == parts.flatMap { $0 })

                // 64 MiB in 1 MiB messages: more than every window on the path, so it only
                // completes if flow control and back-pressure work end to end.
                let spec: [UInt8] = [0, 0, 0, 64, 0, 0x10, 0, 0]
                let received = try await client.serverStreaming(
                    request: ClientRequest(message: spec), descriptor: Echo.serverStream,
                    serializer: RawSerializer(), deserializer: RawDeserializer(), options: .defaults
                ) { response in
                    var count = 0, intact = true
                    for try await message in response.messages {
                        intact = intact && message.count == 1 << 20 && message.allSatisfy { $0 == UInt8(count & 0xFF) }
                        count += 1
                        if count % 16 == 0 { try await Task.sleep(for: .milliseconds(20)) }  // a slow reader
                    }
                    return (count, intact)
                }
                #expect(received.0 == 64 && received.1)

                let echoed = try await client.bidirectionalStreaming(
                    request: StreamingClientRequest(of: [UInt8].self) { writer in for part in parts { try await writer.write(part) } },
                    descriptor: Echo.bidi, serializer: RawSerializer(), deserializer: RawDeserializer(), options: .defaults
                ) { response in
                    var all: [[UInt8]] = []
                    for try await message in response.messages { all.append(message) }
                    return all
                }
                #expect(echoed == parts)
            }
        }
    }

    @Test(arguments: RelayHarness.Transport.allCases)
    func spoofedHeadersNeverReachTheServiceAndTheFingerprintIsTheCertificates(transport: RelayHarness.Transport) async throws {
        try await Self.withRelay(transport) { relay in
            let expected = Fingerprint.certificate(der: try relay.deviceLeaf.certificate.derBytes())
            try await relay.withClient(leaf: relay.deviceLeaf) { client in
                let result = try await client.echo([1, 2, 3], metadata: ["x-pharos-device-fp": "sha256:spoofed", "x-pharos-admin": "yes"])
                #expect(result.seen == "x-pharos-device-fp=\(expected)")
            }
            try await relay.withClient(leaf: nil) { client in
                let result = try await client.echo([9], method: Echo.claim, metadata: ["x-pharos-device-fp": "sha256:spoofed"])
                #expect(result.message == [9] && result.seen == "", "a certless caller carries no fingerprint at all")
            }
        }
    }

    @Test func certlessCallersReachOnlyClaimEnrollment() async throws {
        try await Self.withRelay(.embedded) { relay in
            try await relay.withClient(leaf: nil) { client async throws in
                #expect(try await client.echo([7], method: Echo.claim).message == [7])
                await #expect {
                    _ = try await client.echo([7])
                } throws: { error in
                    guard let rpc = error as? RPCError else { return false }
                    return rpc.code == .unauthenticated && rpc.message.contains("device certificate")
                }
            }
        }
    }

    @Test func foreignClientCertificatesAreRefusedAtTheHandshake() async throws {
        try await Self.withRelay(.embedded) { relay in
            let foreign = try TestPKI()
            let impostor = try foreign.leaf(commonName: "dev_x", organization: PharosIdentity.Organization.device,
                                            usage: [.clientAuth], issuer: .device)
            try await relay.withClient(leaf: impostor) { client in
                await #expect {
                    _ = try await client.echo([1], method: Echo.claim, timeout: .seconds(3))
                } throws: { ($0 as? RPCError)?.code == .unavailable || ($0 as? RPCError)?.code == .deadlineExceeded }
            }
            // A Fleet-issued (not Device-CA) client certificate is refused the same way.
            try await relay.withClient(leaf: relay.controllerLeaf) { client in
                await #expect(throws: RPCError.self) { _ = try await client.echo([1], method: Echo.claim, timeout: .seconds(3)) }
            }
        }
    }

    @Test func onlyTheControllerMayOpenTheTunnel() async throws {
        try await Self.withRelay(.remote) { relay in
            await relay.stopDialer()
            for _ in 0..<100 where relay.upstream.isConnected { try await Task.sleep(for: .milliseconds(20)) }
            // A relay's own leaf has ClientAuth too, but O=PharosVPN Relay: refused.
            try await relay.startDialer(with: relay.relayLeaf, waitForTunnel: false)
            try await Task.sleep(for: .milliseconds(700))
            #expect(!relay.upstream.isConnected)
            try await relay.withClient(leaf: relay.deviceLeaf) { client in
                await #expect {
                    _ = try await client.echo([1], timeout: .seconds(5))
                } throws: { error in
                    guard let rpc = error as? RPCError else { return false }
                    return rpc.code == .unavailable && rpc.message.contains("controller")
                }
            }
        }
    }

    @Test func theDialerRefusesAServerThatIsNotARelay() async throws {
        let pki = try TestPKI()
        let dir = "/tmp/relay-test-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let service = GRPCServer(transport: HTTP2ServerTransport.Posix(address: .unixDomainSocket(path: "\(dir)/c.sock"),
                                                                       transportSecurity: .plaintext), services: [EchoService()])
        let serving = Task { try await service.serve() }
        defer { serving.cancel() }
        let controller = try pki.leaf(commonName: "coxswain-controller", usage: [.clientAuth])
        // Fleet-issued, ServerAuth and valid for localhost like a node's leaf, but O=PharosVPN.
        let notARelay = try pki.leaf(commonName: "node_x", usage: [.serverAuth, .clientAuth])
        let realRelay = try pki.leaf(commonName: PharosIdentity.Organization.relay, organization: PharosIdentity.Organization.relay,
                                     usage: [.serverAuth, .clientAuth])
        for (leaf, serverName, accepted) in [(notARelay, "localhost", false), (realRelay, "relay.example.net", false),
                                             (realRelay, "localhost", true)] {
            let upstream = Upstream(mode: .tunnel, logger: RelayHarness.logger)
            let listener = try await TunnelListener.start(host: "127.0.0.1", port: 0, identity: try leaf.identity(), roots: try pki.roots(),
                                                          fleetCA: pki.fleet, upstream: upstream, logger: RelayHarness.logger)
            let dialer = TunnelDialer(host: "127.0.0.1", port: listener.port, serverName: serverName, identity: try controller.identity(),
                                      roots: try pki.roots(), socketPath: "\(dir)/c.sock", logger: RelayHarness.logger)
            let task = Task { await dialer.run() }
            for _ in 0..<40 where !upstream.isConnected { try await Task.sleep(for: .milliseconds(25)) }
            #expect(upstream.isConnected == accepted, "\(leaf.certificate.subject) as \(serverName)")
            task.cancel()
            await task.value
            try await listener.close()
        }
    }

    @Test func aRevokedDeviceIsRefusedOnItsNextCallOnAnOpenConnection() async throws {
        try await Self.withRelay(.embedded) { relay in
            let fingerprint = Fingerprint.certificate(der: try relay.deviceLeaf.certificate.derBytes())
            try await relay.withClient(leaf: relay.deviceLeaf) { client async throws in
                #expect(try await client.echo([1]).message == [1])
                relay.denyList.replace(with: [fingerprint])
                await #expect {
                    _ = try await client.echo([2])
                } throws: { error in
                    guard let rpc = error as? RPCError else { return false }
                    return rpc.code == .unauthenticated && rpc.message.contains("revoked")
                }
                relay.denyList.replace(with: [])
                #expect(try await client.echo([3]).message == [3])
            }
        }
    }

    @Test func tunnelLossFailsInFlightCallsAsUnavailableAndTheDialerReconnects() async throws {
        try await Self.withRelay(.remote) { relay in
            try await relay.withClient(leaf: relay.deviceLeaf) { client in
                #expect(try await client.echo([1]).message == [1])
                let inFlight = Task {
                    try await client.serverStreaming(
                        request: ClientRequest(message: [UInt8]()), descriptor: Echo.hang,
                        serializer: RawSerializer(), deserializer: RawDeserializer(), options: .defaults
                    ) { response in
                        for try await _ in response.messages {}
                    }
                }
                try await Task.sleep(for: .milliseconds(300))
                await relay.stopService()  // the controller's socket goes away: the tunnel drops
                await #expect {
                    try await inFlight.value
                } throws: { ($0 as? RPCError)?.code == .unavailable }
                try await relay.startService()
                var answered = false
                for _ in 0..<60 where !answered {
                    answered = (try? await client.echo([2], timeout: .seconds(1)).message) == [2]
                    if !answered { try await Task.sleep(for: .milliseconds(250)) }
                }
                #expect(answered, "the dialer did not bring the tunnel back")
            }
        }
    }

    @Test func callsBeyondTheUpstreamLimitAreRefusedNotQueued() async throws {
        var limits = HTTP2Limits()
        limits.maxUpstreamStreams = 2
        try await Self.withRelay(.embedded, limits: limits) { relay in
        try await relay.withClient(leaf: relay.deviceLeaf) { client async throws in
            let hanging = (0..<2).map { _ in
                Task {
                    try await client.serverStreaming(request: ClientRequest(message: [UInt8]()), descriptor: Echo.hang,
                                                     serializer: RawSerializer(), deserializer: RawDeserializer(), options: .defaults) { response in
                        for try await _ in response.messages {}
                    }
                }
            }
            for _ in 0..<100 where relay.upstream.streamsInFlight < 2 { try await Task.sleep(for: .milliseconds(20)) }
            #expect(relay.upstream.streamsInFlight == 2)
            await #expect {
                _ = try await client.echo([1], timeout: .seconds(5))
            } throws: { error in
                guard let rpc = error as? RPCError else { return false }
                return rpc.code == .resourceExhausted && rpc.message.contains("limit")
            }
            for task in hanging { task.cancel() }
            for task in hanging { _ = await task.result }
            for _ in 0..<100 where relay.upstream.streamsInFlight > 0 { try await Task.sleep(for: .milliseconds(20)) }
            #expect(relay.upstream.streamsInFlight == 0, "slots are given back when calls end")
            #expect(try await client.echo([2]).message == [2])
        }
        }
    }

    @Test func oversizedMessagesAreRefusedAndTheRelayStaysUp() async throws {
        try await Self.withRelay(.embedded, maxMessageBytes: 1 << 20) { relay in
            try await relay.withClient(leaf: relay.deviceLeaf) { client async throws in
                await #expect {
                    _ = try await client.echo([UInt8](repeating: 1, count: (1 << 20) + 1))
                } throws: { ($0 as? RPCError)?.code == .resourceExhausted }
                #expect(try await client.echo([5]).message == [5])
            }
        }
    }
}

extension RelayForwardingTests {
    /// A response message must reach the client as soon as the service sends it, not when
    /// the call ends (a stream that stays open is the normal case for watches).
    @Test(arguments: RelayHarness.Transport.allCases)
    func firstMessageOfAnOpenStreamArrivesAtOnce(transport: RelayHarness.Transport) async throws {
        try await Self.withRelay(transport) { relay in
            try await relay.withClient(leaf: relay.deviceLeaf) { client in
                var options = CallOptions.defaults
                options.timeout = .seconds(3)
                let first = try await client.serverStreaming(
                    request: ClientRequest(message: [UInt8]()), descriptor: Echo.hang,
                    serializer: RawSerializer(), deserializer: RawDeserializer(), options: options
                ) { response in
                    for try await message in response.messages { return message }
                    return []
                }
                #expect(first == [1])
            }
        }
    }
}
