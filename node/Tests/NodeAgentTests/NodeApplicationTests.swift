import Foundation
import GRPCCore
import Logging
import PharosConfig
import PharosProto
import PharosTestSupport
import ServiceLifecycle
import Testing
@testable import NodeAgent
#if canImport(Glibc)
import Glibc
#endif

/// `node run`'s graph under swift-service-lifecycle: how a run ends. A surrounding
/// ServiceGroup stands in for SIGTERM (its graceful shutdown is inherited by the node's group).
@Suite struct NodeApplicationTests {
    /// A config dir as `cox nodes enroll` leaves it, with the in-memory plane.
    static func configDir(listen: String = "127.0.0.1:0") throws -> (pki: TestPKI, paths: NodePaths, config: NodeConfig) {
        let pki = try TestPKI()
        let dir = try Support.temporaryDirectory()
        try pki.leaf(commonName: "node-1", usage: [.serverAuth]).write(to: dir, name: "node")
        try pki.rootPEM.write(toFile: "\(dir)/ca.crt", atomically: true, encoding: .utf8)
        var config = NodeConfig()
        config.listenAddress = listen
        config.backend = .memory
        config.pollSeconds = 1
        return (pki, NodePaths(directory: dir), config)
    }

    @Test func gracefulShutdownStopsEveryServiceAndClosesThePort() async throws {
        let (pki, paths, config) = try Self.configDir()
        defer { try? FileManager.default.removeItem(atPath: paths.directory) }
        let ports = AsyncStream.makeStream(of: Int.self)
        let node = NodeApplication(paths: paths, config: config, agentVersion: "node test", logger: Support.logger,
                                   ready: { ports.continuation.yield($0) })
        let systemd = ServiceGroup(services: [node], logger: Support.logger)
        let run = Task { try await systemd.run() }
        var iterator = ports.stream.makeAsyncIterator()
        let port = try #require(await iterator.next())
        #expect(LoopbackPorts.accepts(port))

        // A controller watching events: its stream must end, or the control server would wait
        // for the call until the group gave up and cancelled everything.
        let controller = try pki.controllerLeaf()
        let watch = Task {
            try await ControlPlaneTests.withController(pki: pki, address: "127.0.0.1", port: port, leaf: controller) { client in
                _ = try await client.getStatus(Pharos_Node_V1_GetStatusRequest())
                return try await client.watchEvents(Pharos_Node_V1_WatchEventsRequest()) { response in
                    for try await _ in response.messages {}
                }
            }
        }
        try await Task.sleep(for: .seconds(1))

        let clock = ContinuousClock()
        let started = clock.now
        await systemd.triggerGracefulShutdown()
        try await run.value
        #expect(clock.now - started < .seconds(10), "graceful shutdown took \(clock.now - started)")
        #expect(!LoopbackPorts.accepts(port), "the control port is still open")
        _ = await watch.result
        #expect(clock.now - started < .seconds(10), "the WatchEvents call outlived the node")
    }

    @Test func aServiceThatFailsEndsTheRunWithItsError() async throws {
        // The control port is taken by someone else.
        let (port, blocker) = LoopbackPorts.hold()
        defer { close(blocker) }

        let (_, paths, config) = try Self.configDir(listen: "127.0.0.1:\(port)")
        defer { try? FileManager.default.removeItem(atPath: paths.directory) }
        let node = NodeApplication(paths: paths, config: config, agentVersion: "node test", logger: Support.logger,
                                   ready: { _ in Issue.record("a node whose port is taken reported ready") })
        let clock = ContinuousClock()
        let started = clock.now
        let error = await #expect(throws: ConfigError.self) { try await node.run() }
        #expect(error == .cannotListen(component: "node", key: "control.listen_addr", address: "127.0.0.1:\(port)",
                                       reason: String(cString: strerror(EADDRINUSE))))
        #expect(clock.now - started < .seconds(10), "the other services were not stopped promptly")
    }

    @Test func theObserverEndsEveryWatchEventsStreamAtGracefulShutdown() async throws {
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let core = try NodeAgentCore(dataPlane: InMemoryDataPlane(), identity: .generate(), statePath: "\(dir)/state.json", logger: Support.logger)
        let hub = EventHub(logger: Support.logger)
        let stream = hub.subscribe()
        let group = ServiceGroup(services: [HandshakeObserver(core: core, hub: hub, interval: .milliseconds(10))], logger: Support.logger)
        let run = Task { try await group.run() }
        try await Task.sleep(for: .milliseconds(50))
        await group.triggerGracefulShutdown()
        try await run.value
        for await _ in stream {}  // returns only because the hub finished it
        var afterwards = hub.subscribe().makeAsyncIterator()
        let next = await afterwards.next()
        #expect(next == nil, "a stream opened after shutdown must end at once")
    }
}
