import PharosRuntime
import Foundation
import Logging
import Synchronization

/// Writes the rendered server config (0600) and, when `xray.binary` is configured,
/// supervises `xray run -c <config>`: xray has no live reload, so a change restarts it.
/// Without a binary the config is still rendered, and status says it is not served.
public final class XRayService: Sendable {
    public let configPath: String
    private let binary: String
    private let logger: Logger
    private let process = ChildProcess()

    public init(configPath: String, binary: String, logger: Logger) {
        self.configPath = configPath
        self.binary = binary
        self.logger = logger
    }

    public var isConfigured: Bool { !binary.isEmpty }

    public func apply(_ config: XRayServerConfig, identity: XRayIdentity) async throws {
        try AtomicFile.write(config.rendered(privateKey: identity.privateKey), to: configPath, mode: 0o600)
        await stop()
        guard config.port != 0 else { return }
        guard isConfigured else {
            logger.notice("xray.binary is not configured: REALITY config rendered but not served", metadata: ["config": "\(configPath)"])
            return
        }
        guard let executable = Command.locate(binary) else { throw DataPlaneError.daemon(reason: "\(binary) not found (xray.binary)") }
        let logger = self.logger
        try process.start(executable, arguments: ["run", "-c", configPath]) { exit in
            guard !exit.requested else { return }
            logger.warning("xray exited", metadata: ["status": "\(exit.status)"])
        }
    }

    /// (running, detail)
    public func status(port: Int) -> (running: Bool, detail: String) {
        if port == 0 { return (false, "XRay/REALITY is down (no port pushed)") }
        guard isConfigured else { return (false, "xray.binary is not configured: config rendered to \(configPath), not served") }
        let running = process.isRunning
        return (running, running ? "xray serving VLESS+REALITY on \(port)" : "xray is not running")
    }

    public func stop() async {
        await process.stop(grace: .seconds(3))
    }
}
