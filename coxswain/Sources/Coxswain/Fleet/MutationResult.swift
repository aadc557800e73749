/// The outcome of a committed mutation: its value, the nodes whose intended config changed
/// (their revisions were bumped in the same transaction) and how pushing them went.
public struct MutationResult<Value: Sendable>: Sendable {
    public var value: Value
    public var affectedNodes: Set<String>
    /// Each affected node's push after commit, when the service runs effects.
    public var pushes: [String: FleetReconciler.Outcome] = [:]

    public init(value: Value, affectedNodes: Set<String> = []) {
        self.value = value
        self.affectedNodes = affectedNodes
    }
}
