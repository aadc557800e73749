import PharosSpec

/// The version of this component and of the wire contract it was built against.
public enum NodeAgentVersion {
    public static let component = "0.1.0"

    /// `node 0.1.0 (protocol-spec 1.0.0)`: what `node version` prints.
    public static var line: String { "node \(component) (protocol-spec \(PharosSpec.version))" }
}
