import Foundation
import PharosRuntime

/// Who did what to which target: the part of an audit row a mutation supplies.
public struct AuditEntry: Sendable, Equatable {
    public var action: String
    public var targetType: String
    public var targetID: String
    public var detail: String
    public var result: String
    public var error: String

    public init(action: String, targetType: String, targetID: String, detail: String = "{}",
                result: String = "ok", error: String = "") {
        self.action = action
        self.targetType = targetType
        self.targetID = targetID
        self.detail = detail
        self.result = result
        self.error = error
    }
}

/// The authenticated caller of a mutation. Source IPs come from the connection, never from headers.
public struct AuditActor: Sendable, Equatable {
    public enum Kind: String, Sendable { case cli, session, token, system }
    public var name: String
    public var kind: Kind
    public var sourceIP: String

    public init(name: String, kind: Kind, sourceIP: String = "") {
        self.name = name
        self.kind = kind
        self.sourceIP = sourceIP
    }

    /// The operator at the shell: the OS user name, as upstream records CLI mutations (the
    /// sudo user behind root, and the user from before `cox` switched to the daemon's).
    public static var cliUser: AuditActor {
        AuditActor(name: Privileges.invokingUser, kind: .cli, sourceIP: "local")
    }

    public static let controller = AuditActor(name: "coxswain", kind: .system, sourceIP: "")
}
