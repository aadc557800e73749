/// `cox serve`'s post-commit effects: its long-lived reconciler and live hub.
struct ServeEffects: FleetEffects {
    let reconciler: FleetReconciler
    let live: LiveHub

    func push(_ nodes: Set<String>) async -> [String: FleetReconciler.Outcome] {
        await reconciler.push(nodes)
    }

    func networkPolicyChanged(node: String) async {
        await reconciler.networkPolicyChanged(node)
    }

    func explicitPush(node: String) async -> FleetReconciler.Outcome {
        await reconciler.explicitPush(node: node)
    }

    func publish(_ event: LiveEvent) {
        live.publish(event)
    }
}
