import Foundation
import Logging
import PharosLifecycle
import PharosRuntime
import ServiceLifecycle

/// `node run`: the composition root, the one place the node's object graph is assembled (the
/// executable, the tests and node-bench all run this). Loads identity and state, restores the
/// data plane from disk, then runs the control server, the handshake observer and the systemd
/// watchdog as services of one group until graceful shutdown (SIGTERM/SIGINT with `signals`,
/// or a surrounding group's), cancellation, or the failure of one of them.
public struct NodeApplication: Service {
    let paths: NodePaths
    let config: NodeConfig
    let agentVersion: String
    let logger: Logger
    /// Whether SIGTERM and SIGINT start the graceful shutdown: the daemon's choice; tests and
    /// node-bench's fleet (many nodes in one process) stop it themselves.
    let signals: Bool
    /// Called with the control port once it accepts connections (after READY=1).
    let ready: @Sendable (Int) -> Void

    public init(paths: NodePaths, config: NodeConfig, agentVersion: String, logger: Logger, signals: Bool = false,
                ready: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.paths = paths
        self.config = config
        self.agentVersion = agentVersion
        self.logger = logger
        self.signals = signals
        self.ready = ready
    }

    public func run() async throws {
        try FileManager.default.createDirectory(atPath: paths.stateDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let certificates = try NodeCertificates(paths: paths, logger: logger)
        let identity = try AmneziaWGIdentity.loadOrCreate(at: paths.amneziaWGIdentity)
        let dataPlane = makeDataPlane()
        let policy = config.backend == .memory ? nil
            : try NetworkPolicyApplier(path: paths.networkPolicy, interface: config.interfaceName, logger: logger)
        let core = try NodeAgentCore(dataPlane: dataPlane, identity: identity, statePath: paths.state, logger: logger,
                                     networkPolicy: policy,
                                     xray: XRayService(configPath: paths.xrayConfig, binary: config.xrayBinary, logger: logger),
                                     xrayIdentity: try XRayIdentity.loadOrCreate(at: paths.xrayIdentity),
                                     innerLinks: makeInnerLinkPlanes(), mainInterface: (config.interfaceName, config.listenPort))
        try await core.restore()
        let hub = EventHub(logger: logger)
        let ready = self.ready
        // Started in this order, stopped in reverse: the observer ends the WatchEvents streams
        // before the control server waits for its calls to finish.
        let group = DaemonServiceGroup.make([
            ("control server", ControlServer(
                paths: paths, config: config,
                service: NodeControlService(core: core, events: hub, agentVersion: agentVersion, logger: logger),
                certificates: certificates, logger: logger,
                ready: { port in
                    SystemdNotify.send("READY=1\nSTATUS=serving on port \(port)")
                    ready(port)
                })),
            ("handshake observer", HandshakeObserver(core: core, hub: hub, interval: .seconds(config.pollSeconds))),
            ("watchdog", WatchdogService { (try? await dataPlane.status().running) == true }),
        ], signals: signals, logger: logger)
        var failure: (any Error)?
        do {
            try await group.run()
        } catch is CancellationError {
        } catch {
            failure = error
        }
        // Whatever ended the run, the daemon this agent started goes with it.
        SystemdNotify.send("STOPPING=1")
        await dataPlane.stop()
        await core.stopInnerLinks()
        await core.stopXRay()
        if let failure, !Task.isCancelled { throw failure }
        logger.info("stopped")
    }

    private func makeInnerLinkPlanes() -> NodeAgentCore.InnerLinkPlanes? {
        guard config.backend != .memory else { return nil }
        let config = self.config, logger = self.logger
        return { link in UserspaceWireGuard(innerLink: link, config: config, logger: logger) }
    }

    private func makeDataPlane() -> any DataPlane {
        switch config.backend {
        case .amneziawgGo, .wireguardGo: return UserspaceWireGuard(config: config, logger: logger)
        case .memory:
            logger.warning("in-memory data plane: a benchmark tool, no traffic is carried")
            return InMemoryDataPlane()
        }
    }
}
