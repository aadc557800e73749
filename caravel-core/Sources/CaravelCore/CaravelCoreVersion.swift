import PharosSpec

/// The version of this component and of the wire contract it was built against.
public enum CaravelCoreVersion {
    public static let component = "0.1.0"

    /// `caravel-core 0.1.0 (protocol-spec 1.0.0)`: what `caravel-core version` prints.
    public static var line: String { "caravel-core \(component) (protocol-spec \(PharosSpec.version))" }
}
