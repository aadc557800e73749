import Foundation
import Logging
import PharosProto
import PharosTestSupport
import ServiceLifecycle
import Testing
@testable import Coxswain

/// The SIEM stream on a real TLS port, consumed by an independent client: Python's grpcio
/// (Debian python3-grpcio) with message classes protoc generates from the .proto files. Real
/// openssl checks the chain the port presents; the events come from the real recorder and
/// anomaly sweep on SQLite.
@Suite struct SIEMStreamTests {
    static let python = "/usr/bin/python3"
    static let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let logger = Logger(label: "siem.test")

    /// A consumer process; `finish` waits for it (at most `timeout`) and returns what it printed.
    struct Consumer {
        let process: Process
        let output: Pipe

        func finish(timeout: Duration = .seconds(30)) async throws -> (status: Int32, lines: [String]) {
            let deadline = ContinuousClock.now + timeout
            while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            return (process.terminationStatus, text.split(separator: "\n").map(String.init))
        }
    }

    static func consume(port: Int, root: String, token: String, kinds: String = "", count: Int = 1) throws -> Consumer {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [package.appendingPathComponent("Tests/SIEM/monitor_client.py").path, "--address", "127.0.0.1:\(port)",
                             "--root", root, "--protos", package.appendingPathComponent("../protocol-spec/Protos").standardized.path,
                             "--kinds", kinds, "--count", "\(count)", "--timeout", "60"]
        let (input, output) = (Pipe(), Pipe())
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data("\(token)\n".utf8))  // the token goes on stdin, never argv
        try input.fileHandleForWriting.close()
        return Consumer(process: process, output: output)
    }

    static func openssl(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try Tool.run("/usr/bin/openssl", arguments)
    }

    static func until(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while !condition() {
            guard ContinuousClock.now < deadline else { Issue.record("timed out waiting for \(what)"); return }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    static func json(_ line: String?) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data((line ?? "").utf8))) as? [String: Any] ?? [:]
    }

    @Test func aGrpcioConsumerWithAMonitorTokenGetsSessionsAndAlertsAndNobodyElseDoes() async throws {
        try #require(try Tool.run(Self.python, ["-c", "import grpc, google.protobuf"]).status == 0,
                     "the SIEM test needs Debian's python3-grpcio and python3-protobuf (make deps)")

        var config = CoxConfig()
        config.siemListen = "127.0.0.1:0"
        let state = try TestState(config: config)
        let live = LiveHub()
        let admin = AdminService(fleet: state.service)
        let monitor = try await admin.createToken(name: "siem", scope: .monitor, lifetime: nil, by: state.actor)
        let readonly = try await admin.createToken(name: "dashboard", scope: .readonly, lifetime: nil, by: state.actor)
        let doomed = try await admin.createToken(name: "old-siem", scope: .monitor, lifetime: nil, by: state.actor)
        let ports = AsyncStream.makeStream(of: Int.self)
        let listener = MonitorListener(pki: state.pki, config: config, socketPath: "\(state.dir)/state/monitor.sock",
                                       service: MonitorStreamService(live: live, admin: admin, logger: Self.logger, recheck: .milliseconds(100)),
                                       logger: Self.logger, ready: { ports.continuation.yield($0) })
        let group = ServiceGroup(services: [listener], logger: Self.logger)
        let run = Task { try await group.run() }
        var iterator = ports.stream.makeAsyncIterator()
        let port = try #require(await iterator.next())
        let root = "\(state.dir)/root.pem"
        try state.pki.authority.root.certificate.pemString().write(toFile: root, atomically: true, encoding: .utf8)

        // openssl: the port presents a chain to our root, TLS 1.3, for the names it was issued for only.
        let good = try Self.openssl(["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", root, "-verify_hostname", "localhost",
                                     "-verify_return_error", "-alpn", "h2", "-brief"])
        #expect(good.status == 0 && good.output.contains("Verification: OK") && good.output.contains("TLSv1.3"), "\(good.output)")
        let misnamed = try Self.openssl(["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", root, "-verify_hostname", "siem.example.org",
                                         "-verify_return_error", "-brief"])
        #expect(misnamed.status != 0, "a name the leaf was not issued for verified: \(misnamed.output)")
        let old = try Self.openssl(["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", root, "-tls1_2", "-brief"])
        #expect(old.status != 0, "TLS 1.2 was accepted: \(old.output)")

        // Refused: no token, an unknown one, a readonly one, an unknown kind; and a consumer
        // that trusts another root (a server in the middle) does not talk to ours.
        let other = try TestState()
        let otherRoot = "\(state.dir)/other-root.pem"
        try other.pki.authority.root.certificate.pemString().write(toFile: otherRoot, atomically: true, encoding: .utf8)
        let refusals: [(token: String, kinds: String, root: String, status: String)] = [
            ("", "", root, "UNAUTHENTICATED"),
            ("cox_mon_" + String(repeating: "A", count: 43), "", root, "UNAUTHENTICATED"),
            (readonly.secret, "", root, "PERMISSION_DENIED"),
            (monitor.secret, "connect,handshake", root, "INVALID_ARGUMENT"),
            (monitor.secret, "", otherRoot, "UNAVAILABLE"),
        ]
        for refusal in refusals {
            let out = try await Self.consume(port: port, root: refusal.root, token: refusal.token, kinds: refusal.kinds).finish()
            #expect(out.status == 2 && out.lines.last?.hasPrefix("ERROR \(refusal.status)") == true, "\(refusal.status): \(out.lines)")
        }
        #expect(live.counters.subscribers == 0, "a refused consumer was subscribed")

        // The real recorder and sweep: one device key from two addresses, then a disconnect.
        let (node, device, peer) = try await state.deviceWithPeer()
        let consumer = try Self.consume(port: port, root: root, token: monitor.secret, kinds: "disconnect,alert", count: 2)
        let revoked = try Self.consume(port: port, root: root, token: doomed.secret, kinds: "alert", count: 100)
        try await Self.until("two subscribers") { live.counters.subscribers == 2 }

        let recorder = ConnectionEventRecorder(nodeID: node.id, store: state.store, live: live)
        let now = StoreClock.now() / 1_000_000
        func event(_ type: Pharos_Node_V1_EventType, from endpoint: String, second: Int64, rx: Int64, tx: Int64) -> Pharos_Node_V1_Event {
            var e = Pharos_Node_V1_Event()
            (e.type, e.protocol, e.peerID, e.sourceEndpoint) = (type, .amneziawg, peer.id, endpoint)
            (e.at, e.rxBytes, e.txBytes) = (.init(seconds: now + second, nanos: 0), rx, tx)
            return e
        }
        try await recorder.ingest(event(.peerConnected, from: "203.0.113.5:51000", second: -30, rx: 1000, tx: 10))
        try await recorder.ingest(event(.peerConnected, from: "198.51.100.9:40000", second: -20, rx: 2000, tx: 10))
        try await recorder.ingest(event(.peerDisconnected, from: "198.51.100.9:40000", second: -10, rx: 7000, tx: 110))
        for alert in try await AnomalyEngine.sweep(state.store, settings: AnomalySettings(), window: 3_600_000_000) {
            live.publish(.alert(alert))
        }
        let out = try await consumer.finish()
        #expect(out.status == 0 && out.lines.count == 2, "\(out.lines)")
        let disconnect = Self.json(out.lines.first), session = disconnect["session"] as? [String: Any] ?? [:]
        #expect(disconnect["type"] as? String == "disconnect" && session["device_id"] as? String == device.id, "\(disconnect)")
        #expect(session["rx_bytes"] as? String == "5000" && session["tx_bytes"] as? String == "100", "the session's bytes: \(session)")
        #expect(session["protocol"] as? String == "AMNEZIAWG" && session["source_ip"] as? String == "198.51.100.9"
                && session["node_id"] as? String == node.id && session["user_id"] as? String == device.userID)
        let alert = Self.json(out.lines.last), body = alert["alert"] as? [String: Any] ?? [:]
        #expect(alert["type"] as? String == "alert" && body["kind"] as? String == "leaked_profile" && body["severity"] as? String == "critical")
        #expect(body["source_ips"] as? [String] == ["203.0.113.5", "198.51.100.9"] && body["device_id"] as? String == device.id,
                "\(body)")

        // A token revoked while its stream runs loses it, also when no event flows (the
        // stream's next check is at most 100 ms away in this test).
        _ = try await admin.revokeToken(doomed.token.id, by: state.actor)
        let cut = try await revoked.finish(timeout: .seconds(10))
        #expect(cut.lines.count == 2 && cut.lines.last?.hasPrefix("ERROR UNAUTHENTICATED") == true, "\(cut.lines)")
        #expect(Self.json(cut.lines.first)["type"] as? String == "alert", "it had its alert before")

        // Shutdown is not held up by a consumer still attached.
        let lingering = try Self.consume(port: port, root: root, token: monitor.secret, count: 100)
        try await Self.until("the lingering subscriber") { live.counters.subscribers == 1 }
        let started = ContinuousClock.now
        await group.triggerGracefulShutdown()
        try await run.value
        #expect(ContinuousClock.now - started < .seconds(10), "shutdown took \(ContinuousClock.now - started)")
        #expect(try await lingering.finish().status == 2)
    }
}
