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
    /// alone (10,000: every upstream slot, before the budget existed). An enrolled device's
    /// call still goes through, and the strangers hold no more than their budget.
    @Test func aDeviceCallSucceedsUnderAHalfOpenFlood() async throws {
        // Short, so the flood drains on its own: cancelling calls that grpc-swift holds back
        // behind the relay's 4-stream limit trips an assertion inside grpc-swift's debug build.
        var limits = HTTP2Limits()
        limits.certlessRequestTimeout = .seconds(2)
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
            let cap = min(limits.maxCertlessStreamsPerAddress, limits.maxCertlessUpstreamStreams)
            for _ in 0..<500 where relay.upstream.certlessStreamsInFlight < cap { try await Task.sleep(for: .milliseconds(10)) }
            try await Task.sleep(for: .milliseconds(300))
            #expect(relay.upstream.certlessStreamsInFlight == cap, "the flood holds exactly its budget of controller slots")
            #expect(relay.upstream.streamsInFlight == cap)
            try await relay.withClient(leaf: relay.deviceLeaf) { device async throws in
                // Generous: on a 2-core CI machine the flood's own refusals (each answered at once,
                // and the next stream opened at once) compete for the same cores.
                #expect(try await device.echo([7], timeout: .seconds(30)).message == [7])
            }
            for task in flood { await task.value }
            // The calls cut at their deadline are cancelled at the controller under the cancel
            // budget (150 per 30 s), so the last ones give their slots back later; never more
            // than the budget is held meanwhile.
            #expect(relay.upstream.certlessStreamsInFlight <= cap)
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
                for _ in 0..<100 where relay.upstream.streamsInFlight > 0 { try await Task.sleep(for: .milliseconds(10)) }
                #expect(relay.upstream.streamsInFlight == 0 && relay.upstream.certlessStreamsInFlight == 0)
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
