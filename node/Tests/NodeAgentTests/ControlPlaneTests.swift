import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import PharosProto
import PharosSpec
import PharosTestSupport
import Synchronization
import Testing
@testable import NodeAgent

/// A controller's view: real gRPC over real mTLS on loopback to `node run`'s control
/// server, with the in-memory data plane behind it.
@Suite struct ControlPlaneTests {
    struct Node {
        let pki: TestPKI
        let dir: String
        let port: Int
        let task: Task<Void, any Error>

        /// Stops the node; its directory goes too unless `keepingFiles` (a restart follows).
        func stop(keepingFiles: Bool = false) async {
            task.cancel()
            _ = await task.result
            if !keepingFiles { try? FileManager.default.removeItem(atPath: dir) }
        }
    }

    /// Runs `body` against a fresh node and always stops it and removes its directory.
    static func withNode(_ body: (Node) async throws -> Void) async throws {
        let node = try await startNode()
        do {
            try await body(node)
        } catch {
            await node.stop()
            throw error
        }
        await node.stop()
    }

    /// A node enrolled in a fresh CA, or (`restarting`) the one already in that directory.
    static func startNode(restarting previous: (pki: TestPKI, dir: String)? = nil) async throws -> Node {
        let pki = try previous?.pki ?? TestPKI()
        let dir = try previous?.dir ?? Support.temporaryDirectory()
        if previous == nil {
            try pki.leaf(commonName: "node-1", usage: [.serverAuth]).write(to: dir, name: "node")
            try pki.rootPEM.write(toFile: "\(dir)/ca.crt", atomically: true, encoding: .utf8)
        }
        var config = NodeConfig()
        config.listenAddress = "127.0.0.1:0"
        config.backend = .memory
        let ports = AsyncStream.makeStream(of: Int.self)
        let task = Task {
            try await NodeApplication(paths: NodePaths(directory: dir), config: config, agentVersion: "node test",
                                      logger: Support.logger, ready: { ports.continuation.yield($0) }).run()
        }
        var iterator = ports.stream.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CancellationError() }
        return Node(pki: pki, dir: dir, port: port, task: task)
    }

    static func withController<T: Sendable>(_ node: Node, leaf: TestPKI.Leaf?,
                                            _ body: (Pharos_Node_V1_NodeControl.Client<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
        try await withController(pki: node.pki, address: "127.0.0.1", port: node.port, leaf: leaf, body)
    }

    /// A controller's client for the node at `address:port` whose CA is `pki`.
    static func withController<T: Sendable>(pki: TestPKI, address: String, port: Int, leaf: TestPKI.Leaf?,
                                            _ body: (Pharos_Node_V1_NodeControl.Client<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
        try await withConnection(pki: pki, address: address, port: port, leaf: leaf) { client in
            try await body(Pharos_Node_V1_NodeControl.Client(wrapping: client))
        }
    }

    /// One controller connection, for clients of any service the control port serves.
    static func withConnection<T: Sendable>(pki: TestPKI, address: String = "127.0.0.1", port: Int, leaf: TestPKI.Leaf?,
                                            _ body: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
        let chain = PEM.decodeAll(type: "CERTIFICATE", from: leaf?.certificatePEM ?? "").map { TLSConfig.CertificateSource.bytes($0, format: .der) }
        let security: HTTP2ClientTransport.Posix.TransportSecurity
        let roots = TLSConfig.TrustRootsSource.certificates([.bytes(Array(try pki.rootPEM.utf8), format: .pem)])
        if let leaf {
            security = .mTLS(certificateChain: chain, privateKey: .bytes(Array(leaf.keyPEM.utf8), format: .pem)) {
                $0.trustRoots = roots
                $0.serverCertificateVerification = .fullVerification
            }
        } else {
            security = .tls { $0.trustRoots = roots }
        }
        return try await withGRPCClient(transport: .http2NIOPosix(target: .ipv4(address: address, port: port),
                                                                  transportSecurity: security)) { client in
            try await body(client)
        }
    }

    @Test func controllerDrivesTheNodeOverMutualTLS() async throws {
        try await Self.withNode { node in
            let controller = try node.pki.controllerLeaf()
            try await Self.withController(node, leaf: controller) { nodeControl in
                let status = try await nodeControl.getStatus(Pharos_Node_V1_GetStatusRequest())
                #expect(status.agentVersion == "node test")
                #expect(status.amneziawg.publicKey.count == 44)
                #expect(status.services.first?.detail.contains("benchmark") == true, "the in-memory plane must say what it is")

                let push = try Wire.push(7, [Wire.peer("dev-1", ip: "10.86.0.2/32")])
                #expect(try await nodeControl.pushConfig(push).appliedRevision == 7)
                let stale = try Wire.push(6, [])
                let error = await #expect(throws: RPCError.self) { _ = try await nodeControl.pushConfig(stale) }
                #expect(error?.code == .failedPrecondition)

                var add = Pharos_Node_V1_AddPeerRequest()
                add.peer = Wire.peer("dev-2", ip: "10.86.0.3/32")
                #expect(try await nodeControl.addPeer(add).peerID == "dev-2")
                #expect(try await nodeControl.listPeers(Pharos_Node_V1_ListPeersRequest()).peers.map(\.peer.id).sorted() == ["dev-1", "dev-2"])

                // An inner link naming no exit is refused before anything is applied.
                let noExit = await #expect(throws: RPCError.self) {
                    _ = try await nodeControl.configureInnerLink(Pharos_Node_V1_ConfigureInnerLinkRequest())
                }
                #expect(noExit?.code == .invalidArgument && noExit?.message.contains("config.exit is missing") == true)
            }
        }
    }

    @Test func everyOtherCallerDiesAtTheHandshake() async throws {
        try await Self.withNode { node in
            let controllerName = PharosIdentity.CommonName.controller
            let callers: [(String, TestPKI.Leaf?)] = [
                ("no certificate", nil),
                ("foreign CA", try TestPKI(name: "Elsewhere").controllerLeaf()),
                ("Device CA", try node.pki.leaf(commonName: "laptop", organization: "PharosVPN Device", usage: [.clientAuth], issuer: .device)),
                ("expired", try node.pki.controllerLeaf(notValidBefore: Date() - 7200, notValidAfter: Date() - 3600)),
                ("wrong EKU", try node.pki.leaf(commonName: controllerName, usage: [.serverAuth])),
                // Fleet-CA leaves with ClientAuth that are not the controller's: a relay's (dual
                // EKU, as coxswain issues them), one with the relay's O but the controller's CN,
                // a node leaf that somehow carries ClientAuth, and the controller's CN under the
                // Device CA.
                ("relay leaf", try node.pki.leaf(commonName: "PharosVPN Relay", organization: "PharosVPN Relay", usage: [.serverAuth, .clientAuth])),
                ("relay O, controller CN", try node.pki.leaf(commonName: controllerName, organization: "PharosVPN Relay", usage: [.clientAuth])),
                ("node leaf", try node.pki.leaf(commonName: "node-2", usage: [.serverAuth, .clientAuth])),
                ("controller CN from the Device CA", try node.pki.leaf(commonName: controllerName, usage: [.clientAuth], issuer: .device)),
            ]
            for (name, leaf) in callers {
                await #expect(throws: (any Error).self, "\(name) was let in") {
                    try await Self.withController(node, leaf: leaf) { nodeControl in
                        var options = CallOptions.defaults
                        options.timeout = .seconds(5)
                        _ = try await nodeControl.getStatus(Pharos_Node_V1_GetStatusRequest(), options: options)
                    }
                }
            }
            // The node still serves its controller afterwards.
            let status = try await Self.withController(node, leaf: try node.pki.controllerLeaf()) {
                try await $0.getStatus(Pharos_Node_V1_GetStatusRequest())
            }
            #expect(status.agentVersion == "node test")
        }
    }

    /// The controller's scale benchmarks host many simulated nodes in one process, each
    /// on its own port with real mTLS, over the in-memory plane.
    @Test func manySimulatedNodesInOneProcess() async throws {
        var nodes: [Node] = []
        for _ in 0..<3 { nodes.append(try await Self.startNode()) }
        for (index, node) in nodes.enumerated() {
            let controller = try node.pki.controllerLeaf()
            let applied = try await Self.withController(node, leaf: controller) {
                try await $0.pushConfig(Wire.push(Int64(index + 1), [Wire.peer("d\(index)", ip: "10.86.0.\(index + 2)/32")]))
            }
            #expect(applied.appliedRevision == Int64(index + 1))
        }
        #expect(Set(nodes.map(\.port)).count == 3)
        for node in nodes { await node.stop() }
    }
}
