// `make bench` for the controller: a simulated fleet of N nodes (node-bench's in-memory
// backend, each a real mTLS NodeControl endpoint, all in one helper process) driven by this
// process as `cox serve` drives a fleet. Prints JSON lines:
//   - device created → its peers applied on every affected node (2 nodes), p50/p99
//   - a full sweep over N nodes × 100 peers that must heal every node, and a steady-state sweep
//   - the controller's RSS (this process; the simulated nodes live in the helper)
//   - one anomaly sweep (every rule but GeoIP's) over a day of sessions of every load device
// Usage: cox-bench --nodes N [--node-bench PATH] [--store sqlite|postgres] (postgres: the DSN file
// in PHAROS_DSN_FILE, as Scripts/with-postgres.sh sets it; every line then says "store")
import Crypto
import Foundation
import Logging
import PharosSpec
import PharosTestSupport
import X509
import Coxswain
#if canImport(Glibc)
import Glibc
#endif

func argument(_ name: String) -> String? {
    guard let i = CommandLine.arguments.firstIndex(of: name), i + 1 < CommandLine.arguments.count else { return nil }
    return CommandLine.arguments[i + 1]
}

func emit(_ fields: [(String, JSONValue)]) {
    FileHandle.standardOutput.write(Data(JSONValue.object(fields.map { JSONMember($0.0, $0.1) }).compactBytes() + [10]))
}

func milliseconds(_ d: Duration) -> Double {
    Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
}

func rounded(_ value: Double, _ places: Double = 10) -> JSONValue { .double((value * places).rounded() / places) }

func statusKiB(_ field: String) -> Int {
    let text = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0
    }
    return 0
}

var limit = rlimit()
getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
limit.rlim_cur = limit.rlim_max
setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)

let count = Int(argument("--nodes") ?? "100") ?? 100
let peersPerNode = 100
let nodeBench = argument("--node-bench") ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    .appendingPathComponent("../../../node/.build/release/node-bench").standardizedFileURL.path
guard FileManager.default.isExecutableFile(atPath: nodeBench) else {
    FileHandle.standardError.write(Data("no node-bench at \(nodeBench): cd node && swift build -c release --product node-bench\n".utf8))
    exit(2)
}
let dir = "/tmp/coxbench-\(count)-\(UUID().uuidString.prefix(6))"
defer { try? FileManager.default.removeItem(atPath: dir) }
var config = CoxConfig()
config.nodeCallTimeoutSeconds = 30
let storeKind = argument("--store") ?? "sqlite"
let store: Store
switch storeKind {
case "sqlite":
    store = try Store.open(path: "\(dir)/state/app.db")
case "postgres":
    guard let dsnFile = ProcessInfo.processInfo.environment["PHAROS_DSN_FILE"] else {
        FileHandle.standardError.write(Data("--store postgres needs PHAROS_DSN_FILE (run under Scripts/with-postgres.sh)\n".utf8))
        exit(2)
    }
    store = try Store.open(postgres: try PostgresStoreConfiguration.load(dsnFile: dsnFile), stateDirectory: "\(dir)/state")
default:
    FileHandle.standardError.write(Data("--store is sqlite or postgres\n".utf8))
    exit(2)
}
let pki = try FleetPKI.loadOrCreate(in: store)
let service = FleetService(store: store, pki: pki, config: config)
let actor = AuditActor(name: "bench", kind: .cli)
let clock = ContinuousClock()

// Enroll N nodes exactly as `cox nodes enroll` does, each with its own key and CSR.
var nodeIDs: [String] = []
let ports = LoopbackPorts.free(count)
for i in 0..<count {
    let nodeDir = "\(dir)/fleet/\(String(format: "%05d", i))"
    try FileManager.default.createDirectory(atPath: nodeDir, withIntermediateDirectories: true)
    let key = P256.Signing.PrivateKey()
    let csr = try CertificateSigningRequest(version: .v1, subject: try DistinguishedName { CommonName("simulated") },
                                            privateKey: Certificate.PrivateKey(key), attributes: .init(),
                                            signatureAlgorithm: .ecdsaWithSHA256)
    let port = ports[i]
    let enrolled = try await service.enrollNode(csrPEM: try csr.serializeAsPEM().pemString, controlAddress: "127.0.0.1:\(port)",
                                                name: "sim-\(i)", region: "bench", by: actor)
    nodeIDs.append(enrolled.node.id)
    guard FileManager.default.createFile(atPath: "\(nodeDir)/node.key", contents: Data(key.pemRepresentation.utf8),
                                         attributes: [.posixPermissions: 0o600]) else { fatalError("cannot write node.key") }
    try enrolled.certificateChainPEM.write(toFile: "\(nodeDir)/node.crt", atomically: true, encoding: .utf8)
    try enrolled.rootPEM.write(toFile: "\(nodeDir)/ca.crt", atomically: true, encoding: .utf8)
    try "control:\n  listen_addr: 127.0.0.1:\(port)\ndataplane:\n  backend: memory\n  poll_seconds: 60\n"
        .write(toFile: "\(nodeDir)/node.yaml", atomically: true, encoding: .utf8)
}

let helper = Process()
helper.executableURL = URL(fileURLWithPath: nodeBench)
helper.arguments = ["fleet", "--dir", "\(dir)/fleet"]
let helperOut = Pipe()
helper.standardOutput = helperOut
try helper.run()
let readyLine = String(decoding: helperOut.fileHandleForReading.availableData, as: UTF8.self)
guard readyLine.hasPrefix("ready \(count)") else {
    FileHandle.standardError.write(Data("simulated fleet did not start: \(readyLine)\n".utf8))
    exit(1)
}

var logger = Logger(label: "cox.bench")
logger.logLevel = .error
let pool = try NodeClientPool(pki: pki)
let reconciler = FleetReconciler(store: store, pool: pool, config: config, logger: logger)

// First contact: connect to every node and cache its keys.
var t = clock.now
let first = await reconciler.sweep()
let firstSweep = clock.now - t
guard first.failed.isEmpty else { fatalError("first sweep failed on \(first.failed.count) nodes: \(first.failed.first!)") }

// Load: users whose profile specs cover 100 nodes each, 100 devices per user → 100 peers per node.
t = clock.now
for group in 0..<(count / peersPerNode) {
    let user = try await service.addUser(name: "load \(group)", email: "load\(group)@bench.example", by: actor)
    for n in 0..<peersPerNode {
        _ = try await service.createProfileSpec(user: user.id, name: "n\(n)", node: nodeIDs[group * peersPerNode + n],
                                                protocol: .amneziawg, by: actor)
    }
    for d in 0..<peersPerNode {
        _ = try await service.addDevice(user: user.id, name: "d\(d)",
                                        encryptionKey: Array(Curve25519.KeyAgreement.PrivateKey().publicKey.rawRepresentation), by: actor)
    }
}
let provisioning = clock.now - t

// Every node is now behind its intended revision: one sweep must heal them all.
t = clock.now
let healing = await reconciler.sweep()
let healingSweep = clock.now - t
t = clock.now
let steady = await reconciler.sweep()
let steadySweep = clock.now - t

// Device created → peer live on its 2 nodes.
let probe = try await service.addUser(name: "probe", email: "probe@bench.example", by: actor)
for target in [nodeIDs[0], nodeIDs[count / 2]] {
    _ = try await service.createProfileSpec(user: probe.id, name: target, node: target, protocol: .amneziawg, by: actor)
}
var latencies: [Double] = []
for i in 0..<200 {
    let start = clock.now
    let added = try await service.addDevice(user: probe.id, name: "p\(i)",
                                            encryptionKey: Array(Curve25519.KeyAgreement.PrivateKey().publicKey.rawRepresentation), by: actor)
    let outcomes = await reconciler.push(added.affectedNodes)
    latencies.append(milliseconds(clock.now - start))
    guard outcomes.count == 2, outcomes.values.allSatisfy({ if case .applied = $0 { true } else { false } }) else {
        fatalError("push failed: \(outcomes)")
    }
}
let sorted = latencies.sorted()
func percentile(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }

emit([("bench", .string("cox.device_to_peer_live")), ("store", .string(storeKind)), ("nodes", .integer(count)), ("affected_nodes", .integer(2)),
      ("peers_per_node", .integer(peersPerNode)), ("devices", .integer(latencies.count)),
      ("p50_ms", rounded(percentile(0.5), 100)), ("p99_ms", rounded(percentile(0.99), 100)), ("goal_p99_ms", .integer(50))])
emit([("bench", .string("cox.sweep")), ("store", .string(storeKind)), ("nodes", .integer(count)), ("peers_per_node", .integer(peersPerNode)),
      ("first_contact_ms", rounded(milliseconds(firstSweep))),
      ("healing_ms", rounded(milliseconds(healingSweep))), ("healed", .integer(healing.healed.count)),
      ("steady_ms", rounded(milliseconds(steadySweep))), ("steady_healed", .integer(steady.healed.count)),
      ("failed", .integer(healing.failed.count + steady.failed.count)), ("goal_ms", .integer(10_000))])
emit([("bench", .string("cox.rss")), ("store", .string(storeKind)), ("nodes", .integer(count)), ("connections", .integer(count)),
      ("rss_mib", rounded(Double(statusKiB("VmRSS")) / 1024)), ("peak_rss_mib", rounded(Double(statusKiB("VmHWM")) / 1024)),
      ("goal_mib", .integer(300))])
emit([("bench", .string("cox.provisioning")), ("store", .string(storeKind)), ("nodes", .integer(count)), ("devices", .integer(count / peersPerNode * peersPerNode)),
      ("peers", .integer(count * peersPerNode)), ("ms", rounded(milliseconds(provisioning)))])

// After the figures above: its rows must not weigh on their RSS.
// The anomaly sweep over a day of sessions: every load device connects and disconnects 20
// times from its own address over 24 h (no rule fires), 1 in 50 also from a second address
// within minutes (leaked_profile); then one sweep with every rule on, as `cox serve` runs it.
let loadDevices = try await store.read { tx in try tx.devices().filter { $0.name.hasPrefix("d") } }
let dayStart = StoreClock.now() - 86_400_000_000 + 60_000_000
var recorded = 0
for chunk in stride(from: 0, to: loadDevices.count, by: 100) {
    recorded += try await store.write { tx in
        var rows = 0
        for (offset, device) in loadDevices[chunk..<min(chunk + 100, loadDevices.count)].enumerated() {
            let index = chunk + offset
            guard let peer = try tx.peers(device: device.id).first else { continue }
            let home = "198.18.\(index / 250).\(index % 250 + 1)"
            for session in 0..<20 {
                let start = dayStart + Int64(session) * 4_200_000_000 + Int64(index % 60) * 1_000_000
                for (at, type, rx) in [(start, "connect", Int64(session) * 1000), (start + 1_800_000_000, "disconnect", Int64(session + 1) * 1000)] {
                    try tx.recordConnectionEvent(ConnectionEventInput(at: at, nodeID: peer.nodeID, peerID: peer.id, protocol: "amneziawg",
                                                                      eventType: type, sourceEndpoint: "\(home):51820", rxBytes: rx, txBytes: rx))
                    rows += 1
                }
            }
            if index % 50 == 0 {
                try tx.recordConnectionEvent(ConnectionEventInput(at: dayStart + 4_320_000_000, nodeID: peer.nodeID, peerID: peer.id,
                                                                  protocol: "amneziawg", eventType: "connect",
                                                                  sourceEndpoint: "203.0.113.\(index % 250 + 1):51820"))
                rows += 1
            }
        }
        return rows
    }
}
t = clock.now
let anomalies = try await AnomalyEngine.sweep(store, settings: AnomalySettings(), window: 86_400_000_000)
let anomalySweep = clock.now - t
t = clock.now
let anomaliesAgain = try await AnomalyEngine.sweep(store, settings: AnomalySettings(), window: 86_400_000_000)
let anomalyResweep = clock.now - t

emit([("bench", .string("cox.anomaly_sweep")), ("store", .string(storeKind)), ("devices", .integer(loadDevices.count)), ("events_24h", .integer(recorded)),
      ("rules", .integer(AnomalySettings().enabledRules(geoIP: false).count)), ("first_ms", rounded(milliseconds(anomalySweep))),
      ("alerts_opened", .integer(anomalies.count)), ("repeat_ms", rounded(milliseconds(anomalyResweep))),
      ("repeat_opened", .integer(anomaliesAgain.count))])

await pool.shutdown()
helper.terminate()
helper.waitUntilExit()
