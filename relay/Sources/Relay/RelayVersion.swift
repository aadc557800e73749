import PharosSpec

/// The version of this component and of the wire contract it was built against.
public enum RelayVersion {
    public static let component = "0.1.0"

    /// `relay 0.1.0 (protocol-spec 1.0.0)`: what `relay version` prints.
    public static var line: String { "relay \(component) (protocol-spec \(PharosSpec.version))" }
}
