import Foundation
import PharosSpec
import PharosTestSupport
import Testing

/// `caravel connect` on an XRay profile with a stand-in for xray (a shell script), so the
/// service group's lifecycle is tested without root: SIGTERM and SIGINT stop xray and remove
/// its config; an xray that exits on its own ends connect with the error, config removed too.
@Suite(.serialized) struct XRayConnectTests {
    static let caravel = TestBinaries.path("caravel", package: "caravel-cli")

    /// A store holding one XRay profile, a run directory, and the stand-in xray.
    struct Scene {
        let dir = "/tmp/caravel-xray-\(UUID().uuidString.prefix(8))"
        var environment: [String: String] {
            ["CARAVEL_HOME": "\(dir)/store", "CARAVEL_RUN_DIR": "\(dir)/run",
             "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        }
        var fakeXRay: String { "\(dir)/xray" }
        var xrayPIDFile: String { "\(dir)/xray.pid" }
        var output: String { (try? String(contentsOfFile: "\(dir)/connect.log", encoding: .utf8)) ?? "" }

        init(xrayScript: String) throws {
            try FileManager.default.createDirectory(atPath: "\(dir)/store", withIntermediateDirectories: true)
            try xrayScript.replacingOccurrences(of: "PIDFILE", with: xrayPIDFile)
                .write(toFile: fakeXRay, atomically: true, encoding: .utf8)
            chmod(fakeXRay, 0o755)
            let bundle = ProfileBundle(fleetID: "flt_lab", user: "lab@example.org", revision: 1, issuedAt: "2026-11-25T00:00:00Z",
                                       expiresAt: "2027-11-25T00:00:00Z", profiles: [
                ClientProfile(id: "prs_x", name: "x", protocolChoice: .xrayReality, nodes: [
                    ProfileNode(id: "nod_x", name: "x-node", region: "lab", endpoints: ["192.0.2.10"], protocols: [
                        .xrayReality(XRayRealityParams(uuid: "6b1f2c8e-0000-4000-8000-000000000001", flow: "xtls-rprx-vision",
                                                       address: "", publicKey: "cHVibGlj", serverName: "www.example.com",
                                                       shortID: "ab12", fingerprint: "", endpoints: [
                                                           EndpointPool(ip: "192.0.2.10", portMin: 443, portMax: 443),
                                                       ], allowedIPs: [])),
                    ]),
                ]),
            ])
            let file = "\(dir)/lab.pharos"
            try Data(ProfileEnvelope.plain(bundle).encoded()).write(to: URL(fileURLWithPath: file))
            let imported = try run(["import", file, "--name", "lab"])
            imported.waitUntilExit()
            guard imported.terminationStatus == 0 else { throw Failure(description: "import failed: \(output)") }
        }

        func run(_ arguments: [String]) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: XRayConnectTests.caravel)
            process.arguments = arguments
            process.environment = environment
            let log = "\(dir)/connect.log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardError = process.standardOutput
            try process.run()
            return process
        }

        func connect() throws -> Process {
            try run(["connect", "lab", "--protocol", "xray-reality", "--engine-binary", fakeXRay])
        }

        /// The rendered xray configs left in the run directory.
        var configs: [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: "\(dir)/run")) ?? []).filter { $0.hasPrefix("xray-") }
        }

        func waitFor(_ condition: () -> Bool) -> Bool {
            for _ in 0..<500 {
                if condition() { return true }
                usleep(10_000)
            }
            return condition()
        }

        func remove() { try? FileManager.default.removeItem(atPath: dir) }
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    @Test(arguments: [SIGTERM, SIGINT])
    func aSignalStopsXRayGracefullyAndRemovesItsConfig(signal: Int32) throws {
        let scene = try Scene(xrayScript: "#!/bin/sh\necho $$ > PIDFILE\nexec sleep 60\n")
        defer { scene.remove() }
        let client = try scene.connect()
        #expect(scene.waitFor { scene.output.contains("xray running: SOCKS5 proxy on 127.0.0.1:10808") }, "\(scene.output)")
        // The shell creates the file before it writes the PID into it: wait for the number.
        func xrayPID() -> Int32 {
            Int32((try? String(contentsOfFile: scene.xrayPIDFile, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        }
        #expect(scene.waitFor { xrayPID() > 0 })
        #expect(scene.configs.count == 1, "the rendered config is not where xray reads it")
        let xray = xrayPID()
        kill(client.processIdentifier, signal)
        client.waitUntilExit()
        #expect(client.terminationStatus == 0, "\(scene.output)")
        #expect(scene.configs.isEmpty, "the xray config outlived connect")
        #expect(xray > 0 && kill(xray, 0) != 0, "xray still runs after connect stopped")
    }

    @Test func anXRayThatExitsOnItsOwnEndsConnectWithTheErrorAndRemovesItsConfig() throws {
        let scene = try Scene(xrayScript: "#!/bin/sh\nexit 3\n")
        defer { scene.remove() }
        let client = try scene.connect()
        client.waitUntilExit()
        #expect(client.terminationStatus == 74, "\(scene.output)")
        #expect(scene.output.contains("Error: xray exited on its own; see its output above"), "\(scene.output)")
        #expect(scene.configs.isEmpty)
    }
}
