import Logging
import NIOCore
import PharosConfig
import PharosRuntime
import PharosTLS
import X509

/// `relay run`: the composition root. Loads the identity, opens the client listener and the
/// tunnel port (or dials a co-located controller's socket), tells systemd it is ready.
public enum RelayRunner {
    public struct Ports: Sendable {
        public var client: Int
        public var tunnel: Int?
    }

    public static func run(paths: RelayPaths, config: RelayConfig, logger: Logger,
                           ready: @escaping @Sendable (Ports) -> Void = { _ in }) async throws {
        let identity = try TLSIdentity(certificatePath: paths.certificate, keyPath: paths.key)
        guard identity.certificates.count >= 2 else { throw RelayIdentityError.missingFleetCA(path: paths.certificate) }
        let roots = try TrustRoots(path: paths.rootCertificate)
        let deviceCA = try TrustRoots(path: paths.deviceCACertificate).certificates[0]
        let upstream = Upstream(mode: config.upstreamSocket.isEmpty ? .tunnel : .socket(path: config.upstreamSocket),
                                settings: config.limits, logger: logger)
        let client = try RelayConfig.schema.listenAddress(config.clientListen, key: "client.listen_addr")
        let denyList = DeviceDenyList()
        let clientListener = try await RelayConfig.schema.listening("client.listen_addr", client) {
            try await ClientListener.start(host: client.host, port: client.port, identity: identity, roots: roots, deviceCA: deviceCA,
                                           upstream: upstream, limits: config.limits, denyList: denyList, logger: logger)
        }
        let denySync = Task { await upstream.syncDenyList(denyList) }
        defer { denySync.cancel() }
        var tunnelListener: TunnelListener?
        if config.upstreamSocket.isEmpty {
            let tunnel = try RelayConfig.schema.listenAddress(config.tunnelListen, key: "tunnel.listen_addr")
            tunnelListener = try await RelayConfig.schema.listening("tunnel.listen_addr", tunnel) {
                try await TunnelListener.start(host: tunnel.host, port: tunnel.port, identity: identity, roots: roots,
                                               fleetCA: identity.certificates[1], upstream: upstream, limits: config.limits, logger: logger)
            }
        }
        let ports = Ports(client: clientListener.port, tunnel: tunnelListener?.port)
        logger.info("relay listening", metadata: ["client": "\(ports.client)", "tunnel": "\(ports.tunnel.map(String.init) ?? "-")",
                                                  "upstream": "\(config.upstreamSocket.isEmpty ? "tunnel" : config.upstreamSocket)"])
        SystemdNotify.send("READY=1\nSTATUS=clients on \(ports.client)")
        ready(ports)
        await SystemdNotify.feedWatchdog()
        // Without a watchdog, wait here for cancellation (SIGTERM).
        while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
        SystemdNotify.send("STOPPING=1")
        try? await clientListener.close()
        try? await tunnelListener?.close()
    }
}
