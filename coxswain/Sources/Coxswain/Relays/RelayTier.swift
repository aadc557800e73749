import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import PharosSpec
import PharosTLS
import PharosLifecycle
import Relay
import ServiceLifecycle
import Synchronization
import X509

/// The account plane as `cox serve` runs it: AccountSync on a private Unix socket in the
/// state directory (0600, no network port), the embedded relay in front of it (a relay leaf
/// issued in memory at every start, never written anywhere), one reverse tunnel to every
/// enrolled remote relay, and the deny list of revoked device certificates kept fresh for
/// the embedded relay.
public final class RelayTier: Sendable {
    public struct Endpoints: Sendable {
        /// The embedded relay's client port, when it runs.
        public var embeddedClientPort: Int?
        public var socketPath: String
    }

    public static let denyListRefresh = Duration.seconds(1)
    public static let embeddedLeafValidity: TimeInterval = 30 * 86400
    /// How often the embedded relay looks at its leaf's age by the wall clock (a suspended
    /// machine or a clock that jumped finds an old leaf at once, not 20 days of uptime later);
    /// it re-issues it at two thirds of its life, a failed re-issue is tried again next time.
    public static let embeddedLeafCheck = Duration.seconds(60)

    let controller: Controller
    let accounts: AccountService
    let logger: Logger
    /// Whether this controller leads the fleet (#22): a remote relay keeps the newest of the
    /// tunnels dialed to it, so only the leader dials them (two controllers would take the
    /// tunnel from each other by turns); a standby drops its tunnels and serves its embedded
    /// relay only.
    let leads: @Sendable () -> Bool
    public let denyList = DeviceDenyList()
    private let dialers = Mutex<[String: TunnelDialer]>([:])
    private let embeddedUp = Mutex(false)

    /// Each enrolled remote relay being dialed, by ID: whether its tunnel is up now.
    public var tunnelStates: [String: Bool] { dialers.withLock { $0.mapValues(\.isConnected) } }
    /// Whether the embedded relay listens.
    public var embeddedListening: Bool { embeddedUp.withLock { $0 } }

    public init(controller: Controller, accounts: AccountService, logger: Logger, leads: @escaping @Sendable () -> Bool = { true }) {
        self.controller = controller
        self.accounts = accounts
        self.logger = logger
        self.leads = leads
    }

    /// The TLS name of the embedded relay: the host of `relay.public_endpoint`, else localhost.
    public static func embeddedHostname(_ config: CoxConfig) -> String {
        (try? HostPort.parse(config.relayPublicEndpoint, defaultPort: PharosPorts.relayClient))?.host ?? "localhost"
    }

    public var socketPath: String {
        URL(fileURLWithPath: controller.store.stateDirectory).appendingPathComponent("account.sock").path
    }

    /// The tier's services in start order, for the controller's ServiceGroup: the AccountSync
    /// socket, the deny-list refresh, the embedded relay (when `relay.embedded`) and the
    /// remote relays' tunnels. Clients are let in only after the socket listens and the deny
    /// list has been read once; `ready` gets the endpoints then.
    public func services(ready: @escaping @Sendable (Endpoints) -> Void = { _ in }) -> [(name: String, service: any Service)] {
        let accountsUp = OneShot<Void>()
        let socketPath = self.socketPath
        var services: [(name: String, service: any Service)] = [
            ("account socket", AccountSocketService(tier: self) {
                accountsUp.fulfill(())
                if !self.controller.config.relayEmbedded { ready(Endpoints(embeddedClientPort: nil, socketPath: socketPath)) }
            }),
            ("deny-list refresh", PeriodicService(every: Self.denyListRefresh) { try? await self.refreshDenyList() }),
        ]
        if controller.config.relayEmbedded {
            // Its leaf's age is checked as often as the fleet is reconciled, at most every minute.
            let check = min(Self.embeddedLeafCheck, .seconds(controller.config.reconcileInterval))
            services.append(("embedded relay", EmbeddedRelayService(tier: self, after: accountsUp, ready: { port in
                ready(Endpoints(embeddedClientPort: port, socketPath: socketPath))
            }, check: check)))
        }
        services.append(("relay tunnels", TaskService {
            guard await accountsUp.value != nil else { return }
            try await self.superviseTunnels()
        }))
        return services
    }

    /// AccountSync and RelayControl on the state directory's socket (0600, no network port).
    func makeSocketServer() -> GRPCServer<HTTP2ServerTransport.Posix> {
        let socketPath = self.socketPath
        chmod(URL(fileURLWithPath: socketPath).deletingLastPathComponent().path, 0o700)
        try? FileManager.default.removeItem(atPath: socketPath)
        return GRPCServer(transport: HTTP2ServerTransport.Posix(
            address: .unixDomainSocket(path: socketPath), transportSecurity: .plaintext,
            config: .defaults {
                // Every client stream of a relay arrives on one connection; relays PING every 20 s.
                $0.http2.maxConcurrentStreams = 20_000
                $0.connection.keepalive.clientBehavior = .init(minPingIntervalWithoutCalls: .seconds(10), allowWithoutCalls: true)
            }), services: [AccountSyncHandler(accounts: accounts, logger: logger), DeviceLifecycleHandler(accounts: accounts, logger: logger),
                        RelayControlService(service: controller.service, logger: logger)])
    }

    func setEmbeddedListening(_ up: Bool) {
        embeddedUp.withLock { $0 = up }
    }

    func refreshDenyList() async throws {
        let denied = try await controller.store.read { tx in try tx.deniedDeviceFingerprints() }
        denyList.replace(with: denied)
    }

    /// The embedded relay: the same `Relay` library a remote relay runs, on `relay.client_listen`.
    func startEmbeddedRelay() async throws -> (ClientListener, Certificate) {
        let pki = controller.pki
        let identity = try embeddedRelayIdentity()
        let roots = try TrustRoots(certificates: [pki.authority.root.certificate])
        let listen = try HostPort.listen(controller.config.relayClientListen)
        let listener = try await RelayRunner.startEmbedded(.init(
            listen: listen, identity: identity, roots: roots, deviceCA: pki.authority.device.certificate,
            socketPath: socketPath, limits: controller.config.embeddedRelayLimits, denyList: denyList), logger: logger)
        logger.info("embedded relay listening", metadata: ["listen": "\(HostPort(host: listen.host, port: listener.port))",
                                                           "hostname": "\(Self.embeddedHostname(controller.config))"])
        return (listener, identity.leaf)
    }

    /// A fresh key and leaf for the embedded relay, kept in memory only. Leaf, Fleet CA and
    /// root: an enrolling device pins the root by hash before its token goes.
    func embeddedRelayIdentity() throws -> TLSIdentity {
        let pki = controller.pki
        let key = P256.Signing.PrivateKey()
        let leaf = try pki.authority.issue(publicKey: Certificate.PublicKey(key.publicKey),
                                           profile: .relay(hostname: Self.embeddedHostname(controller.config)),
                                           validity: Self.embeddedLeafValidity)
        return try TLSIdentity(certificatePEM: try leaf.pemString() + pki.authority.fleet.certificate.pemString()
                                   + pki.authority.root.certificate.pemString(),
                               keyPEM: key.pemRepresentation, source: "embedded relay")
    }

    /// One `TunnelDialer` per enrolled relay; relays added or removed with `cox relays` are
    /// picked up within `fleet.reconcile_interval`, and so is a renewed controller leaf (the
    /// dialers restart with it: each relay's tunnel is redialed once per renewal). Every
    /// handshake records the leaf the relay presented; a relay presents a renewed leaf from
    /// its next handshake on, so a tunnel still on an older one is redialed once, a reconcile
    /// interval after the renewal: the store then knows whether the relay serves its new leaf
    /// (`cox relays list`; `cox pki status` and the expiry alert follow the leaf it serves).
    func superviseTunnels() async throws {
        var running: [String: (relay: RelayRecord, task: Task<Void, Never>)] = [:]
        var redialedFor: [String: String] = [:]  // relay ID → the issued serial a redial went looking for
        let grace = Int64(controller.config.reconcileInterval) * 1_000_000
        let roots = try TrustRoots(certificates: [controller.pki.authority.root.certificate])
        var (identity, identityPEM) = try controllerIdentity(try await controller.store.read { tx in try tx.controllerCertificate() })
        let denied = DeniedCertificates()
        while !Task.isCancelled {
            // One read a round: revoked relay leaves, the controller's leaf, the relays.
            if let (revoked, stored, relays) = try? await controller.store.read({ tx in
                (try tx.revokedCertificates(kind: .relay), try tx.controllerCertificate(), try tx.relays())
            }) {
                denied.replace(with: Set(revoked.map(\.serial)))
                // Parsed only when it changed (a renewal every few days).
                if let stored, stored.certificatePEM != identityPEM, let renewed = try? controllerIdentity(stored) {
                    if !running.isEmpty {
                        logger.info("relay tunnels redialed with the renewed controller certificate",
                                    metadata: ["serial": "\(renewed.identity.leaf.serialHex)"])
                    }
                    (identity, identityPEM) = renewed
                    for entry in running.values { entry.task.cancel() }
                    running.removeAll()
                    dialers.withLock { $0.removeAll() }
                }
                // A standby wants none: the tunnels it runs are cancelled below, and dialed again
                // within one round of its taking the lead.
                let wanted = leads() ? Dictionary(relays.filter { $0.kind == .remote }.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a }) : [:]
                // Redialed when where or whom to dial changed; not when a renewal bumped the row.
                let now = StoreClock.now()
                for (id, entry) in running {
                    let moved = wanted[id].map { $0.endpoint != entry.relay.endpoint || $0.hostname != entry.relay.hostname } ?? true
                    let unseen = wanted[id].flatMap { relay in
                        !relay.presentedSerial.isEmpty && !relay.presentsIssuedLeaf && redialedFor[id] != relay.certSerial
                            && now - relay.updatedAt >= grace ? relay : nil
                    }
                    guard moved || unseen != nil else { continue }
                    if let unseen, !moved {
                        redialedFor[id] = unseen.certSerial
                        logger.info("relay tunnel redialed to see the relay's renewed certificate",
                                    metadata: ["relay": "\(unseen.name)", "serial": "\(unseen.certSerial)"])
                    }
                    entry.task.cancel()
                    running[id] = nil
                    _ = dialers.withLock { $0.removeValue(forKey: id) }
                }
                for (id, relay) in wanted where running[id] == nil {
                    guard let target = try? HostPort.parse(relay.endpoint) else {
                        logger.error("relay endpoint unusable", metadata: ["relay": "\(relay.name)", "endpoint": "\(relay.endpoint)"])
                        continue
                    }
                    let dialer = TunnelDialer(host: target.host, port: target.port, serverName: relay.hostname, identity: identity,
                                              roots: roots, socketPath: socketPath, logger: logger, denied: denied) { [store = controller.store, logger] leaf in
                        Task { await Self.recordPresented(leaf, relay: relay, store: store, logger: logger) }
                    }
                    running[id] = (relay, Task { await dialer.run() })
                    dialers.withLock { $0[id] = dialer }
                }
            }
            try? await Task.sleep(for: .seconds(min(controller.config.reconcileInterval, 10)))
        }
        for entry in running.values { entry.task.cancel() }
        dialers.withLock { $0.removeAll() }
    }

    /// The relay presented `leaf` at a handshake the dialer accepted.
    static func recordPresented(_ leaf: Certificate, relay: RelayRecord, store: Store, logger: Logger) async {
        let serial = leaf.serialHex
        do {
            let owned = try await store.write { tx in
                try tx.recordPresentedRelayLeaf(relay: relay.id, serial: serial) || tx.relay(relay.id).presentedSerial == serial
            }
            if !owned {
                // Ours (the dialer checked the chain), in date, not revoked, for its hostname, but
                // not issued to this relay: another relay enrolled under the same hostname.
                logger.warning("relay presents a certificate issued to another relay",
                               metadata: ["relay": "\(relay.name)", "serial": "\(serial)"])
            }
        } catch {
            logger.warning("could not record the relay's certificate", metadata: ["relay": "\(relay.name)", "error": "\(error)"])
        }
    }

    /// The controller's leaf as the store holds it (`cox serve` renews it there), and its PEM.
    func controllerIdentity(_ stored: (certificatePEM: String, keyPEM: String, notAfter: Int64)?) throws -> (identity: TLSIdentity, pem: String) {
        do {
            guard let stored else { throw StoreError.damaged("the controller_cert table is empty") }
            return (try TLSIdentity(certificatePEM: stored.certificatePEM, keyPEM: stored.keyPEM, source: "controller leaf"),
                    stored.certificatePEM)
        } catch {
            // Loudly: a controller that silently dials no relay would strand every client behind them.
            logger.error("relay tunnels not dialed: the controller's TLS identity does not load", metadata: ["error": "\(error)"])
            throw error
        }
    }
}

extension CoxConfig {
    /// The embedded relay runs with the remote relay's defaults but for the connection budget
    /// of its public port, which `relay.max_connections[_per_address]` set.
    var embeddedRelayLimits: HTTP2Limits {
        var limits = HTTP2Limits()
        limits.clientListener.maxConnections = relayMaxConnections
        limits.clientListener.maxConnectionsPerAddress = relayMaxConnectionsPerAddress
        return limits
    }
}
