/// The versioned wire contract shared by every PharosVPN component.
///
/// `version` follows semantic versioning: a minor bump adds fields, messages or
/// formats; a major bump means a new `v2` proto package or format version living
/// beside `v1` (see protocol-spec/README.md for the compatibility policy).
public enum PharosSpec {
    public static let version = "1.3.0"
}
