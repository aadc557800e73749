import PharosRuntime
import Foundation
import Logging

/// Runs `NetworkPolicyPlan`s and remembers exactly what it did (`netpolicy.json`,
/// 0600), so a new config or a restart removes what the old one added.
public final class NetworkPolicyApplier: @unchecked Sendable {
    struct Applied: Codable, Equatable {
        var plan = NetworkPolicyPlan()
        /// Values the sysctls had before any plan of ours changed them.
        var originalSysctls: [String: String] = [:]
    }

    private let path: String
    private let interface: String
    private let logger: Logger
    private let sysctlRoot: String
    private var applied: Applied

    public init(path: String, interface: String, logger: Logger, sysctlRoot: String = "/proc/sys") throws {
        self.path = path
        self.interface = interface
        self.logger = logger
        self.sysctlRoot = sysctlRoot
        if let bytes = try AtomicFile.read(path) {
            do { applied = try JSONDecoder().decode(Applied.self, from: Data(bytes)) } catch {
                throw NodeStateError.corrupt(path: path, reason: "\(error)")
            }
        } else {
            applied = Applied()
        }
    }

    /// The interface of the default route (`%e`).
    public static func egressInterface() -> String? {
        guard let out = try? Command.run(["ip", "-o", "route", "show", "default"]) else { return nil }
        let words = out.split(whereSeparator: \.isWhitespace)
        guard let dev = words.firstIndex(of: "dev"), dev + 1 < words.count else { return nil }
        return String(words[dev + 1])
    }

    /// Cold start: the kernel may or may not still hold the rules (agent restart vs
    /// reboot), so remove what the record says, then apply it again.
    /// `unavailable`: inner interfaces that did not come back; their transit routes are
    /// skipped (the table's unreachable route keeps those devices' traffic from leaking out
    /// of this node) until `routeTransits(through:)` when the link is up again.
    public func reapply(unavailable: Set<String> = []) throws {
        let plan = applied.plan
        guard !plan.steps.isEmpty || !plan.sysctls.isEmpty else { return }
        teardown(plan.steps)
        try apply(plan, skipping: unavailable)
    }

    /// An inner link came (back) up: the transit routes into it, which the kernel dropped with
    /// the interface. Best effort: a route that cannot be added leaves the table unreachable.
    public func routeTransits(through interface: String) {
        for step in applied.plan.steps where NetworkPolicyPlan.routesInto(step) == interface {
            do { try Command.run(step.apply) } catch {
                logger.warning("transit route not restored", metadata: ["interface": "\(interface)", "error": "\(error)"])
            }
        }
    }

    /// Replaces the current policy. On failure the new plan's partial changes are
    /// undone and the previous policy is put back.
    public func set(_ policy: NetworkPolicy) throws {
        let plan = try NetworkPolicyPlan.make(policy, interface: interface,
                                              egress: policy.masquerade ? Self.egressInterface() : nil)
        let previous = applied.plan
        // The same policy again (a controller re-sending it with a push): nothing to change,
        // and tearing it down would cut transit traffic for a moment.
        if plan == previous, !plan.steps.isEmpty || !plan.sysctls.isEmpty { return }
        teardown(previous.steps)
        do {
            try apply(plan)
        } catch {
            logger.error("network policy failed; restoring the previous one", metadata: ["error": "\(error)"])
            try? apply(previous)
            throw error
        }
        logger.info("network policy applied", metadata: ["steps": "\(plan.steps.count)", "sysctls": "\(plan.sysctls.count)"])
    }

    private func apply(_ plan: NetworkPolicyPlan, skipping unavailable: Set<String> = []) throws {
        var done: [NetworkPolicyPlan.Step] = []
        do {
            for (key, value) in plan.sysctls.sorted(by: { $0.key < $1.key }) {
                if applied.originalSysctls[key] == nil { applied.originalSysctls[key] = try readSysctl(key) }
                try writeSysctl(key, value)
            }
            // Sysctls no plan sets any more go back to what the host had.
            for (key, original) in applied.originalSysctls where plan.sysctls[key] == nil {
                try? writeSysctl(key, original)
                applied.originalSysctls[key] = nil
            }
            for step in plan.steps {
                if let into = NetworkPolicyPlan.routesInto(step), unavailable.contains(into) {
                    logger.warning("transit route skipped: its inner link is down", metadata: ["interface": "\(into)"])
                    continue
                }
                try Command.run(step.apply)
                done.append(step)
            }
        } catch {
            teardown(done)
            throw error
        }
        applied.plan = plan
        try save()
    }

    private func teardown(_ steps: [NetworkPolicyPlan.Step]) {
        for step in steps.reversed() {
            guard let argv = step.teardown else { continue }
            if (try? Command.run(argv)) == nil { logger.debug("teardown step found nothing to undo", metadata: ["argv": "\(argv)"]) }
        }
    }

    private func readSysctl(_ key: String) throws -> String {
        do { return try String(contentsOfFile: "\(sysctlRoot)/\(key)", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) } catch {
            throw DataPlaneError.command(argv: ["read", "\(sysctlRoot)/\(key)"], status: 1, output: "\(error)")
        }
    }

    private func writeSysctl(_ key: String, _ value: String) throws {
        do { try value.write(toFile: "\(sysctlRoot)/\(key)", atomically: false, encoding: .utf8) } catch {
            throw DataPlaneError.command(argv: ["write", "\(sysctlRoot)/\(key)"], status: 1, output: "\(error)")
        }
    }

    private func save() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(Array(try encoder.encode(applied)), to: path, mode: 0o600)
    }
}
