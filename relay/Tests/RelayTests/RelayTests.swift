import Foundation
import EchoFixture
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import NIOCore
import NIOHPACK
import PharosConfig
import PharosSpec
import PharosTestSupport
import PharosTLS
import Synchronization
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
extension LoadSensitiveTests {
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

    /// A renewed leaf goes in without closing the port: the next handshake (openssl's)
    /// presents it, and a client connected before the swap keeps calling on its connection.
    @Test func aRenewedLeafIsPresentedFromTheNextHandshakeWhileOpenConnectionsStay() async throws {
        try await Self.withRelay(.embedded) { relay in
            /// Lowercase hex SHA-256 of the leaf the relay presents to a new handshake.
            func presentedLeaf() throws -> String {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/bin/sh")
                process.arguments = ["-c", "openssl s_client -connect 127.0.0.1:\(relay.clientPort) </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"]
                let pipe = Pipe()
                process.standardOutput = pipe
                try process.run()
                let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                let hex = output.split(separator: "=").last.map(String.init) ?? ""
                return hex.replacingOccurrences(of: ":", with: "").trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
            }
            func fingerprint(_ leaf: TestPKI.Leaf) throws -> String { Fingerprint.caRoot(der: try leaf.certificate.derBytes()) }
            #expect(try presentedLeaf() == fingerprint(relay.relayLeaf))
            let renewed = try relay.pki.leaf(commonName: PharosIdentity.Organization.relay, organization: PharosIdentity.Organization.relay,
                                             usage: [.serverAuth, .clientAuth])
            try await relay.withClient(leaf: relay.deviceLeaf) { client in
                #expect(try await client.echo([1]).message == [1])
                try relay.clientListener.replaceIdentity(try renewed.identity())
                #expect(try await client.echo([2]).message == [2], "the connection opened before the swap was dropped")
            }
            #expect(try presentedLeaf() == fingerprint(renewed), "the next handshake still presents the old leaf")
            let after = try await relay.withClient(leaf: relay.deviceLeaf) { client in try await client.echo([3]).message }
            #expect(after == [3], "a new connection after the swap failed")
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

    /// A fresh directory for the controller's socket of a tunnel test.
    static func echoSocketDirectory() throws -> String {
        let dir = "/tmp/relay-test-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// The stand-in for the controller's gRPC socket behind a tunnel.
    static func serveEcho(socket path: String) -> Task<Void, any Error> {
        let service = GRPCServer(transport: HTTP2ServerTransport.Posix(address: .unixDomainSocket(path: path), transportSecurity: .plaintext),
                                 services: [EchoService()])
        return Task { try await service.serve() }
    }

    @Test func theTunnelOpensOnlyBetweenAnUnrevokedRelayAndAnUnrevokedController() async throws {
        let pki = try TestPKI()
        let dir = try Self.echoSocketDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let serving = Self.serveEcho(socket: "\(dir)/c.sock")
        defer { serving.cancel() }
        let controller = try pki.leaf(commonName: "coxswain-controller", usage: [.clientAuth])
        // Fleet-issued, ServerAuth and valid for localhost like a node's leaf, but O=PharosVPN.
        let notARelay = try pki.leaf(commonName: "node_x", usage: [.serverAuth, .clientAuth])
        let realRelay = try pki.leaf(commonName: PharosIdentity.Organization.relay, organization: PharosIdentity.Organization.relay,
                                     usage: [.serverAuth, .clientAuth])
        // Then: the right relay leaf, revoked (a removed relay's, at a re-enrolled host); and
        // the relay refusing a revoked controller leaf at its tunnel port.
        let revokedController = try pki.leaf(commonName: "coxswain-controller", usage: [.clientAuth])
        let cases: [(TestPKI.Leaf, String, Bool, Set<String>, TestPKI.Leaf, Set<String>)] = [
            (notARelay, "localhost", false, [], controller, []),
            (realRelay, "relay.example.net", false, [], controller, []),
            (realRelay, "localhost", true, [], controller, []),
            (realRelay, "localhost", false, [realRelay.certificate.serialHex], controller, []),
            (realRelay, "localhost", false, [], revokedController, [revokedController.certificate.serialHex]),
            (realRelay, "localhost", true, [], controller, [revokedController.certificate.serialHex]),
        ]
        for (leaf, serverName, accepted, denied, dialing, deniedControllers) in cases {
            let upstream = Upstream(mode: .tunnel, logger: RelayHarness.logger)
            let listener = try await TunnelListener.start(host: "127.0.0.1", port: 0, identity: try leaf.identity(), roots: try pki.roots(),
                                                          fleetCA: pki.fleet, upstream: upstream,
                                                          denied: DeniedCertificates(deniedControllers), logger: RelayHarness.logger)
            let dialer = TunnelDialer(host: "127.0.0.1", port: listener.port, serverName: serverName, identity: try dialing.identity(),
                                      roots: try pki.roots(), socketPath: "\(dir)/c.sock", logger: RelayHarness.logger,
                                      denied: DeniedCertificates(denied))
            let task = Task { await dialer.run() }
            for _ in 0..<40 where !upstream.isConnected { try await Task.sleep(for: .milliseconds(25)) }
            #expect(upstream.isConnected == accepted,
                    "\(leaf.certificate.subject) as \(serverName), denied \(denied), controllers denied \(deniedControllers)")
            task.cancel()
            await task.value
            try await listener.close()
        }
    }

    /// A controller leaf revoked while it holds the tunnel loses it when the list arrives (a
    /// leaked leaf's tunnel would otherwise carry every client's calls until it dropped), and
    /// its redials are refused.
    @Test func aControllerLeafRevokedWhileItHoldsTheTunnelLosesIt() async throws {
        let pki = try TestPKI()
        let dir = try Self.echoSocketDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let serving = Self.serveEcho(socket: "\(dir)/c.sock")
        defer { serving.cancel() }
        let leaked = try pki.leaf(commonName: "coxswain-controller", usage: [.clientAuth])
        let relayLeaf = try pki.leaf(commonName: PharosIdentity.Organization.relay, organization: PharosIdentity.Organization.relay,
                                     usage: [.serverAuth, .clientAuth])
        let upstream = Upstream(mode: .tunnel, logger: RelayHarness.logger)
        let deniedControllers = DeniedCertificates()
        let listener = try await TunnelListener.start(host: "127.0.0.1", port: 0, identity: try relayLeaf.identity(), roots: try pki.roots(),
                                                      fleetCA: pki.fleet, upstream: upstream, denied: deniedControllers, logger: RelayHarness.logger)
        let dialer = TunnelDialer(host: "127.0.0.1", port: listener.port, serverName: "localhost", identity: try leaked.identity(),
                                  roots: try pki.roots(), socketPath: "\(dir)/c.sock", logger: RelayHarness.logger)
        let task = Task { await dialer.run() }
        for _ in 0..<80 where !upstream.isConnected { try await Task.sleep(for: .milliseconds(25)) }
        #expect(upstream.isConnected)
        // What `syncDenyList` does with the controller's answer.
        deniedControllers.replace(with: deniedControllers.all.union([leaked.certificate.serialHex]))
        for _ in 0..<80 where upstream.isConnected { try await Task.sleep(for: .milliseconds(25)) }
        #expect(!upstream.isConnected, "the revoked leaf kept the tunnel")
        try await Task.sleep(for: .milliseconds(1500))  // the dialer's first redial comes after 1 s
        #expect(!upstream.isConnected, "the revoked leaf dialed the tunnel again")
        task.cancel()
        await task.value
        try await listener.close()
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

    /// A finished call ends its controller stream with END_STREAM both ways, never with a
    /// RST_STREAM: the controller's HTTP/2 server takes at most 200 resets per 30 s on one
    /// connection and answers more with GOAWAY ENHANCE_YOUR_CALM, which would drop the tunnel
    /// every client shares (the relay used to reset each stream whose client side closed first).
    @Test func finishedCallsKeepTheTunnel() async throws {
        try await Self.withRelay(.remote) { relay in
            let before = relay.upstream.attachedConnections
            try await relay.withClient(leaf: relay.deviceLeaf) { client in
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for worker in 0..<8 {
                        group.addTask {
                            var answered = 0
                            for call in 0..<150 where try await client.echo([UInt8(worker), UInt8(call)]).message == [UInt8(worker), UInt8(call)] {
                                answered += 1
                            }
                            return answered
                        }
                    }
                    let answered = try await group.reduce(0, +)
                    #expect(answered == 1200)
                }
            }
            #expect(relay.upstream.cancelledCalls == 0)
            #expect(relay.upstream.attachedConnections == before, "the tunnel was dropped and dialed again")
            #expect(relay.upstream.isConnected)
        }
    }

    /// Opens `count` calls that answer once and stay open, waits until each has had its
    /// answer (or, `settled: false`, only until the relay has taken them all), then cancels them
    /// all at once from the client.
    static func openAndCancel(_ count: Int, through relay: RelayHarness, settled: Bool = true) async throws {
        try await relay.withClient(leaf: relay.deviceLeaf) { client in
            final class Count: Sendable { let value = Mutex(0) }
            let answered = Count()
            let calls = (0..<count).map { _ in
                Task {
                    try await client.serverStreaming(request: ClientRequest(message: [UInt8]()), descriptor: Echo.hang,
                                                     serializer: RawSerializer(), deserializer: RawDeserializer(),
                                                     options: .defaults) { response in
                        for try await _ in response.messages { answered.value.withLock { $0 += 1 } }
                    }
                }
            }
            for _ in 0..<500 where relay.upstream.streamsInFlight < count || (settled && answered.value.withLock({ $0 }) < count) {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(relay.upstream.streamsInFlight == count)
            for call in calls { call.cancel() }
            for call in calls { _ = await call.result }
        }
    }

    /// More departing clients than the controller's server takes resets for (200 per 30 s on
    /// one connection, then GOAWAY ENHANCE_YOUR_CALM): the relay holds the excess back and the
    /// tunnel every other client shares stays up and answers.
    @Test func aBurstOfCancelsKeepsTheTunnel() async throws {
        var limits = HTTP2Limits()
        limits.maxConcurrentStreamsPerClient = 1000
        try await Self.withRelay(.remote, limits: limits) { relay in
            let before = relay.upstream.attachedConnections
            try await Self.openAndCancel(300, through: relay)
            for _ in 0..<200 where relay.upstream.cancelsWaiting < 150 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(relay.upstream.cancelledCalls == 150)
            #expect(relay.upstream.cancelsWaiting == 150)
            try await Task.sleep(for: .milliseconds(500))
            let answer = try await relay.withClient(leaf: relay.deviceLeaf) { client in try await client.echo([3]).message }
            #expect(answer == [3])
            #expect(relay.upstream.attachedConnections == before, "the controller dropped the tunnel")
        }
    }

    /// Calls cancelled while the relay is still setting them up: the controller's answers to
    /// them cross the resets. NIO remembered only the last 32 resets and took a late frame for
    /// an older one as a connection error — it sent GOAWAY, stopped decoding, and a later call
    /// on the same connection was answered by the service but never reached its caller.
    @Test(arguments: RelayHarness.Transport.allCases)
    func cancelsRacingCallSetupLeaveTheConnectionAnswering(transport: RelayHarness.Transport) async throws {
        var limits = HTTP2Limits()
        limits.maxConcurrentStreamsPerClient = 1000
        limits.maxCancelsPerWindow = 1000
        try await Self.withRelay(transport, limits: limits) { relay in
            let before = relay.upstream.attachedConnections
            try await Self.openAndCancel(150, through: relay, settled: false)  // under the server's 200 resets
            try await Task.sleep(for: .milliseconds(300))
            let answer = try await relay.withClient(leaf: relay.deviceLeaf) { client in
                try await client.echo([3], timeout: .seconds(3)).message
            }
            #expect(answer == [3])
            // Embedded, the socket connection is dialed by the first call; remote, it is the tunnel.
            #expect(relay.upstream.attachedConnections == (transport == .remote ? before : 1),
                    "the controller connection was given up")
        }
    }

    /// Held-back cancels go out as the window moves; every stream is closed in the end.
    @Test func heldBackCancelsAreSentLater() async throws {
        var limits = HTTP2Limits()
        limits.maxCancelsPerWindow = 5
        limits.cancelWindow = .milliseconds(500)
        try await Self.withRelay(.remote, limits: limits) { relay in
            try await Self.openAndCancel(20, through: relay)
            #expect(relay.upstream.cancelsWaiting > 0)
            for _ in 0..<500 where relay.upstream.streamsInFlight > 0 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(relay.upstream.cancelledCalls == 20)
            #expect(relay.upstream.cancelsWaiting == 0)
            #expect(relay.upstream.streamsInFlight == 0, "every cancelled call's stream is closed at the controller")
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
}

extension LoadSensitiveTests.RelayForwardingTests {
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

/// Suites that must not share the cores with each other: the half-open flood and the cancel
/// bursts saturate both, and the keepalive and handshake-deadline tests run on sub-second
/// timers (run side by side on a 2-core CI machine, they flaked).
@Suite(.serialized) struct LoadSensitiveTests {}

@Suite struct RelayRunnerTests {
    /// A port another program holds: the error names the setting and the address, not a
    /// bare errno from bind(2).
    /// A relay's config directory with its leaf, the root and the Device CA.
    static func relayDirectory() throws -> String {
        let dir = "/tmp/relay-run-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let pki = try TestPKI()
        try pki.leaf(commonName: "PharosVPN Relay", organization: "PharosVPN Relay", usage: [.serverAuth, .clientAuth])
            .write(to: dir, name: "relay")
        try pki.rootPEM.write(toFile: "\(dir)/ca.crt", atomically: true, encoding: .utf8)
        try pki.device.pemString().write(toFile: "\(dir)/device-ca.crt", atomically: true, encoding: .utf8)
        return dir
    }

    /// The services of `relay run` stop with the run: once it returns, neither port accepts.
    @Test func stoppingTheRunClosesBothPorts() async throws {
        let dir = try Self.relayDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = RelayConfig()
        config.clientListen = "127.0.0.1:0"
        config.tunnelListen = "127.0.0.1:0"
        let (ports, sink) = AsyncStream.makeStream(of: RelayRunner.Ports.self)
        let run = Task { try await RelayRunner.run(paths: RelayPaths(directory: dir), config: config, logger: .init(label: "test")) { sink.yield($0) } }
        var iterator = ports.makeAsyncIterator()
        let listening = try #require(await iterator.next())
        let tunnel = try #require(listening.tunnel)
        #expect(LoopbackPorts.accepts(listening.client) && LoopbackPorts.accepts(tunnel))
        run.cancel()
        try await run.value
        #expect(!LoopbackPorts.accepts(listening.client), "the client port is still open after the run returned")
        #expect(!LoopbackPorts.accepts(tunnel), "the tunnel port is still open after the run returned")
    }

    @Test func aBusyPortIsNamedWithItsSetting() async throws {
        let dir = try Self.relayDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (port, holder) = LoopbackPorts.hold()
        defer { close(holder) }
        var config = RelayConfig()
        config.clientListen = "127.0.0.1:\(port)"
        config.tunnelListen = "127.0.0.1:0"
        await #expect(throws: ConfigError.cannotListen(component: "relay", key: "client.listen_addr", address: "127.0.0.1:\(port)",
                                                           reason: "Address already in use")) {
            try await RelayRunner.run(paths: RelayPaths(directory: dir), config: config, logger: .init(label: "test"))
        }
    }
}

extension LoadSensitiveTests {
@Suite struct TunnelKeepaliveTests {
    static func fastPings(timeout: TimeAmount = .milliseconds(400)) -> HTTP2Limits {
        var limits = HTTP2Limits()
        limits.tunnelPingInterval = .milliseconds(200)
        limits.tunnelPingTimeout = timeout
        return limits
    }

    /// A live controller answers every PING: the tunnel outlives many intervals and carries calls.
    @Test func aLiveControllerKeepsItsTunnel() async throws {
        // A second to answer: on a loaded 2-core machine a PING ack can take longer than 400 ms.
        let relay = try await RelayHarness(transport: .remote, limits: Self.fastPings(timeout: .seconds(1)))
        defer { Task { await relay.stop() } }
        try await Task.sleep(for: .seconds(2))
        #expect(relay.upstream.isConnected)
        try await relay.withClient(leaf: relay.deviceLeaf) { client async throws in
            #expect(try await client.echo([7]).message == [7])
        }
    }

    /// A controller that vanished without closing (here: a socket that accepts and never
    /// answers, so no PING is ever acknowledged) loses its tunnel within interval + timeout.
    @Test func aSilentControllerLosesItsTunnel() async throws {
        let dir = "/tmp/relay-silent-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let hole = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(hole) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = "\(dir)/silent.sock"
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let listening = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(hole, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        } && listen(hole, 16) == 0
        #expect(listening)

        let pki = try TestPKI()
        let relayLeaf = try pki.leaf(commonName: PharosIdentity.Organization.relay, organization: PharosIdentity.Organization.relay,
                                     usage: [.serverAuth, .clientAuth])
        let controller = try pki.leaf(commonName: "coxswain-controller", usage: [.clientAuth])
        let upstream = Upstream(mode: .tunnel, settings: Self.fastPings(), logger: RelayHarness.logger)
        let listener = try await TunnelListener.start(host: "127.0.0.1", port: 0, identity: try relayLeaf.identity(), roots: try pki.roots(),
                                                      fleetCA: pki.fleet, upstream: upstream, limits: Self.fastPings(),
                                                      logger: RelayHarness.logger)
        defer { Task { try? await listener.close() } }
        let dialer = TunnelDialer(host: "127.0.0.1", port: listener.port, serverName: "localhost", identity: try controller.identity(),
                                  roots: try pki.roots(), socketPath: path, logger: RelayHarness.logger)
        let task = Task { await dialer.run() }
        defer { task.cancel() }
        for _ in 0..<200 where !upstream.isConnected { try await Task.sleep(for: .milliseconds(10)) }
        #expect(upstream.isConnected, "the tunnel must come up first (TLS to the relay succeeds)")
        let up = ContinuousClock.now
        for _ in 0..<300 where upstream.isConnected { try await Task.sleep(for: .milliseconds(10)) }
        #expect(!upstream.isConnected, "an unanswered PING must close the tunnel")
        #expect(ContinuousClock.now - up < .milliseconds(1500), "closed after \(ContinuousClock.now - up)")
    }
}
}

extension LoadSensitiveTests {
@Suite struct HandshakeDeadlineTests {
    static func quickDeadline() -> HTTP2Limits {
        var limits = HTTP2Limits()
        limits.clientListener.handshakeTimeout = .milliseconds(500)
        limits.tunnelListener.handshakeTimeout = .milliseconds(500)
        return limits
    }

    /// The deadline is for the handshake only: a stream that stays open through the tunnel
    /// lives on well past it (it used to be cut at the deadline, with its tunnel).
    @Test(arguments: RelayHarness.Transport.allCases)
    func aConnectionThatHandshookOutlivesTheDeadline(transport: RelayHarness.Transport) async throws {
        let relay = try await RelayHarness(transport: transport, limits: Self.quickDeadline())
        defer { Task { await relay.stop() } }
        try await relay.withClient(leaf: relay.deviceLeaf) { client async throws in
            // A call that answers once and stays open; it must still be open after 3 deadlines.
            let state = Mutex<(answers: Int, ended: String?)>((0, nil))
            let call = Task {
                do {
                    try await client.serverStreaming(request: ClientRequest(message: [UInt8]()), descriptor: Echo.hang,
                                                     serializer: RawSerializer(), deserializer: RawDeserializer(),
                                                     options: .defaults) { response in
                        for try await _ in response.messages { state.withLock { $0.answers += 1 } }
                    }
                    state.withLock { $0.ended = "ended" }
                } catch {
                    state.withLock { $0.ended = "\(error)" }
                }
            }
            try await Task.sleep(for: .milliseconds(1500))
            let seen = state.withLock { $0 }
            #expect(seen.answers == 1 && seen.ended == nil, "the open call must survive the handshake deadline: \(seen)")
            #expect(relay.upstream.cancelledCalls == 0)
            call.cancel()
            _ = await call.result
            for _ in 0..<100 where relay.upstream.cancelledCalls == 0 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(relay.upstream.cancelledCalls == 1, "the client's cancel must reach the controller's stream")
            #expect(try await client.echo([9]).message == [9], "the same connection must still carry calls after the deadline")
        }
        if transport == .remote { #expect(relay.upstream.isConnected) }
    }

    /// A TCP connection that never starts a handshake is closed at the deadline.
    @Test func aConnectionThatNeverHandshakesIsClosed() async throws {
        let relay = try await RelayHarness(transport: .embedded, limits: Self.quickDeadline())
        defer { Task { await relay.stop() } }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(relay.clientPort).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        #expect(connected)
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let start = ContinuousClock.now
        var byte: UInt8 = 0
        let got = read(fd, &byte, 1)
        #expect(got == 0, "the relay must close a connection that never handshakes (read returned \(got))")
        #expect(ContinuousClock.now - start < .seconds(2))
    }
}
}

/// relay.yaml through the shared settings reader: overrides, refusals, the cross-check.
@Suite struct RelayConfigTests {
    func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("relay-\(UUID().uuidString).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func theFileAndTheEnvironmentSetTheLimits() throws {
        let path = try write("client:\n  listen_addr: 127.0.0.1:9443\nlimits:\n  max_connections_per_address: 8\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try RelayConfig.load(path: path, environment: ["RELAY_LIMITS_MAX_CONNECTIONS": "500"])
        #expect(config.clientListen == "127.0.0.1:9443")
        #expect(config.limits.clientListener.maxConnections == 500)
        #expect(config.limits.clientListener.maxConnectionsPerAddress == 8)
    }

    @Test func badSettingsAreRefusedByName() throws {
        let typo = try write("limits:\n  max_conections: 5\n")
        defer { try? FileManager.default.removeItem(atPath: typo) }
        let unknown = #expect(throws: ConfigError.self) { try RelayConfig.load(path: typo, environment: [:]) }
        #expect(unknown?.description.contains("unknown setting \"limits.max_conections\"") == true)
        #expect(throws: ConfigError.invalid(component: "relay", key: "tunnel.listen_addr", value: "",
                                            expected: "a tunnel address, or upstream.socket for a co-located controller")) {
            try RelayConfig.load(path: "/nonexistent", environment: ["RELAY_TUNNEL_LISTEN_ADDR": ""])
        }
        let port = #expect(throws: ConfigError.self) {
            try RelayConfig.load(path: "/nonexistent", environment: ["RELAY_CLIENT_LISTEN_ADDR": ":99999"])
        }
        #expect(port?.description.contains("client.listen_addr") == true)
    }
}
