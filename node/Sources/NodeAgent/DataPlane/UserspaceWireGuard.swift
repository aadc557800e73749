import PharosSpec
import PharosRuntime
import PharosWireGuard
import Foundation
import Logging
import Synchronization

/// A userspace WireGuard daemon (amneziawg-go or wireguard-go) that this agent starts
/// and supervises itself, configured over UAPI, with address, link and peer routes
/// set through iproute2.
public final class UserspaceWireGuard: DataPlane {
    public let name: String
    public let speaksObfuscation: Bool
    private let binary: String
    private let interface: String
    private let listenPort: Int
    private let address: String
    private let mtu: Int
    private let socket: UAPISocket
    /// Off for inner links (`Table = off`): their peer's 0.0.0.0/0 must not become a route.
    private let routesAllowedIPs: Bool
    private let logger: Logger
    private let process = ChildProcess()
    /// True when the daemon was already running at start (the agent restarted, the
    /// daemon did not): it is configured in place and tunnels never drop.
    private let adopted = Mutex(false)

    public init(config: NodeConfig, logger: Logger) {
        self.name = config.backend.rawValue
        self.speaksObfuscation = config.backend == .amneziawgGo
        self.binary = config.binaryPath.isEmpty ? config.backend.rawValue : config.binaryPath
        self.interface = config.interfaceName
        self.listenPort = config.listenPort
        self.address = config.address
        self.mtu = config.mtu
        self.socket = UAPISocket(path: "\(config.socketDirectory)/\(config.interfaceName).sock")
        self.routesAllowedIPs = true
        self.logger = logger
    }

    /// A cascade hop's interface: the node's backend and socket directory, the link's own
    /// name, port and MTU, no address and no routes.
    public init(innerLink link: InnerLink, config: NodeConfig, logger: Logger) {
        self.name = config.backend.rawValue
        self.speaksObfuscation = config.backend == .amneziawgGo
        self.binary = config.binaryPath.isEmpty ? config.backend.rawValue : config.binaryPath
        self.interface = link.interface
        self.listenPort = link.listenPort
        self.address = ""
        self.mtu = link.mtu == 0 ? config.mtu : link.mtu
        self.socket = UAPISocket(path: "\(config.socketDirectory)/\(link.interface).sock")
        self.routesAllowedIPs = false
        self.logger = logger
    }

    public func start(identity: AmneziaWGIdentity, peers: [PeerSpec]) async throws {
        try await launchDaemon()
        let request = UAPI.Set(
            privateKeyHex: WireGuardKey.hex(fromBase64: identity.privateKey), listenPort: listenPort,
            deviceLines: speaksObfuscation ? identity.obfuscation.uapiLines : [],
            peers: try inPlace(peers))
        try socket.set(request)
        try Command.run(["ip", "link", "set", "dev", interface, "mtu", String(mtu), "up"])
        if !address.isEmpty { try Command.run(["ip", "address", "replace", address, "dev", interface]) }
        if !routesAllowedIPs {
            // An inner link receives the exit's replies for devices it has no route back to
            // in the main table: strict or loose reverse-path filtering would drop them.
            // (SetNetworkConfig relaxes all/default, but an interface keeps the default it
            // was created with.)
            try writeSysctl("net/ipv4/conf/\(interface)/rp_filter", "0")
        }
        try syncRoutes(adding: peers.flatMap(\.allowedIPs), removing: [])
        logger.info("data plane up", metadata: ["backend": "\(name)", "interface": "\(interface)", "peers": "\(peers.count)"])
    }

    public func replacePeers(_ peers: [PeerSpec], previous: [PeerSpec]) async throws {
        try socket.set(UAPI.Set(peers: try inPlace(peers)))
        let keep = Set(peers.flatMap(\.allowedIPs))
        try syncRoutes(adding: Array(keep), removing: previous.flatMap(\.allowedIPs).filter { !keep.contains($0) })
    }

    public func upsertPeer(_ peer: PeerSpec, previous: PeerSpec?) async throws {
        guard let uapiPeer = UAPI.Peer(peer) else { return }
        try socket.set(UAPI.Set(peers: [uapiPeer]))
        try syncRoutes(adding: peer.allowedIPs, removing: (previous?.allowedIPs ?? []).filter { !peer.allowedIPs.contains($0) })
    }

    public func removePeer(_ peer: PeerSpec) async throws {
        guard let pub = WireGuardKey.hex(fromBase64: peer.publicKey) else { return }
        try socket.set(UAPI.Set(peers: [UAPI.Peer(publicKeyHex: pub, remove: true)]))
        try syncRoutes(adding: [], removing: peer.allowedIPs)
    }

    public func status() async throws -> DataPlaneStatus {
        let running = process.isRunning || adopted.withLock { $0 }
        guard running, socket.exists else {
            return DataPlaneStatus(running: false, listening: false, peers: [], detail: "\(name) is not running")
        }
        let device = try socket.get()
        return DataPlaneStatus(running: true, listening: device.listenPort != 0, peers: device.peers,
                               detail: speaksObfuscation ? "\(name) on \(interface)"
                                   : "\(name) on \(interface): plain WireGuard, obfuscation set not applied")
    }

    public func stop() async {
        await process.stop(grace: .seconds(5))
    }

    public func destroy() async {
        await stop()
        // An adopted daemon is not our child: deleting its interface ends it.
        if FileManager.default.fileExists(atPath: "/sys/class/net/\(interface)") {
            _ = try? Command.run(["ip", "link", "del", "dev", interface])
        }
    }

    /// The peer lines that make the daemon's peers exactly `peers` without `replace_peers`:
    /// the daemon's peers that are not wanted are removed, the wanted ones set (a kept peer's
    /// AllowedIPs replaced, its preshared key set or cleared). `replace_peers=true` would
    /// recreate every peer and drop every session: each client's next packets would go
    /// unanswered until its rekey timer fired, about 15 s, at every push. (A peer without a
    /// preshared key is rendered with the all-zero one, which clears a kept peer's.)
    private func inPlace(_ peers: [PeerSpec]) throws -> [UAPI.Peer] {
        let wanted = peers.compactMap(UAPI.Peer.init)
        let keep = Set(wanted.map(\.publicKeyHex))
        let stale = try socket.get().peers.map(\.publicKeyHex).filter { !keep.contains($0) }
        return stale.map { UAPI.Peer(publicKeyHex: $0, remove: true) } + wanted
    }

    private func launchDaemon() async throws {
        await stop()
        if (try? socket.get()) != nil {
            // The socket directory is the host's, not the network namespace's: a daemon whose
            // interface is not here serves another namespace (a second node on this host).
            // Taking it over would configure that node's interface with this node's keys.
            // (Asked over netlink: /sys shows the namespace sysfs was mounted in, which a unit
            // with NetworkNamespacePath= and no remount does not share.)
            guard (try? Command.run(["ip", "link", "show", "dev", interface])) != nil else {
                throw DataPlaneError.daemon(reason: "\(socket.path) answers, but \(interface) is not in this network namespace: "
                                            + "a daemon of another namespace serves that name; refusing to take it over")
            }
            adopted.withLock { $0 = true }
            logger.notice("adopting the \(name) daemon already serving \(interface)")
            return
        }
        adopted.withLock { $0 = false }
        guard let executable = Command.locate(binary) else {
            throw DataPlaneError.daemon(reason: "\(binary) not found (set dataplane.binary in node.yaml)")
        }
        try? FileManager.default.removeItem(atPath: socket.path)  // a stale socket from a crashed daemon
        let logger = self.logger, name = self.name
        try UserspaceDaemon.start(process, executable: executable, interface: interface) { exit in
            guard !exit.requested else { return }
            logger.warning("data-plane daemon exited", metadata: ["backend": "\(name)", "status": "\(exit.status)"])
        }
        if await UserspaceDaemon.waitForSocket(socket, of: process) { return }
        await stop()
        throw DataPlaneError.daemon(reason: "\(executable) \(interface) did not open \(socket.path) within 5 s")
    }

    private func writeSysctl(_ key: String, _ value: String) throws {
        guard let handle = FileHandle(forWritingAtPath: "/proc/sys/\(key)") else {
            throw DataPlaneError.daemon(reason: "cannot write /proc/sys/\(key)")
        }
        defer { try? handle.close() }
        try handle.write(contentsOf: Data(value.utf8))
    }

    /// Peer routes through one `ip -batch` each for removals (best effort) and additions.
    /// Addresses inside the interface's own prefix are already routed to it by the kernel.
    private func syncRoutes(adding: [String], removing: [String]) throws {
        guard routesAllowedIPs else { return }
        let adding = adding.filter { address.isEmpty || !CIDR.contains(address, $0) }
        let removing = removing.filter { address.isEmpty || !CIDR.contains(address, $0) }
        func batch(_ verb: String, _ cidrs: Set<String>) -> String {
            cidrs.sorted().map { "route \(verb) \($0) dev \(interface)" }.joined(separator: "\n") + "\n"
        }
        let removals = Set(removing).subtracting(adding)
        if !removals.isEmpty { _ = try? Command.run(["ip", "-force", "-batch", "-"], input: batch("del", removals)) }
        if !adding.isEmpty { try Command.run(["ip", "-batch", "-"], input: batch("replace", Set(adding))) }
    }
}
