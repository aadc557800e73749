import Foundation
import PharosLifecycle
import ServiceLifecycle

/// The AccountSync socket as a service of `cox serve`: listens, tightens the socket to 0600,
/// reads the deny list once, then reports `listening`; at shutdown in-flight calls finish and
/// the socket file goes.
struct AccountSocketService: Service {
    let tier: RelayTier
    let listening: @Sendable () -> Void

    func run() async throws {
        let server = tier.makeSocketServer()
        let socketPath = tier.socketPath
        defer { try? FileManager.default.removeItem(atPath: socketPath) }
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            guard try await server.listeningAddress != nil else { return }
            chmod(socketPath, 0o600)
            try await tier.refreshDenyList()
            tier.logger.info("account service up", metadata: ["socket": "\(socketPath)"])
            listening()
            try? await gracefulShutdown()
            server.beginGracefulShutdown()
        }
    }
}
