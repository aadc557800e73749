import Logging

/// A CLI command's post-commit effects: each push dials the nodes with a reconciler of its
/// own and closes the connections again. Nothing is published (no live hub outside `cox serve`).
public struct CommandEffects: FleetEffects {
    let controller: Controller
    let logger: Logger

    public init(controller: Controller, logger: Logger) {
        self.controller = controller
        self.logger = logger
    }

    public func push(_ nodes: Set<String>) async -> [String: FleetReconciler.Outcome] {
        do {
            return try await controller.withReconciler(logger: logger) { await $0.push(nodes) }
        } catch {
            // No client identity to dial with: every node is left to `cox serve`'s sweep.
            return Dictionary(uniqueKeysWithValues: nodes.map { ($0, .failed("\(error)")) })
        }
    }

    public func networkPolicyChanged(node: String) async {
        _ = try? await controller.withReconciler(logger: logger) { await $0.networkPolicyChanged(node) }
    }

    public func explicitPush(node: String) async -> FleetReconciler.Outcome {
        do {
            return try await controller.withReconciler(logger: logger) { await $0.explicitPush(node: node) }
        } catch {
            return .failed("\(error)")
        }
    }

    public func publish(_ event: LiveEvent) {}
}
