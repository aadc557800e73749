/// What follows a committed mutation, run by the service layer rather than by each caller:
/// the nodes whose intended config changed are pushed, a node whose network policy changed
/// gets it again, and what live watchers see is published. `cox serve` runs it with its
/// reconciler and live hub (`ServeEffects`), a CLI command with a reconciler of its own
/// (`CommandEffects`); a service without effects only commits (tests, benchmarks).
public protocol FleetEffects: Sendable {
    func push(_ nodes: Set<String>) async -> [String: FleetReconciler.Outcome]
    func networkPolicyChanged(node: String) async
    /// An operator's push: back-off cleared, status (keys) refreshed, full config sent.
    func explicitPush(node: String) async -> FleetReconciler.Outcome
    func publish(_ event: LiveEvent)
}
