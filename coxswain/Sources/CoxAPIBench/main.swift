// `make bench` for the admin API: a controller state with 1,000 nodes and 100,000 audit rows
// (real SQLite file, real hash chain), the admin API on a loopback socket, and
//   - GET /api/nodes and GET /api/audit latency over one keep-alive connection (p50/p99;
//     default page and the largest page), goal p99 ≤ 50 ms;
//   - WebSocket fan-out: 1,000 events/s for 5 s to 50 subscribers on /ws/events (delivered,
//     dropped, publish → receive latency p50/p99);
//   - `cox backup` of that state and `cox restore` of it into another directory
//     (passphrase KDF included: Argon2id t=1, m=64 MiB, p=4).
// Prints JSON lines. Usage: cox-api-bench [--nodes 1000] [--audit-rows 100000] [--subscribers 50]
import Foundation
import HummingbirdWSClient
import Logging
import PharosSpec
import PharosTestSupport
import Synchronization
import Coxswain

func argument(_ name: String) -> String? {
    guard let i = CommandLine.arguments.firstIndex(of: name), i + 1 < CommandLine.arguments.count else { return nil }
    return CommandLine.arguments[i + 1]
}

func emit(_ fields: [(String, JSONValue)]) {
    FileHandle.standardOutput.write(Data(JSONValue.object(fields.map { JSONMember($0.0, $0.1) }).compactBytes() + [10]))
}

func milliseconds(_ d: Duration) -> Double { Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15 }
func rounded(_ value: Double, _ places: Double = 100) -> JSONValue { .double((value * places).rounded() / places) }
func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

/// 20 warm-up requests, then 300 timed ones, in sequence on one keep-alive connection.
func latencies(port: Int, path: String, headers: [(String, String)]) async throws -> [Double] {
    try await HTTPTestClient.withConnection(port: port) { connection -> [Double] in
        for _ in 0..<20 { _ = try await connection.send("GET", path, headers: headers) }
        var samples: [Double] = []
        for _ in 0..<300 {
            let start = ContinuousClock.now
            let response = try await connection.send("GET", path, headers: headers)
            samples.append(milliseconds(ContinuousClock.now - start))
            guard response.status == 200 else { fatalError("\(path): \(response.status) \(response.text)") }
        }
        return samples
    }
}

func rssMiB() -> Double {
    let text = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0").map { $0 / 1024 } ?? 0
    }
    return 0
}

let nodeCount = Int(argument("--nodes") ?? "1000") ?? 1000
let auditRows = Int(argument("--audit-rows") ?? "100000") ?? 100_000
let subscriberCount = Int(argument("--subscribers") ?? "50") ?? 50
let clock = ContinuousClock()

let dir = "/tmp/cox-api-bench-\(UUID().uuidString.prefix(6))"
defer { try? FileManager.default.removeItem(atPath: dir) }
var config = CoxConfig()
config.uiListen = "127.0.0.1:0"
config.accountsSync = false
let store = try Store.open(path: "\(dir)/state/app.db")
let pki = try FleetPKI.loadOrCreate(in: store)
let service = FleetService(store: store, pki: pki, config: config)
let controller = Controller(config: config, store: store, pki: pki, service: service)
let actor = AuditActor(name: "bench", kind: .cli, sourceIP: "local")

// Seed: node rows as enrolled and polled, and the audit chain (each row hashed onto the last).
var t = clock.now
let now = StoreClock.now()
for i in 0..<nodeCount {
    try store.executeRawForTesting("""
        INSERT INTO nodes (id, name, region, public_ip, control_addr, status, agent_version, wg_public_key, wg_obfuscation,
                           config_revision, applied_revision, last_seen_at, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, 'active', 'node 0.1.0', ?, '{}', 7, 7, ?, ?, ?)
        """, [EntityID.make(.node), String(format: "node-%05d", i), ["eu", "us", "ap"][i % 3], "198.51.100.\(i % 250)",
              "198.51.100.\(i % 250):\(8444 + i / 250)", "k\(i)", now, now, now])
}
for batch in stride(from: 0, to: auditRows, by: 5000) {
    try await store.write { tx in
        for i in batch..<min(auditRows, batch + 5000) {
            try tx.appendAudit(AuditEntry(action: ["node.update", "user.add", "device.add", "profile.create"][i % 4], targetType: "node",
                                          targetID: "nod_\(i)", detail: "{\"n\":\(i)}"), by: actor)
        }
    }
}
let seeding = clock.now - t

let logger = Logger(label: "cox.api.bench", factory: { _ in SwiftLogNoOpLogHandler() })
let admin = AdminService(fleet: service)
let token = try await admin.createToken(name: "bench", scope: .admin, lifetime: nil, by: actor).secret
let live = LiveHub(bufferSize: 4096)
let api = try AdminAPI(controller: controller, admin: admin, accounts: AccountService(fleet: service), live: live,
                       metrics: ControllerMetrics(), relayTier: nil, logger: logger)
let bound = Mutex<Int?>(nil)
let server = Task { try await api.application(host: "127.0.0.1", port: 0) { port in bound.withLock { $0 = port } }.run() }
while bound.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(10)) }
let port = bound.withLock { $0 }!
emit([("bench", .string("cox.api.seed")), ("nodes", .integer(nodeCount)), ("audit_rows", .integer(auditRows)),
      ("seconds", rounded(milliseconds(seeding) / 1000, 10))])

// Latency: one keep-alive connection, requests in sequence, after a warm-up.
let auth = [("Authorization", "Bearer \(token)")]
for (path, label) in [("/api/nodes", "nodes_default_page"), ("/api/nodes?limit=1000", "nodes_all_1000"),
                      ("/api/audit", "audit_default_page"), ("/api/audit?limit=1000", "audit_1000_rows"),
                      ("/api/audit?action=user.add", "audit_filtered")] {
    let samples = try await latencies(port: port, path: path, headers: auth)
    emit([("bench", .string("cox.api.latency")), ("request", .string("GET \(path)")), ("case", .string(label)),
          ("nodes", .integer(nodeCount)), ("audit_rows", .integer(auditRows)), ("requests", .integer(samples.count)),
          ("p50_ms", rounded(percentile(samples, 0.5))), ("p99_ms", rounded(percentile(samples, 0.99))), ("goal_p99_ms", .integer(50))])
}

// Fan-out: every subscriber counts what it gets and how late (publish time rides in `message`).
struct Tally: Sendable { var received = 0; var latencies: [Double] = [] }
final class Subscriber: Sendable { let tally = Mutex(Tally()) }
let tallies = (0..<subscriberCount).map { _ in Subscriber() }
var subscribers: [Task<Void, any Error>] = []
for tally in tallies {
    subscribers.append(Task {
        _ = try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/ws/events",
                                              configuration: .init(additionalHeaders: [.authorization: "Bearer \(token)"]),
                                              logger: logger) { inbound, _, _ in
            for try await message in inbound.messages(maxSize: 1 << 16) {
                guard case .text(let text) = message, let range = text.range(of: "\"message\":\"") else { continue }
                let sent = Int64(text[range.upperBound...].prefix { $0 != "\"" }) ?? 0
                let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
                tally.tally.withLock { $0.received += 1; $0.latencies.append(Double(now - sent) / 1000) }
            }
        }
    })
}
for _ in 0..<200 where live.counters.subscribers < subscriberCount { try await Task.sleep(for: .milliseconds(25)) }
let perSecond = 1000, seconds = 5
let publishStart = clock.now
for tick in 0..<(perSecond * seconds / 10) {
    for i in 0..<10 {
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
        live.publish(.node(.init(nodeID: "nod_bench", at: now, type: "HANDSHAKE_UP", protocol: "amneziawg",
                                 peerID: "per_\(tick * 10 + i)", message: "\(now)")))
    }
    try await Task.sleep(until: publishStart + .milliseconds(10 * (tick + 1)), clock: clock)
}
let published = perSecond * seconds
for _ in 0..<100 where tallies.contains(where: { $0.tally.withLock { $0.received } < published }) { try await Task.sleep(for: .milliseconds(50)) }
let counts = tallies.map { $0.tally.withLock { $0.received } }
let latencies = tallies.flatMap { $0.tally.withLock { $0.latencies } }
emit([("bench", .string("cox.api.ws_fanout")), ("subscribers", .integer(subscriberCount)), ("events_per_second", .integer(perSecond)),
      ("events", .integer(published)), ("delivered_min", .integer(counts.min() ?? 0)), ("delivered_total", .integer(counts.reduce(0, +))),
      ("dropped", .integer(Int(live.counters.dropped))), ("p50_ms", rounded(percentile(latencies, 0.5))),
      ("p99_ms", rounded(percentile(latencies, 0.99))), ("rss_mib", rounded(rssMiB(), 10))])
for subscriber in subscribers { subscriber.cancel() }
server.cancel()
_ = await server.result

// Backup and restore of the same state.
try CoxConfig.writeInitial(config, to: "\(dir)/cox.yaml", force: false)
let passphrase = Array("bench passphrase, long enough".utf8)
_ = FileManager.default.createFile(atPath: "\(dir)/fleet.backup", contents: nil, attributes: [.posixPermissions: 0o600])
let backupFile = FileHandle(forWritingAtPath: "\(dir)/fleet.backup")!
t = clock.now
let written = try ControllerBackup.write(store: store, caFingerprint: try pki.authority.fingerprint,
                                         configBytes: Array(try Data(contentsOf: URL(fileURLWithPath: "\(dir)/cox.yaml"))),
                                         passphrase: passphrase, to: backupFile)
let backupTime = clock.now - t
try backupFile.close()
t = clock.now
let restored = try RestorePlan(backup: "\(dir)/fleet.backup", configPath: "\(dir)/restored/cox.yaml", stateDir: nil, environment: [:])
    .run(passphrase: passphrase)
let restoreTime = clock.now - t
guard restored.nodes == nodeCount else { fatalError("restored \(restored.nodes) nodes, not \(nodeCount)") }
emit([("bench", .string("cox.backup")), ("nodes", .integer(nodeCount)), ("audit_rows", .integer(auditRows)),
      ("database_mib", rounded(Double(written.databaseBytes) / 1_048_576, 10)), ("backup_mib", rounded(Double(written.bytes) / 1_048_576, 10)),
      ("backup_ms", rounded(milliseconds(backupTime), 1)), ("restore_ms", rounded(milliseconds(restoreTime), 1))])
