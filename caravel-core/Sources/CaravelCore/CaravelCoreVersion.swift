/// The version of this component; `caravel version` prints it beside protocol-spec's.
public enum CaravelCoreVersion {
    public static let component = "0.1.0"
}
