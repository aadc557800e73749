import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import PharosRuntime
import PharosTestSupport
import Synchronization
import Testing
@testable import Coxswain

/// Two `cox serve` on one PostgreSQL database (#22), with two real nodes: the first to start
/// leads; the leader is SIGKILLed while 1,000 devices are being added through the other's
/// admin API; the other takes the lease, pushes what a third party commits (LISTEN/NOTIFY),
/// and the fleet converges on every committed device with one verifiable audit chain.
/// Runs in `make test-postgres` (the store must be PostgreSQL); part of the fleet suite, whose
/// tests share the node processes' interface names and so run one at a time.
extension FleetIntegrationTests {
    /// One `cox serve` process with its own state directory and admin port.
    final class ServeProcess: @unchecked Sendable {
        let name: String
        let dir: String
        let port: Int
        let process = ChildProcess()

        init(name: String, fleet: Fleet, postgres: PostgresStoreConfiguration) throws {
            self.name = name
            dir = "\(fleet.state.dir)/\(name)"
            port = LoopbackPorts.free()[0]
            try FileManager.default.createDirectory(atPath: "\(dir)/state", withIntermediateDirectories: true)
            let dsn = "postgres://\(postgres.user):\(postgres.password)@\(postgres.host):\(postgres.port)/\(postgres.database)\n"
            #expect(FileManager.default.createFile(atPath: "\(dir)/state/postgres.dsn", contents: Data(dsn.utf8),
                                                   attributes: [.posixPermissions: 0o600]))
            try """
                backend: postgres
                state_dir: ./state
                ui:
                  listen: "127.0.0.1:\(port)"
                accounts:
                  sync: false
                relay:
                  embedded: false
                analytics:
                  disabled: true
                fleet:
                  reconcile_interval: 30
                  node_call_timeout_seconds: 3

                """.write(toFile: "\(dir)/cox.yaml", atomically: true, encoding: .utf8)
        }

        func start() throws {
            _ = FileManager.default.createFile(atPath: "\(dir)/serve.log", contents: nil)
            let log = FileHandle(forWritingAtPath: "\(dir)/serve.log")
            try process.start(TestBinaries.path("cox", package: "coxswain"), arguments: ["serve", "--config", "\(dir)/cox.yaml"],
                              output: log)
        }

        /// `/healthz`'s role, or nil while it does not answer.
        func role() async -> String? {
            guard let url = URL(string: "http://127.0.0.1:\(port)/healthz"),
                  let (data, _) = try? await URLSession.shared.data(from: url),
                  let body = try? JSONSerialization.jsonObject(with: data) as? [String: String] else { return nil }
            return body["role"]
        }

        func waitForRole(_ wanted: String, timeout: Duration = .seconds(30)) async -> Duration? {
            let start = ContinuousClock.now
            while ContinuousClock.now - start < timeout {
                if await role() == wanted { return ContinuousClock.now - start }
                try? await Task.sleep(for: .milliseconds(100))
            }
            return nil
        }

        var log: String { (try? String(contentsOfFile: "\(dir)/serve.log", encoding: .utf8)) ?? "" }
    }

    /// `POST /api/users/:id/devices` with the token in the header; the HTTP status.
    static func addDevice(port: Int, user: String, name: String, token: String) async -> Int {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/api/users/\(user)/devices")!)
        request.httpMethod = "POST"
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(#"{"name": "\#(name)", "platform": "linux"}"#.utf8)
        guard let (_, response) = try? await URLSession.shared.data(for: request) else { return 0 }
        return (response as? HTTPURLResponse)?.statusCode ?? 0
    }

    @Test(.enabled(if: TestState.engine == .postgres, "two controllers need the PostgreSQL store"))
    func theStandbyTakesOverWhenTheLeaderIsKilledMidProvisioningAndNothingCommittedIsLost() async throws {
        try await Self.withFleet { fleet in
            let postgres = try #require(fleet.state.store.postgresConfiguration)
            let (a, b) = (try ServeProcess(name: "a", fleet: fleet, postgres: postgres), try ServeProcess(name: "b", fleet: fleet, postgres: postgres))
            defer { Task { await a.process.stop(); await b.process.stop() } }
            try a.start()
            #expect(await a.waitForRole("leader") != nil, "a never led:\n\(a.log)")
            try b.start()
            #expect(await b.waitForRole("standby") != nil, "b never stood by:\n\(b.log)")

            // A change committed by a third party (this process, which pushes nothing) reaches
            // the nodes through the leader's LISTEN.
            let early = try await fleet.state.service.addDevice(user: "alice@example.com", name: "early", by: fleet.state.actor)
            let earlyKey = try await fleet.state.store.read { tx in try tx.peers(device: early.value.id).first!.publicKey }
            #expect(await Self.eventually { (try? await fleet.listedPeers(on: fleet.nodes[0]).contains(earlyKey)) == true },
                    "the leader did not push a change committed elsewhere:\n\(a.log)")

            let token = try await AdminService(fleet: fleet.state.service)
                .createToken(name: "failover", scope: .admin, lifetime: nil, by: fleet.state.actor).secret
            let count = 1000
            let accepted = AcceptedCounter()
            let killedAt = Mutex<ContinuousClock.Instant?>(nil)
            // Kills the leader a third of the way in, then times how long the standby takes to lead.
            let killer = Task { () -> Duration? in
                while await accepted.value < count / 3 { try? await Task.sleep(for: .milliseconds(10)) }
                if let pid = a.process.pid { kill(pid, SIGKILL) }
                killedAt.withLock { $0 = .now }
                return await b.waitForRole("leader")
            }
            let provisioning = ContinuousClock.now
            var refused: [String: Int] = [:]
            await withTaskGroup(of: (String, Int).self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        var last = (String(), 201)
                        for i in stride(from: worker, to: count, by: 4) {
                            let status = await Self.addDevice(port: b.port, user: fleet.user.id, name: "dev\(i)", token: token)
                            if status == 201 { await accepted.increment() } else { last = ("dev\(i)", status) }
                        }
                        return last
                    }
                }
                for await (name, status) in group where status != 201 { refused[name] = status }
            }
            let takeover = await killer.value
            print("controller failover: \(count) devices added through the standby's API in \(ContinuousClock.now - provisioning)")
            #expect(refused.isEmpty, "requests to the standby failed: \(refused)")
            #expect(killedAt.withLock { $0 } != nil)
            #expect(!a.process.isRunning, "the leader was not killed")

            #expect(takeover != nil, "b never took over:\n\(b.log)")
            print("controller failover: the standby led \(takeover.map { "\($0)" } ?? "never") after the leader's SIGKILL (100 ms polls of /healthz)")

            // Zero committed writes lost: every device the API accepted is there, whole.
            let (devices, audit) = try await fleet.state.store.read { tx in (try tx.devices(), try tx.auditChain()) }
            #expect(await accepted.value == count)
            #expect(devices.count == count + 1)
            #expect(Set(devices.map(\.name)) == Set((0..<count).map { "dev\($0)" } + ["early"]))
            #expect(audit.filter { $0.action == "device.add" }.count == count + 1)
            #expect(AuditChain.verify(audit) == nil)

            // After the takeover, the new leader pushes what a third party commits.
            let late = try await fleet.state.service.addDevice(user: "alice@example.com", name: "late", by: fleet.state.actor)
            let lateKey = try await fleet.state.store.read { tx in try tx.peers(device: late.value.id).first!.publicKey }
            #expect(await Self.eventually { (try? await fleet.listedPeers(on: fleet.nodes[1]).contains(lateKey)) == true },
                    "the new leader did not push a change committed elsewhere:\n\(b.log)")

            // The nodes converge on exactly what was committed.
            for node in fleet.nodes {
                let converged = await Self.eventually(timeout: .seconds(60)) {
                    guard let on = try? await fleet.listedPeers(on: node), let stored = try? await fleet.storedPeers(on: node) else { return false }
                    return on == stored
                }
                #expect(converged, "\(node.name) did not converge:\n\(b.log.suffix(3000))")
                #expect(try await fleet.peers(on: node).count == count + 2, "\(node.name): ListPeers and the data plane")
            }

            // `cox audit verify` on the surviving controller's configuration.
            let verified = try Command.status([TestBinaries.path("cox", package: "coxswain"), "audit", "verify", "--config", "\(b.dir)/cox.yaml"])
            #expect(verified.status == 0, "\(verified.output)")
            await b.process.stop()
        }
    }

    static func eventually(timeout: Duration = .seconds(20), _ condition: () async -> Bool) async -> Bool {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return false
    }

    actor AcceptedCounter {
        private(set) var value = 0
        func increment() { value += 1 }
    }
}
