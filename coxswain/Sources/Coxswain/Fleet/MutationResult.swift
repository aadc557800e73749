/// The outcome of a committed mutation: its value and the nodes whose intended config
/// changed (their revisions were bumped in the same transaction) and now need a push.
public struct MutationResult<Value: Sendable>: Sendable {
    public var value: Value
    public var affectedNodes: Set<String>

    public init(value: Value, affectedNodes: Set<String> = []) {
        self.value = value
        self.affectedNodes = affectedNodes
    }
}
