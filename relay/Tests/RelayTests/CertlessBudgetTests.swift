import EchoFixture
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Testing
@testable import Relay

/// Issue #19 item 3: callers without a device certificate cannot hold the controller's slots.
extension LoadSensitiveTests {
@Suite(.serialized) struct CertlessBudgetTests {
    /// A ClaimEnrollment that sends HEADERS and then nothing for `seconds`.
    static func halfOpenClaim(_ client: GRPCClient<HTTP2ClientTransport.Posix>, seconds: Int = 30) async throws {
        try await client.clientStreaming(request: StreamingClientRequest(of: [UInt8].self) { _ in try await Task.sleep(for: .seconds(seconds)) },
                                         descriptor: Echo.claim, serializer: RawSerializer(), deserializer: RawDeserializer(),
                                         options: .defaults) { response in _ = try response.message }
    }

    /// 100 connections without a certificate each try to hold 100 streams open with HEADERS
    /// alone (10,000: every upstream slot, before the budget existed). The relay holds those
    /// requests itself until they are complete, so the flood takes no controller slot at all
    /// and its cut-off calls spend none of the controller's reset budget; an enrolled
    /// device's call goes through.
    @Test func aDeviceCallSucceedsUnderAHalfOpenFlood() async throws {
        // Short, so the flood drains on its own (100 calls per connection, 4 at a time, each
        // held to its deadline): cancelling calls that grpc-swift holds back behind the relay's
        // 4-stream limit trips an assertion inside grpc-swift's debug build.
        var limits = HTTP2Limits()
        limits.certlessRequestTimeout = .milliseconds(500)
        try await LoadSensitiveTests.RelayForwardingTests.withRelay(.embedded, limits: limits) { relay in
            let clients = try (0..<100).map { _ in try relay.makeClient(leaf: nil) }
            let connections = clients.map { client in Task { try await client.runConnections() } }
            let flood = clients.map { client in
                Task {
                    await withTaskGroup(of: Void.self) { group in
                        for _ in 0..<100 { group.addTask { try? await Self.halfOpenClaim(client) } }
                    }
                }
            }
            for _ in 0..<500 where relay.upstream.certlessRequestsHeld < 100 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(relay.upstream.certlessRequestsHeld >= 100, "the flood did not get going, so its harmlessness proves nothing")
            #expect(relay.upstream.certlessStreamsInFlight == 0, "a half-open request reached the controller")
            #expect(relay.upstream.streamsInFlight == 0)
            try await relay.withClient(leaf: relay.deviceLeaf) { device async throws in
                // Generous: on a 2-core CI machine the flood's own refusals (each answered at once,
                // and the next stream opened at once) compete for the same cores.
                #expect(try await device.echo([7], timeout: .seconds(30)).message == [7])
            }
            for task in flood { await task.value }
            #expect(relay.upstream.cancelledCalls == 0, "cutting the flood off cost the controller resets")
            #expect(relay.upstream.certlessRequestsHeld == 0 && relay.upstream.certlessStreamsInFlight == 0)
            for client in clients { client.beginGracefulShutdown() }
            for task in connections { _ = await task.result }
        }
    }

    /// A certless call that never finishes its request is ended at its deadline, and its slot
    /// is given back.
    @Test func aHalfOpenClaimIsEndedAtItsDeadline() async throws {
        var limits = HTTP2Limits()
        limits.certlessRequestTimeout = .milliseconds(500)
        try await LoadSensitiveTests.RelayForwardingTests.withRelay(.embedded, limits: limits) { relay in
            try await relay.withClient(leaf: nil) { client async throws in
                let start = ContinuousClock.now
                await #expect {
                    try await Self.halfOpenClaim(client, seconds: 10)
                } throws: { error in
                    guard let rpc = error as? RPCError else { return false }
                    return rpc.code == .deadlineExceeded && rpc.message.contains("whole request")
                }
                #expect(ContinuousClock.now - start < .seconds(5))
                for _ in 0..<100 where relay.upstream.certlessRequestsHeld > 0 { try await Task.sleep(for: .milliseconds(10)) }
                #expect(relay.upstream.streamsInFlight == 0 && relay.upstream.certlessRequestsHeld == 0)
                #expect(relay.upstream.cancelledCalls == 0, "the controller heard of the half-open call")
                // A complete claim still reaches the controller.
                #expect(try await client.echo([5], method: Echo.claim).message == [5])
            }
        }
    }

    /// A certless request larger than a ClaimEnrollment can be is refused while it is held,
    /// before the controller sees it.
    @Test func anOversizedCertlessRequestIsRefusedBeforeTheController() async throws {
        try await LoadSensitiveTests.RelayForwardingTests.withRelay(.embedded) { relay in
            try await relay.withClient(leaf: nil) { client async throws in
                await #expect {
                    try await client.echo([UInt8](repeating: 7, count: 20_000), method: Echo.claim)
                } throws: { error in
                    guard let rpc = error as? RPCError else { return false }
                    return rpc.code == .resourceExhausted && rpc.message.contains("at most 8192 bytes")
                }
                #expect(relay.upstream.streamsInFlight == 0 && relay.upstream.cancelledCalls == 0)
            }
        }
    }

    /// A device's call whose request goes silent while open is cancelled after the idle timeout.
    @Test func aSilentDeviceRequestIsCancelledAfterTheIdleTimeout() async throws {
        var limits = HTTP2Limits()
        limits.requestIdleTimeout = .milliseconds(500)
        try await LoadSensitiveTests.RelayForwardingTests.withRelay(.embedded, limits: limits) { relay in
            try await relay.withClient(leaf: relay.deviceLeaf) { client async throws in
                await #expect {
                    try await client.clientStreaming(request: StreamingClientRequest(of: [UInt8].self) { _ in try await Task.sleep(for: .seconds(10)) },
                                                     descriptor: Echo.unary, serializer: RawSerializer(), deserializer: RawDeserializer(),
                                                     options: .defaults) { response in _ = try response.message }
                } throws: { error in
                    guard let rpc = error as? RPCError else { return false }
                    return rpc.code == .deadlineExceeded && rpc.message.contains("sent nothing")
                }
                #expect(try await client.echo([3]).message == [3], "the connection still carries calls")
            }
        }
    }
}
}
