import Foundation
import Logging
import NIOCore
import PharosConfig
import PharosLifecycle
import PharosRuntime
import PharosSpec
import PharosTLS
import ServiceLifecycle
import X509

/// The composition root of every relay: `relay run` (identity from disk, client port, tunnel
/// port or a co-located controller's socket, deny-list sync) and the relay coxswain embeds
/// (`startEmbedded`): both open their client port through `startClientListener`, with the same
/// limits and deny list.
/// A wall clock: the system's, or one a test moves.
public struct WallClock: Sendable {
    public let now: @Sendable () -> Date

    public init(_ now: @escaping @Sendable () -> Date) { self.now = now }

    public static let system = WallClock { Date() }
}

public enum RelayRunner {
    public struct Ports: Sendable {
        public var client: Int
        public var tunnel: Int?
    }

    /// What the embedded relay is given by the controller that runs it.
    public struct Embedded: Sendable {
        public var listen: HostPort
        public var identity: TLSIdentity
        public var roots: TrustRoots
        public var deviceCA: Certificate
        /// The controller's AccountSync socket.
        public var socketPath: String
        public var limits: HTTP2Limits
        public var denyList: DeviceDenyList

        public init(listen: HostPort, identity: TLSIdentity, roots: TrustRoots, deviceCA: Certificate, socketPath: String,
                    limits: HTTP2Limits, denyList: DeviceDenyList) {
            self.listen = listen
            self.identity = identity
            self.roots = roots
            self.deviceCA = deviceCA
            self.socketPath = socketPath
            self.limits = limits
            self.denyList = denyList
        }
    }

    /// `relay run` until SIGTERM/SIGINT (`signals`) or cancellation; `ready` gets the ports
    /// once both listen (and systemd has been told READY=1).
    /// `clock` is the wall clock the leaf's age is judged by (tests move it).
    public static func run(paths: RelayPaths, config: RelayConfig, logger: Logger, signals: Bool = false,
                           clock: WallClock = .system,
                           ready: @escaping @Sendable (Ports) -> Void = { _ in }) async throws {
        let certificates = try RelayCertificates(paths: paths, logger: logger)
        warnUnlessWritable(paths.stateDirectory, expires: certificates.leaf.notValidAfter, logger: logger)
        let roots = certificates.roots
        // Leaf, Fleet CA and root: a device enrolling checks the chain up to the root its join
        // link pins before it sends its token, and it has no other copy of the root.
        let identity = try certificates.presented
        let deviceCA = try TrustRoots(path: paths.deviceCACertificate).certificates[0]
        let upstream = Upstream(mode: config.upstreamSocket.isEmpty ? .tunnel : .socket(path: config.upstreamSocket),
                                settings: config.limits, logger: logger)
        let client = try RelayConfig.schema.listenAddress(config.clientListen, key: "client.listen_addr")
        let denyList = DeviceDenyList()
        let deniedControllers = DeniedCertificates()
        let clientListener = try await RelayConfig.schema.listening("client.listen_addr", client) {
            try await startClientListener(listen: client, identity: identity, roots: roots, deviceCA: deviceCA, upstream: upstream,
                                          limits: config.limits, denyList: denyList, logger: logger)
        }
        var services: [(name: String, service: any Service)] = [
            ("client listener", HeldService { try? await clientListener.close() }),
        ]
        var tunnelPort: Int?
        var tunnelPortListener: TunnelListener?
        if config.upstreamSocket.isEmpty {
            let tunnel: HostPort
            let tunnelListener: TunnelListener
            do {
                tunnel = try RelayConfig.schema.listenAddress(config.tunnelListen, key: "tunnel.listen_addr")
                tunnelListener = try await RelayConfig.schema.listening("tunnel.listen_addr", tunnel) {
                    try await TunnelListener.start(host: tunnel.host, port: tunnel.port, identity: identity, roots: roots,
                                                   fleetCA: certificates.fleetCA, upstream: upstream, limits: config.limits,
                                                   denied: deniedControllers, logger: logger)
                }
            } catch {
                try? await clientListener.close()
                throw error
            }
            tunnelPort = tunnelListener.port
            tunnelPortListener = tunnelListener
            services.append(("tunnel listener", HeldService { try? await tunnelListener.close() }))
        }
        services.append(("deny-list sync", TaskService { await upstream.syncDenyList(denyList, controllers: deniedControllers) }))
        let renewal = RelayRenewal(certificates: certificates, upstream: upstream, now: clock.now, logger: logger) { [tunnelPortListener] renewed in
            try clientListener.replaceIdentity(renewed)
            try tunnelPortListener?.replaceIdentity(renewed)
        }
        services.append(("certificate renewal", TaskService { await renewal.run(every: .seconds(Int64(config.renewalCheckSeconds))) }))
        services.append(("watchdog", WatchdogService()))
        let ports = Ports(client: clientListener.port, tunnel: tunnelPort)
        logger.info("relay listening", metadata: ["client": "\(ports.client)", "tunnel": "\(ports.tunnel.map(String.init) ?? "-")",
                                                  "upstream": "\(config.upstreamSocket.isEmpty ? "tunnel" : config.upstreamSocket)"])
        SystemdNotify.send("READY=1\nSTATUS=clients on \(ports.client)")
        ready(ports)
        defer { SystemdNotify.send("STOPPING=1") }
        try await DaemonServiceGroup.make(services, signals: signals, logger: logger).run()
    }

    /// A relay that cannot store a renewed leaf stops working when its leaf expires: say so at start.
    static func warnUnlessWritable(_ directory: String, expires: Date, logger: Logger) {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        guard access(directory, W_OK) != 0 else { return }
        logger.error("the state directory is not writable: the relay cannot renew its certificate and stops serving when it expires",
                     metadata: ["state_dir": "\(directory)", "expires": "\(expires)", "hint": "run with --state-dir on a directory the relay's user owns"])
    }

    /// The embedded relay's client port, as coxswain runs it; the caller closes it.
    public static func startEmbedded(_ embedded: Embedded, logger: Logger) async throws -> ClientListener {
        try await startClientListener(listen: embedded.listen, identity: embedded.identity, roots: embedded.roots,
                                      deviceCA: embedded.deviceCA,
                                      upstream: Upstream(mode: .socket(path: embedded.socketPath), settings: embedded.limits, logger: logger),
                                      limits: embedded.limits, denyList: embedded.denyList, logger: logger)
    }

    static func startClientListener(listen: HostPort, identity: TLSIdentity, roots: TrustRoots, deviceCA: Certificate,
                                    upstream: Upstream, limits: HTTP2Limits, denyList: DeviceDenyList,
                                    logger: Logger) async throws -> ClientListener {
        try await ClientListener.start(host: listen.host, port: listen.port, identity: identity, roots: roots, deviceCA: deviceCA,
                                       upstream: upstream, limits: limits, denyList: denyList, logger: logger)
    }
}
