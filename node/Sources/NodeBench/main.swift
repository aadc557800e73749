// `make bench` for the node: time to apply 10,000 peers with one PushConfig, and
// AddPeer latency over real mTLS gRPC, against the data plane this machine can run:
// Debian's wireguard-go when root (a real TUN device and UAPI), otherwise the
// in-memory benchmark plane (said in the output). Prints JSON lines.
import PharosWireGuard
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import NodeAgent
import PharosProto
import PharosSpec
import PharosTestSupport
import PharosRuntime

if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "fleet" {
    try await SimulatedFleet.run(arguments: Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
}

func key() -> String { Base64.standard(secureRandomBytes(32)) }

func peer(_ i: Int) -> Pharos_Node_V1_Peer {
    var p = Pharos_Node_V1_Peer()
    p.id = "dev_\(i)"
    p.protocol = .amneziawg
    p.publicKey = key()
    p.presharedKey = key()
    p.allowedIps = ["10.200.\(i / 256 % 256).\(i % 256)/32"]
    return p
}

func emit(_ fields: [(String, JSONValue)]) {
    print(String(decoding: JSONValue.object(fields.map { JSONMember($0.0, $0.1) }).compactBytes(), as: UTF8.self))
}

func milliseconds(_ d: Duration) -> Double {
    Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
}

let realPlane = geteuid() == 0 && Command.locate("wireguard-go") != nil && Command.locate("ip") != nil
let dir = "/tmp/phbench-\(UUID().uuidString.prefix(6))"
try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: dir) }
let pki = try TestPKI()
try pki.leaf(commonName: "node-bench", usage: [.serverAuth]).write(to: dir, name: "node")
try pki.rootPEM.write(toFile: "\(dir)/ca.crt", atomically: true, encoding: .utf8)
var config = NodeConfig()
config.listenAddress = "127.0.0.1:0"
config.backend = realPlane ? .wireguardGo : .memory
config.interfaceName = "phbench\(Int.random(in: 100...999))"
config.listenPort = Int.random(in: 40000...50000)
// The recommended setup: the node owns the tunnel prefix, so peer /32s need no routes of their own.
config.address = "10.200.0.1/16"
var logger = Logger(label: "bench.node")
logger.logLevel = .warning

let ports = AsyncStream.makeStream(of: Int.self)
let runner = Task {
    try await NodeApplication(paths: NodePaths(directory: dir), config: config, agentVersion: "bench", logger: logger,
                              ready: { ports.continuation.yield($0) }).run()
}
func firstPort() async -> Int? {
    for await port in ports.stream { return port }
    return nil
}
guard let port = await firstPort() else { fatalError("node did not start") }

let controller = try pki.controllerLeaf()
let chain = PEM.decodeAll(type: "CERTIFICATE", from: controller.certificatePEM).map { TLSConfig.CertificateSource.bytes($0, format: .der) }
let rootPEM = try pki.rootPEM
try await withGRPCClient(transport: .http2NIOPosix(
    target: .ipv4(address: "127.0.0.1", port: port),
    transportSecurity: .mTLS(certificateChain: chain, privateKey: .bytes(Array(controller.keyPEM.utf8), format: .pem)) {
        $0.trustRoots = .certificates([.bytes(Array(rootPEM.utf8), format: .pem)])
        $0.serverCertificateVerification = .fullVerification
    })) { client in
    let node = Pharos_Node_V1_NodeControl.Client(wrapping: client)
    _ = try await node.getStatus(Pharos_Node_V1_GetStatusRequest())
    let plane = realPlane ? "wireguard-go" : "memory (not root or no wireguard-go: no real data plane)"

    var push = Pharos_Node_V1_PushConfigRequest()
    var awg = Pharos_Node_V1_AmneziaWGConfig()
    awg.peers = (0..<10_000).map(peer)
    push.protocol = .amneziawg
    push.revision = 1
    push.config = try awg.serializedData()
    let clock = ContinuousClock()
    let start = clock.now
    _ = try await node.pushConfig(push)
    let pushTime = clock.now - start
    let listed = try await node.listPeers(Pharos_Node_V1_ListPeersRequest()).peers.count
    emit([("bench", .string("node.push_config")), ("peers", .integer(10_000)), ("data_plane", .string(plane)),
          ("ms", .double((milliseconds(pushTime) * 10).rounded() / 10)), ("goal_ms", .integer(1000)),
          ("peers_listed_after", .integer(listed))])

    var latencies: [Double] = []
    for i in 0..<1000 {
        var add = Pharos_Node_V1_AddPeerRequest()
        add.peer = peer(20_000 + i)
        let t = clock.now
        _ = try await node.addPeer(add)
        latencies.append(milliseconds(clock.now - t))
    }
    latencies.sort()
    func percentile(_ p: Double) -> JSONValue { .double((latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] * 100).rounded() / 100) }
    emit([("bench", .string("node.add_peer")), ("calls", .integer(latencies.count)), ("existing_peers", .integer(10_000)),
          ("data_plane", .string(plane)), ("p50_ms", percentile(0.50)), ("p99_ms", percentile(0.99)),
          ("max_ms", percentile(1.0)), ("goal_p99_ms", .integer(5))])
}
runner.cancel()
_ = await runner.result
