// `make bench` for the relay. One run, same client, same payloads, three paths to the same
// grpc-swift echo service (on a Unix socket):
//   direct  — the client on the service's socket (plaintext h2, the floor)
//   relay   — TLS to `relay run` (a separate process), over the remote tunnel the controller dials
//   nginx   — TLS to Debian's nginx, `grpc_pass` to the same socket
// Then: 10,000 concurrent open streams through the relay, and 2,000 idle TCP connections
// (never sending a byte) against it, with the relay's RSS after each. Prints JSON lines.
import EchoFixture
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import PharosSpec
import PharosTLS
import PharosTestSupport
import Relay
#if canImport(Glibc)
import Glibc
#endif

func emit(_ fields: [(String, JSONValue)]) {
    FileHandle.standardOutput.write(Data(JSONValue.object(fields.map { JSONMember($0.0, $0.1) }).compactBytes() + [10]))
}
func rounded(_ value: Double, _ places: Double = 100) -> JSONValue { .double((value * places).rounded() / places) }
func ms(_ d: Duration) -> Double { Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15 }
func rssMiB(_ pid: Int32) -> Double {
    let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
    for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) } ?? 0) / 1024
    }
    return 0
}
var limit = rlimit()
getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
limit.rlim_cur = limit.rlim_max
setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)

let seconds = Int(ProcessInfo.processInfo.environment["RELAY_BENCH_SECONDS"] ?? "5") ?? 5
let concurrency = 32
let dir = "/tmp/relaybench-\(UUID().uuidString.prefix(6))"
try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: dir) }
let socketPath = "\(dir)/coxswain.sock"
var logger = Logger(label: "relay.bench")
logger.logLevel = .warning

// PKI and the relay's config dir, as `cox relays enroll` would leave it.
let pki = try TestPKI()
let relayLeaf = try pki.leaf(commonName: "PharosVPN Relay", organization: "PharosVPN Relay", usage: [.serverAuth, .clientAuth])
let deviceLeaf = try pki.leaf(commonName: "dev_bench", organization: "PharosVPN Device", usage: [.clientAuth], issuer: .device)
let controllerLeaf = try pki.leaf(commonName: "coxswain-controller", organization: "PharosVPN", usage: [.clientAuth])
try relayLeaf.write(to: dir, name: "relay")
try pki.rootPEM.write(toFile: "\(dir)/ca.crt", atomically: true, encoding: .utf8)
try pki.device.pemString().write(toFile: "\(dir)/device-ca.crt", atomically: true, encoding: .utf8)
try (pki.device.pemString() + pki.rootPEM).write(toFile: "\(dir)/client-cas.crt", atomically: true, encoding: .utf8)
let ports = LoopbackPorts.free(3)
let (relayClientPort, relayTunnelPort, nginxPort) = (ports[0], ports[1], ports[2])
try ("client:\n  listen_addr: 127.0.0.1:\(relayClientPort)\ntunnel:\n  listen_addr: 127.0.0.1:\(relayTunnelPort)\nlog:\n  level: warning\n"
    + "limits:\n  max_streams_per_connection: 128\n")
    .write(toFile: "\(dir)/relay.yaml", atomically: true, encoding: .utf8)

// The service.
// The tunnel carries every client stream on one connection: the service behind it must allow
// more concurrent streams than NIO's default of 100, and the relay's keepalive PINGs every
// 20 s on an idle tunnel (grpc-swift's default counts those as strikes and closes the
// connection). coxswain's AccountSync server needs the same settings.
let server = GRPCServer(transport: HTTP2ServerTransport.Posix(
    address: .unixDomainSocket(path: socketPath), transportSecurity: .plaintext,
    config: .defaults {
        $0.http2.maxConcurrentStreams = 20_000
        $0.connection.keepalive.clientBehavior = .init(minPingIntervalWithoutCalls: .seconds(10), allowWithoutCalls: true)
    }),
                        services: [EchoService()])
let serverTask = Task { try await server.serve() }
while !FileManager.default.fileExists(atPath: socketPath) { try await Task.sleep(for: .milliseconds(20)) }

// The relay, a separate process, and the controller's tunnel into it.
let relayBinary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("relay").path
let relay = Process()
relay.executableURL = URL(fileURLWithPath: relayBinary)
relay.arguments = ["run", "--config-dir", dir]
try relay.run()
let dialer = TunnelDialer(host: "127.0.0.1", port: relayTunnelPort, serverName: "localhost", identity: try controllerLeaf.identity(),
                          roots: try pki.roots(), socketPath: socketPath, logger: logger)
let dialerTask = Task { await dialer.run() }
// The relay process needs a moment to listen, and the dialer backs off after a refused try:
// measure nothing through the relay before its tunnel is up.
for _ in 0..<600 where !dialer.isConnected { try await Task.sleep(for: .milliseconds(100)) }
guard dialer.isConnected else {
    emit([("bench", .string("relay.unary")), ("error", .string("the controller's tunnel to the relay did not come up in 60 s"))])
    exit(1)
}

// nginx with the same certificate, grpc_pass to the same socket.
// As root, nginx's workers would drop to www-data, which cannot open the service's socket.
let nginxUser = geteuid() == 0 ? "user root;" : ""
let nginxConf = """
    \(nginxUser) daemon off; worker_processes 1; pid \(dir)/nginx.pid; error_log \(dir)/nginx.err info;
    events { worker_connections 4096; }
    http {
      access_log off; keepalive_requests 100000000; http2_max_concurrent_streams 128;
      server {
        listen 127.0.0.1:\(nginxPort) ssl http2;
        ssl_certificate \(dir)/relay.crt; ssl_certificate_key \(dir)/relay.key;
        ssl_client_certificate \(dir)/client-cas.crt; ssl_verify_client optional; ssl_verify_depth 2;
        location / { grpc_pass grpc://unix:\(socketPath); }
      }
    }
    """
try nginxConf.write(toFile: "\(dir)/nginx.conf", atomically: true, encoding: .utf8)
let nginx = Process()
nginx.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
nginx.arguments = ["-c", "\(dir)/nginx.conf", "-p", dir, "-e", "\(dir)/nginx.err"]
let haveNginx = FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx")
if haveNginx { try nginx.run() }

enum Target: String { case direct, relay, nginx }

func transport(_ target: Target) throws -> HTTP2ClientTransport.Posix {
    if target == .direct {
        return try HTTP2ClientTransport.Posix(target: .unixDomainSocket(path: socketPath), transportSecurity: .plaintext)
    }
    let rootPEM = try pki.rootPEM
    let chain = PEM.decodeAll(type: "CERTIFICATE", from: deviceLeaf.certificatePEM).map { TLSConfig.CertificateSource.bytes($0, format: .der) }
    return try HTTP2ClientTransport.Posix(
        target: .ipv4(address: "127.0.0.1", port: target == .relay ? relayClientPort : nginxPort),
        transportSecurity: .mTLS(certificateChain: chain, privateKey: .bytes(Array(deviceLeaf.keyPEM.utf8), format: .pem)) {
            $0.trustRoots = .certificates([.bytes(Array(rootPEM.utf8), format: .pem)])
        })
}

func call(_ client: GRPCClient<HTTP2ClientTransport.Posix>, _ payload: [UInt8]) async throws {
    _ = try await client.unary(request: ClientRequest(message: payload), descriptor: Echo.unary, serializer: RawSerializer(),
                               deserializer: RawDeserializer(), options: .defaults) { try $0.message }
}

/// One caller, one call at a time: the latency a path adds when nothing queues.
func unloaded(_ target: Target, calls: Int = 3000) async throws -> (p50: Double, p99: Double) {
    try await withGRPCClient(transport: try transport(target)) { client in
        let payload = [UInt8](repeating: 42, count: 100)
        for _ in 0..<300 { try await call(client, payload) }  // warm-up
        var latencies: [Double] = []
        let clock = ContinuousClock()
        for _ in 0..<calls {
            let t = clock.now
            try await call(client, payload)
            latencies.append(ms(clock.now - t))
        }
        latencies.sort()
        func p(_ q: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * q))] }
        return (p(0.5), p(0.99))
    }
}

/// `concurrency` callers doing unary echoes of 100 bytes for `seconds` over one connection.
func load(_ target: Target) async throws -> (rps: Double, p50: Double, p99: Double, calls: Int) {
    try await withGRPCClient(transport: try transport(target)) { client in
        let payload = [UInt8](repeating: 42, count: 100)
        var reachable = false
        for _ in 0..<100 where !reachable {
            reachable = (try? await call(client, payload)) != nil
            if !reachable { try await Task.sleep(for: .milliseconds(100)) }
        }
        for _ in 0..<500 { try await call(client, payload) }  // warm-up
        let clock = ContinuousClock()
        let end = clock.now + .seconds(seconds)
        let start = clock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var mine: [Double] = []
                    while clock.now < end {
                        let t = clock.now
                        try await call(client, payload)
                        mine.append(ms(clock.now - t))
                    }
                    return mine
                }
            }
            var all: [Double] = []
            for try await part in group { all += part }
            return all.sorted()
        }
        let elapsed = ms(clock.now - start) / 1000
        func p(_ q: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * q))] }
        return (Double(latencies.count) / elapsed, p(0.5), p(0.99), latencies.count)
    }
}

var results: [Target: (rps: Double, p50: Double, p99: Double, calls: Int)] = [:]
for target in haveNginx ? [Target.direct, .relay, .nginx] : [.direct, .relay] {
    let r: (rps: Double, p50: Double, p99: Double, calls: Int)
    do { r = try await load(target) } catch {
        let log = (try? String(contentsOfFile: "\(dir)/nginx.err", encoding: .utf8)) ?? ""
        emit([("bench", .string("relay.unary")), ("path", .string(target.rawValue)), ("error", .string("\(error)")),
              ("nginx_log", .string(String(log.suffix(600))))])
        continue
    }
    results[target] = r
    emit([("bench", .string("relay.unary")), ("path", .string(target.rawValue)), ("concurrency", .integer(concurrency)),
          ("seconds", .integer(seconds)), ("calls", .integer(r.calls)), ("rps", rounded(r.rps, 1)),
          ("p50_ms", rounded(r.p50)), ("p99_ms", rounded(r.p99))])
}
if let relayResult = results[.relay], let direct = results[.direct] {
    var fields: [(String, JSONValue)] = [("bench", .string("relay.ratios")),
                                         ("added_p99_ms_vs_direct", rounded(relayResult.p99 - direct.p99)), ("goal_added_p99_ms", .integer(1))]
    if let nginxResult = results[.nginx] {
        fields += [("relay_vs_nginx_rps", rounded(relayResult.rps / nginxResult.rps)), ("goal_relay_vs_nginx_rps", .double(0.8)),
                   ("nginx_added_p99_ms_vs_direct", rounded(nginxResult.p99 - direct.p99))]
    } else {
        fields.append(("nginx", .string(haveNginx ? "failed (see its line)" : "not installed: apt-get install nginx")))
    }
    emit(fields)
}

// Latency without load: one call in flight, same payload, each path.
var quiet: [Target: (p50: Double, p99: Double)] = [:]
for target in haveNginx ? [Target.direct, .relay, .nginx] : [.direct, .relay] {
    guard let r = try? await unloaded(target) else { continue }
    quiet[target] = r
    emit([("bench", .string("relay.unary_unloaded")), ("path", .string(target.rawValue)), ("concurrency", .integer(1)),
          ("p50_ms", rounded(r.p50, 1000)), ("p99_ms", rounded(r.p99, 1000))])
}
if let relayQuiet = quiet[.relay], let directQuiet = quiet[.direct] {
    var fields: [(String, JSONValue)] = [("bench", .string("relay.added_latency_unloaded")),
                                         ("added_p50_ms_vs_direct", rounded(relayQuiet.p50 - directQuiet.p50, 1000)),
                                         ("added_p99_ms_vs_direct", rounded(relayQuiet.p99 - directQuiet.p99, 1000)),
                                         ("goal_added_p99_ms", .integer(1))]
    if let nginxQuiet = quiet[.nginx] {
        fields.append(("nginx_added_p99_ms_vs_direct", rounded(nginxQuiet.p99 - directQuiet.p99, 1000)))
    }
    emit(fields)
}

// 10,000 concurrent open streams through the relay: 100 connections × 100 streams, each a
// server-streaming call that has answered once and then stays open.
let idleRSS = rssMiB(relay.processIdentifier)
let gate = Gate()
let streamTarget = Target(rawValue: ProcessInfo.processInfo.environment["RELAY_BENCH_STREAM_TARGET"] ?? "relay") ?? .relay
let streamsPerClient = Int(ProcessInfo.processInfo.environment["RELAY_BENCH_STREAMS_PER_CONNECTION"] ?? "100") ?? 100
let clients = Int(ProcessInfo.processInfo.environment["RELAY_BENCH_STREAM_CONNECTIONS"] ?? "100") ?? 100
let opened = try await withThrowingTaskGroup(of: Void.self) { outer in
    for _ in 0..<clients {
        outer.addTask {
            try await withGRPCClient(transport: try transport(streamTarget)) { client in
                await withTaskGroup(of: Void.self) { group in
                    for _ in 0..<streamsPerClient {
                        group.addTask {
                            _ = try? await client.serverStreaming(request: ClientRequest(message: [UInt8]()), descriptor: Echo.hang,
                                                                  serializer: RawSerializer(), deserializer: RawDeserializer(),
                                                                  options: .defaults) { response in
                                for try await _ in response.messages { await gate.started() }
                            }
                        }
                    }
                    await gate.waitForRelease()
                    group.cancelAll()
                }
            }
        }
    }
    // Up to 60 s for every stream to have answered once; report what was reached.
    let deadline = ContinuousClock.now + .seconds(60)
    while await gate.count < clients * streamsPerClient, ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(200))
    }
    let open = await gate.count
    emit([("bench", .string("relay.open_streams")), ("target_streams", .integer(streamsPerClient * clients)),
          ("open_streams", .integer(open)), ("connections", .integer(clients)),
          ("relay_rss_mib", rounded(rssMiB(relay.processIdentifier), 10)), ("relay_rss_before_mib", rounded(idleRSS, 10)),
          ("goal_mib", .integer(512))])
    await gate.release()
    try await outer.waitForAll()
    return open
}
_ = opened

// 2,000 idle TCP connections that never send a byte, then a call must still be served.
var idle: [Int32] = []
for _ in 0..<2000 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(relayClientPort).bigEndian
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    idle.append(fd)
}
try await Task.sleep(for: .milliseconds(500))
let clock = ContinuousClock()
let t = clock.now
// Mass cancellation of the open streams can make the service close the shared tunnel (its
// RST rate limit); the dialer brings it back, so retry for up to 90 s and say how long it took.
var served = false
for _ in 0..<90 where !served {
    served = (try? await withGRPCClient(transport: try transport(.relay)) { client in try await call(client, [1]) }) != nil
    if !served { try await Task.sleep(for: .seconds(1)) }
}
emit([("bench", .string("relay.idle_connections")), ("connections", .integer(idle.count)),
      ("relay_rss_mib", rounded(rssMiB(relay.processIdentifier), 10)), ("served", .bool(served)),
      ("first_call_ms", rounded(ms(clock.now - t))),
      ("note", .string("unhandshaken connections are closed after 10 s"))])
idle.forEach { close($0) }

dialerTask.cancel()
await dialerTask.value
relay.terminate()
relay.waitUntilExit()
if haveNginx {
    nginx.terminate()
    nginx.waitUntilExit()
}
server.beginGracefulShutdown()
serverTask.cancel()
_ = await serverTask.result

/// Counts streams that have answered and holds them open until the RSS has been read.
actor Gate {
    private(set) var count = 0
    private var released = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func started() { count += 1 }
    func waitForRelease() async {
        if released { return }
        await withCheckedContinuation { waiting.append($0) }
    }
    func release() {
        released = true
        waiting.forEach { $0.resume() }
        waiting.removeAll()
    }
}
