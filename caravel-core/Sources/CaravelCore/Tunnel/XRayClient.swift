import Foundation
import PharosRuntime
import PharosSpec

/// The XRay REALITY engine: the client JSON (a SOCKS5 inbound on loopback, a VLESS + REALITY
/// outbound to the node) and `xray run -c` when xray is installed. There is no TUN bridge on
/// Linux yet: applications must use the SOCKS proxy.
public enum XRayClient {
    public static let socksPort = 10808

    public static func config(plan: ConnectPlan, socksPort: Int = socksPort) throws(CaravelError) -> JSONValue {
        guard let x = plan.xray else { throw .tunnel("this plan is not an XRay plan") }
        let user: JSONValue = .object([
            JSONMember("id", .string(x.uuid)), JSONMember("encryption", .string("none")),
            JSONMember("flow", .string(x.flow)),
        ])
        return .object([
            JSONMember("log", .object([JSONMember("loglevel", .string("warning"))])),
            JSONMember("inbounds", .array([.object([
                JSONMember("listen", .string("127.0.0.1")), JSONMember("port", .integer(socksPort)),
                JSONMember("protocol", .string("socks")),
                JSONMember("settings", .object([JSONMember("udp", .bool(true))])),
            ])])),
            JSONMember("outbounds", .array([.object([
                JSONMember("protocol", .string("vless")),
                JSONMember("settings", .object([JSONMember("vnext", .array([.object([
                    JSONMember("address", .string(plan.endpointHost)), JSONMember("port", .integer(plan.endpointPort)),
                    JSONMember("users", .array([user])),
                ])]))])),
                JSONMember("streamSettings", .object([
                    JSONMember("network", .string("tcp")), JSONMember("security", .string("reality")),
                    JSONMember("realitySettings", .object([
                        JSONMember("serverName", .string(x.serverName)),
                        JSONMember("fingerprint", .string(x.fingerprint.isEmpty ? "chrome" : x.fingerprint)),
                        JSONMember("publicKey", .string(x.publicKey)), JSONMember("shortId", .string(x.shortID)),
                    ])),
                ])),
            ])])),
        ])
    }

    /// This client's rendered xray config (0600), removed when it stops.
    public static var configPath: String { "\(TunnelState.directory)/xray-\(getpid()).json" }

    /// Starts xray as `child` with the rendered config (a 0600 file, never argv); the caller
    /// stops it and removes the config (`removeConfig`).
    public static func start(_ child: ChildProcess, plan: ConnectPlan, binary: String? = nil) throws(CaravelError) {
        guard let executable = Command.locate(binary ?? "xray") else {
            throw .tunnel("this profile uses XRay REALITY but xray is not installed (put it on PATH or pass --engine-binary)")
        }
        try TunnelState.ensureDirectory()
        try ProfileStore.write(try config(plan: plan).indentedBytes(), to: configPath)
        do { try child.start(executable, arguments: ["run", "-c", configPath]) } catch {
            removeConfig()
            throw .tunnel("cannot start \(executable): \(error)")
        }
    }

    public static func removeConfig() {
        try? FileManager.default.removeItem(atPath: configPath)
    }
}
