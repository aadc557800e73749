import Foundation
import Logging
import PharosRuntime

/// `node run`: the composition root. Loads identity and state, restores the data
/// plane from disk, then opens the control port and tells systemd it is ready.
public enum NodeRunner {
    public static func makeDataPlane(config: NodeConfig, logger: Logger) -> any DataPlane {
        switch config.backend {
        case .amneziawgGo, .wireguardGo: UserspaceWireGuard(config: config, logger: logger)
        case .memory: InMemoryDataPlane()
        }
    }

    public static func run(paths: NodePaths, config: NodeConfig, agentVersion: String, logger: Logger,
                           ready: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        try FileManager.default.createDirectory(atPath: paths.stateDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let identity = try AmneziaWGIdentity.loadOrCreate(at: paths.amneziaWGIdentity)
        let dataPlane = makeDataPlane(config: config, logger: logger)
        if config.backend == .memory { logger.warning("in-memory data plane: a benchmark tool, no traffic is carried") }
        let policy = config.backend == .memory ? nil
            : try NetworkPolicyApplier(path: paths.networkPolicy, interface: config.interfaceName, logger: logger)
        let core = try NodeAgentCore(dataPlane: dataPlane, identity: identity, statePath: paths.state, logger: logger,
                                     networkPolicy: policy,
                                     xray: XRayService(configPath: paths.xrayConfig, binary: config.xrayBinary, logger: logger),
                                     xrayIdentity: try XRayIdentity.loadOrCreate(at: paths.xrayIdentity))
        try await core.restore()
        let hub = EventHub(logger: logger)
        let service = NodeControlService(core: core, events: hub, agentVersion: agentVersion, logger: logger)
        let server = ControlServer(paths: paths, config: config, logger: logger)
        var failure: (any Error)?
        do {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await HandshakeObserver(core: core, hub: hub, interval: .seconds(config.pollSeconds)).run() }
                group.addTask {
                    try await server.serve(service: service) { port in
                        SystemdNotify.send("READY=1\nSTATUS=serving on port \(port)")
                        ready(port)
                    }
                }
                group.addTask { await SystemdNotify.feedWatchdog { (try? await dataPlane.status().running) == true } }
            }
        } catch is CancellationError {
        } catch {
            failure = error
        }
        // Whatever ended the run, the daemon this agent started goes with it.
        SystemdNotify.send("STOPPING=1")
        await dataPlane.stop()
        await core.stopXRay()
        if let failure, !Task.isCancelled { throw failure }
    }
}
