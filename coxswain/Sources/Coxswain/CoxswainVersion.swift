import PharosSpec

/// The version of this component and of the wire contract it was built against.
public enum CoxswainVersion {
    public static let component = "0.1.0"

    /// `cox 0.1.0 (protocol-spec 1.0.0)`: what `cox version` prints.
    public static var line: String { "cox \(component) (protocol-spec \(PharosSpec.version))" }
}
