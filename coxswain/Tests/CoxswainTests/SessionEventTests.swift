import Crypto
import Foundation
import Logging
import PharosProto
import PharosSpec
import Testing
@testable import Coxswain

/// The recorder on its own: event types, peer → device/user resolution, stream-lost.
@Suite struct ConnectionEventRecorderTests {
    @Test func sessionsAreResolvedAndClosedWhenTheStreamIsLost() async throws {
        let state = try TestState()
        let (node, device, peer) = try await state.deviceWithPeer()
        let recorder = ConnectionEventRecorder(nodeID: node.id, store: state.store)

        func event(_ type: Pharos_Node_V1_EventType, peer: String, second: Int64) -> Pharos_Node_V1_Event {
            var e = Pharos_Node_V1_Event()
            e.type = type
            e.protocol = .amneziawg
            e.peerID = peer
            e.sourceEndpoint = "203.0.113.5:51000"
            e.at = .init(seconds: 1_700_000_000 + second, nanos: 5000)
            return e
        }
        try await recorder.ingest(event(.peerConnected, peer: peer.id, second: 0))
        try await recorder.ingest(event(.handshakeDown, peer: peer.id, second: 1))  // not a session event
        try await recorder.ingest(event(.peerConnected, peer: "per_unknownpeer0000", second: 2))
        try await recorder.ingest(event(.peerDisconnected, peer: "per_unknownpeer0000", second: 3))
        #expect(await recorder.connectedPeers == [peer.id])
        #expect(try await recorder.streamLost() == 1)
        #expect(try await recorder.streamLost() == 0, "each session is closed once")

        let rows = try await state.store.read { tx in try tx.connectionEvents(node: node.id) }
        #expect(rows.map(\.eventType) == ["connect", "connect", "disconnect", "disconnect"], "the last one is the synthetic stream-lost, at now")
        #expect(rows[0].deviceID == device.id && rows[0].userID == device.userID)
        #expect(rows[0].sourceIP == "203.0.113.5" && rows[0].at == 1_700_000_000_000_005)
        #expect(rows[1].deviceID == nil, "an unknown peer is recorded without an owner")
        #expect(rows[3].reason == "stream-lost" && rows[3].peerID == peer.id)
    }
}

extension FleetIntegrationTests {
    /// A real client handshake (wireguard-go, keys taken from the device's sealed bundle) is seen
    /// by the node's observer, streamed over WatchEvents and recorded with its device and user;
    /// killing the node closes the session as `stream-lost`.
    @Test(.enabled(if: NodeProcess.dataPlane == .wireguardGo, "needs root and Debian's wireguard-go"))
    func realHandshakeBecomesASessionAndStreamLossClosesIt() async throws {
        try await Self.withFleet { fleet in
            let n1 = fleet.nodes[0]
            let deviceKey = Curve25519.KeyAgreement.PrivateKey()
            let added = try await fleet.state.service.addDevice(user: "alice@example.com", name: "laptop",
                                                                encryptionKey: Array(deviceKey.publicKey.rawRepresentation),
                                                                by: fleet.state.actor)
            _ = await fleet.reconciler.push(added.affectedNodes)
            let sealed = try #require(try await fleet.state.store.read { tx in try tx.profile(device: added.value.id) })
            let bundle = try ProfileBundle(jsonBytes: try SealedBundle.open(Array(sealed.ciphertext), with: deviceKey,
                                                                            signingPublicKey: fleet.state.pki.signingKey.publicKey))
            let profile = try #require(bundle.profiles.first { $0.nodes.first?.id == n1.record.id })
            guard case .amneziaWG(let params) = try #require(profile.nodes.first?.protocols.first) else {
                Issue.record("no AmneziaWG parameters in the bundle"); return
            }

            let watchers = EventWatchers(store: fleet.state.store, pool: fleet.pool, logger: Self.logger)
            await watchers.sync(with: try await fleet.state.store.read { tx in try tx.nodes() })
            let client = try WireGuardClient(privateKey: params.privateKey, presharedKey: params.presharedKey,
                                             peer: params.publicKey, endpoint: "127.0.0.1:\(params.endpoints[0].portMin)",
                                             directory: fleet.state.dir)
            defer { client.stop() }

            func events() async throws -> [ConnectionEventRecord] {
                try await fleet.state.store.read { tx in try tx.connectionEvents(node: n1.record.id) }
            }
            var connect: ConnectionEventRecord?
            for _ in 0..<100 where connect == nil {
                connect = try await events().first { $0.eventType == "connect" }
                if connect == nil { try await Task.sleep(for: .milliseconds(200)) }
            }
            let session = try #require(connect, "no connect event reached the controller")
            #expect(session.deviceID == added.value.id && session.userID == fleet.user.id)
            #expect(session.sourceIP == "127.0.0.1")

            n1.kill()
            var lost: ConnectionEventRecord?
            for _ in 0..<50 where lost == nil {
                lost = try await events().first { $0.eventType == "disconnect" }
                if lost == nil { try await Task.sleep(for: .milliseconds(200)) }
            }
            #expect(lost?.reason == "stream-lost" && lost?.deviceID == added.value.id)
            await watchers.stopAll()
        }
    }
}

/// A plain WireGuard client interface (Debian's wireguard-go) in the host namespace.
final class WireGuardClient: @unchecked Sendable {
    let interface = "pcx\(String(UUID().uuidString.prefix(6)).lowercased())c"
    private let process: Process

    init(privateKey: String, presharedKey: String, peer: String, endpoint: String, directory: String) throws {
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/wireguard-go")
        process.arguments = [interface]
        process.environment = ["WG_PROCESS_FOREGROUND": "1", "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: "/var/run/wireguard/\(interface).sock") {
            Thread.sleep(forTimeInterval: 0.05)
        }
        let keyFile = "\(directory)/\(interface).key", pskFile = "\(directory)/\(interface).psk"
        for (file, secret) in [(keyFile, privateKey), (pskFile, presharedKey)] {
            _ = FileManager.default.createFile(atPath: file, contents: Data(secret.utf8), attributes: [.posixPermissions: 0o600])
        }
        _ = try NodeProcess.run("/usr/bin/wg", ["set", interface, "private-key", keyFile, "peer", peer, "preshared-key", pskFile,
                                                "endpoint", endpoint, "allowed-ips", "10.86.0.1/32", "persistent-keepalive", "1"])
        _ = try NodeProcess.run("/sbin/ip", ["link", "set", interface, "up"])
    }

    func stop() {
        _ = try? NodeProcess.run("/sbin/ip", ["link", "del", interface])
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}
