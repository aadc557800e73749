import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import PharosProto
import PharosRuntime
import PharosTestSupport

/// The network-namespace integration tests' shared moves: a node process, a controller call
/// that waits for the node to come up, a client's wireguard-go.
enum NodeLab {
    /// `node run --config-dir DIR` inside `namespace`.
    static func startNode(in namespace: String, configDir: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Command.locate("ip")!)
        p.arguments = ["netns", "exec", namespace, DataPlaneIntegrationTests.nodeBinary, "run", "--config-dir", configDir]
        try p.run()
        return p
    }

    /// One controller session with the node at `address:8444`, retried for up to 10 s while
    /// the node starts (each attempt first asks GetStatus with a 2 s deadline).
    static func control<T: Sendable>(pki: TestPKI, leaf: TestPKI.Leaf, address: String,
                                     _ body: (Pharos_Node_V1_NodeControl.Client<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
        var lastError: (any Error)?
        for _ in 0..<40 {
            do {
                return try await ControlPlaneTests.withController(pki: pki, address: address, port: 8444, leaf: leaf) { client in
                    var options = CallOptions.defaults
                    options.timeout = .seconds(2)
                    _ = try await client.getStatus(Pharos_Node_V1_GetStatusRequest(), options: options)
                    return try await body(client)
                }
            } catch {
                lastError = error
                try await Task.sleep(for: .milliseconds(250))
            }
        }
        throw lastError!
    }

    /// A client's own wireguard-go on `interface` in `namespace`, once its UAPI socket exists.
    static func startClientWireGuard(in namespace: String, interface: String) async throws -> Process {
        let client = Process()
        client.executableURL = URL(fileURLWithPath: Command.locate("ip")!)
        client.arguments = ["netns", "exec", namespace, Command.locate("wireguard-go")!, interface]
        client.environment = ["WG_PROCESS_FOREGROUND": "1", "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"]
        try client.run()
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: "/var/run/wireguard/\(interface).sock") {
            try await Task.sleep(for: .milliseconds(50))
        }
        return client
    }
}
