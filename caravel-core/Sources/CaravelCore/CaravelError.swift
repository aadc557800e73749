import PharosSpec

/// What the client refuses or cannot do, each a sentence that says what to do next. The CLI
/// maps `exitCode` to its process status.
public enum CaravelError: Error, Equatable, CustomStringConvertible {
    /// A file or link that is not what it claims (exit 65, EX_DATAERR).
    case format(PharosFormatError, file: String)
    case notFound(String)
    case invalidName(String)
    case alreadyExists(String)
    /// The controller or relay refused (exit 77, EX_NOPERM).
    case refused(String)
    /// The relay or controller cannot be reached (exit 69, EX_UNAVAILABLE).
    case unreachable(String)
    /// A check of the controller's identity failed: possible interception (exit 77).
    case untrusted(String)
    case tunnel(String)
    /// Needs root / CAP_NET_ADMIN (exit 77).
    case permission(String)
    case io(String)

    public var exitCode: Int32 {
        switch self {
        case .format: 65
        case .notFound, .invalidName, .alreadyExists: 66
        case .unreachable: 69
        case .refused, .untrusted, .permission: 77
        case .tunnel, .io: 74
        }
    }

    public var description: String {
        switch self {
        case .format(let error, let file): "\(file): \(error)"
        case .notFound(let what), .invalidName(let what), .alreadyExists(let what), .refused(let what),
             .unreachable(let what), .untrusted(let what), .tunnel(let what), .permission(let what), .io(let what): what
        }
    }
}
