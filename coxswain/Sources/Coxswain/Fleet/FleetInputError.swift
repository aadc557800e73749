/// What the service layer refuses before it touches the store (HTTP 400): each case names the
/// input that was wrong and what would be right.
public enum FleetInputError: Error, Equatable, CustomStringConvertible {
    /// `kind` is "user", "node", ...
    case emptyName(kind: String)
    case notAnEmail(String)
    case adminWithoutEmail
    case notOneOf(field: String, value: String, allowed: [String])
    case notIPv4(field: String, value: String)
    /// A HOST[:PORT] input; `defaultPort` when the port may be left out.
    case badAddress(field: String, reason: String, defaultPort: Int?)
    case emptyRelayHostname
    case deviceOfAnotherUser(device: String, user: String)
    case alertReopened
    case badTokenName
    case nonPositiveTokenLifetime
    case unreadableLifetime(String)
    case certificateDays(Int)
    case relayCertificateDays(Int)
    case nodeOrPath
    case xrayOnPath(path: String)
    case pathHops(String)
    case pathInUse(path: String, profiles: [String])
    case nodeInPaths(node: String, paths: [String])
    case pathBound(path: String, devices: [String])
    case notAtEntry(device: String, path: String, entry: String)
    case notBound(device: String)
    case pathColor(String)

    public var description: String {
        switch self {
        case .emptyName(let kind): "a \(kind) needs a name"
        case .notAnEmail(let text): "\"\(text)\" is not an e-mail address"
        case .adminWithoutEmail: "an admin needs an e-mail address to log in with"
        case .notOneOf(let field, let value, let allowed):
            "\(field) must be \(allowed.dropLast().joined(separator: ", "))\(allowed.count > 1 ? " or " : "")\(allowed.last ?? ""), not \"\(value)\""
        case .notIPv4(let field, let value): "\(field): \"\(value)\" is not an IPv4 address"
        case .badAddress(let field, let reason, let defaultPort):
            "\(field): \(reason)" + (defaultPort.map { " (port \($0) by default)" } ?? "")
        case .emptyRelayHostname: "--hostname is empty; give the name clients reach the relay by"
        case .deviceOfAnotherUser(let device, let user): "device \(device) does not belong to \(user)"
        case .alertReopened: "an alert can be acknowledged or resolved, not reopened"
        case .badTokenName: "a token needs a name of 1 to 64 characters"
        case .nonPositiveTokenLifetime: "a token's lifetime must be positive"
        case .unreadableLifetime(let text): "\"\(text)\" is not a lifetime such as 30d, 12h, 90m or never"
        case .certificateDays(let days):
            "--cert-days \(days): a node leaf lives 1 to \(FleetService.maximumNodeCertificateDays) days (30 for agents that renew; up to 365 for upstream agents, which cannot)"
        case .nodeOrPath: "give exactly one of --node (egress there) and --path (a cascade)"
        case .xrayOnPath(let path): "path \(path) carries AmneziaWG only; XRay/REALITY over a cascade is not built"
        case .pathHops(let reason): "--hops: \(reason)"
        case .pathInUse(let path, let profiles):
            "path \(path) is used by the profiles \(profiles.joined(separator: ", ")); remove them first (cox profiles rm)"
        case .pathBound(let path, let devices):
            "path \(path) is the live exit of the devices \(devices.joined(separator: ", ")); unbind them first (cox paths unbind DEVICE)"
        case .notAtEntry(let device, let path, let entry):
            "device \(device) has no AmneziaWG profile on \(entry), where path \(path) enters; a live exit moves traffic that already enters there (create a profile with --node \(entry) first)"
        case .pathColor(let text): "--color: \"\(text)\" is not a color such as #2f80ed (six hex digits, the # optional)"
        case .notBound(let device): "device \(device) is not bound to a path; its traffic already leaves where its profiles say"
        case .nodeInPaths(let node, let paths):
            "node \(node) is a hop of the paths \(paths.joined(separator: ", ")); remove them first (cox paths rm)"
        case .relayCertificateDays(let days):
            "--cert-days \(days): a relay leaf lives 1 to \(FleetService.maximumRelayCertificateDays) days (30 for relays that renew themselves over their tunnel; longer only for relays that cannot)"
        }
    }
}

extension UserRole {
    /// An API field or CLI flag's text.
    public init(input: String) throws(FleetInputError) {
        guard let role = UserRole(rawValue: input) else {
            throw .notOneOf(field: "role", value: input, allowed: Self.allCases.map(\.rawValue))
        }
        self = role
    }
}

extension AccessStatus {
    /// An API field or CLI flag's text.
    public init(input: String) throws(FleetInputError) {
        guard let status = AccessStatus(rawValue: input) else {
            throw .notOneOf(field: "status", value: input, allowed: Self.allCases.map(\.rawValue))
        }
        self = status
    }
}
