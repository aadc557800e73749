import Foundation
import Logging
import NodeAgent
import PharosConfig
import PharosLifecycle
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// `node-bench fleet --dir D`: every subdirectory of D is one node's config dir (node.yaml
/// with the in-memory backend, node.key, node.crt, ca.crt); all of them run in this one
/// process, each a real mTLS NodeControl endpoint. The controller's benchmark drives them.
/// Prints `ready <count>` once every control port is open; runs until SIGTERM.
enum SimulatedFleet {
    static func run(arguments: [String]) async throws {
        guard let flag = arguments.firstIndex(of: "--dir"), flag + 1 < arguments.count else {
            FileHandle.standardError.write(Data("usage: node-bench fleet --dir DIR\n".utf8))
            exit(2)
        }
        raiseFileLimit()
        let root = arguments[flag + 1]
        let dirs = try FileManager.default.contentsOfDirectory(atPath: root).sorted().map { "\(root)/\($0)" }
        let logger = { () -> Logger in
            var logger = Logger(label: "bench.fleet")
            logger.logLevel = .error
            return logger
        }()
        let ready = AsyncStream.makeStream(of: Int.self)
        let nodes = try dirs.map { dir -> (name: String, service: any Service) in
            let paths = NodePaths(directory: dir)
            let config = try NodeConfig.load(path: paths.config, environment: [:])
            guard config.backend == .memory else { throw ConfigError.invalid(component: "node", key: "dataplane.backend", value: config.backend.rawValue, expected: "memory") }
            return ("node \(dir)", NodeApplication(paths: paths, config: config, agentVersion: "simulated", logger: logger,
                                                   ready: { ready.continuation.yield($0) }))
        }
        // One group for the fleet: SIGTERM stops every node gracefully; one node that fails
        // ends them all, since it spoils the measurement.
        let fleet = DaemonServiceGroup.make(nodes, signals: true, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do { try await fleet.run() } catch {
                    FileHandle.standardError.write(Data("fleet: \(error)\n".utf8))
                    exit(1)
                }
                ready.continuation.finish()  // stopped before every node was up
            }
            var count = 0
            for await _ in ready.stream {
                count += 1
                if count == dirs.count { break }
            }
            if count == dirs.count { FileHandle.standardOutput.write(Data("ready \(count)\n".utf8)) }
            try await group.waitForAll()
        }
    }

    static func raiseFileLimit() {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
