/// What the account service refuses; the gRPC layer maps each case to its status code.
/// Ticket failures (unknown, expired, used, forged) all become one `.unauthenticated` whose
/// message says nothing about which it was.
public enum AccountError: Error, Equatable, CustomStringConvertible {
    case unauthenticated(String)
    case invalidArgument(String)
    case notFound(String)
    case failedPrecondition(String)
    /// Too many failed password logins for this account or device, or the controller is
    /// already checking as many passwords as it will at once (RESOURCE_EXHAUSTED).
    case tooManyAttempts(retryAfterSeconds: Int)

    public static let opaqueClaimFailure = AccountError.unauthenticated("enrollment link is invalid or expired; ask for a new one")
    public static let opaqueLoginFailure = AccountError.unauthenticated("authentication failed")

    public var description: String {
        switch self {
        case .unauthenticated(let message), .invalidArgument(let message), .notFound(let message),
             .failedPrecondition(let message): message
        case .tooManyAttempts(let seconds): "too many failed logins; try again in \(seconds) s"
        }
    }
}
