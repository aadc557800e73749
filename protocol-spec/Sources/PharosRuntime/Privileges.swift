import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Packaged daemons own their files (`/var/lib/pharos/coxswain` belongs to `pharos-coxswain`).
/// An operator who runs the CLI as root must not leave root-owned files there (a SQLite WAL
/// the daemon cannot open), so the CLI becomes the directory's owner before touching it, and
/// keys created as root in a directory owned by a daemon user are handed to that user.
public enum Privileges {
    private static let invoker = Mutex<String?>(nil)

    /// The operator behind this process for audit rows: `SUDO_USER` when root came through
    /// sudo, else the effective user — as it was before `adoptOwner` switched users.
    public static var invokingUser: String {
        if let name = invoker.withLock({ $0 }) { return name }
        return currentInvoker()
    }

    private static func currentInvoker() -> String {
        if geteuid() == 0, let sudo = ProcessInfo.processInfo.environment["SUDO_USER"], !sudo.isEmpty { return sudo }
        guard let entry = getpwuid(geteuid()) else { return "uid \(geteuid())" }
        return String(cString: entry.pointee.pw_name)
    }

    /// Run as root and `directory` belongs to another user: become that user (groups,
    /// gid, uid — for every thread) and return its name. Nil when nothing had to change
    /// (not root, the directory is root's, or it does not exist yet).
    @discardableResult
    public static func adoptOwner(of directory: String) throws(PrivilegesError) -> String? {
        guard geteuid() == 0 else { return nil }
        var info = stat()
        guard stat(directory, &info) == 0, info.st_uid != 0 else { return nil }
        // getpwuid's answer lives in a static buffer the next lookup (currentInvoker's) reuses:
        // copy what we need first.
        guard let entry = getpwuid(info.st_uid) else {
            throw .unknownOwner(path: directory, uid: info.st_uid)
        }
        let name = String(cString: entry.pointee.pw_name), gid = entry.pointee.pw_gid
        invoker.withLock { if $0 == nil { $0 = currentInvoker() } }
        guard initgroups(name, gid) == 0, setgid(gid) == 0, setuid(info.st_uid) == 0 else {
            throw .switchFailed(user: name, reason: String(cString: strerror(errno)))
        }
        return name
    }

    /// Run as root and `directory` belongs to another user: `body` runs with that user's
    /// effective uid and gid (glibc applies them to every thread), so whatever it creates there
    /// is that user's and no path in a directory the user controls is followed as root; then
    /// root comes back. Otherwise `body` just runs.
    public static func asEffectiveOwner<T>(of directory: String, _ body: () throws -> T) throws -> T {
        var info = stat()
        guard geteuid() == 0, stat(directory, &info) == 0, info.st_uid != 0 else { return try body() }
        guard setegid(info.st_gid) == 0 else {
            throw PrivilegesError.switchFailed(user: "gid \(info.st_gid)", reason: String(cString: strerror(errno)))
        }
        guard seteuid(info.st_uid) == 0 else {
            let reason = String(cString: strerror(errno))
            _ = setegid(0)
            throw PrivilegesError.switchFailed(user: "uid \(info.st_uid)", reason: reason)
        }
        defer {
            // Back to root: failing here would leave the process as the daemon user.
            precondition(seteuid(0) == 0 && setegid(0) == 0, "cannot return to root after acting as the state's owner")
        }
        return try body()
    }

    /// A file root just created in `directory` goes to the directory's owner and group, so
    /// a daemon running as that user can read it (its mode is kept).
    public static func giveToDirectoryOwner(_ path: String, directory: String) throws(PrivilegesError) {
        guard geteuid() == 0 else { return }
        var info = stat()
        guard stat(directory, &info) == 0, info.st_uid != 0 else { return }
        guard chown(path, info.st_uid, info.st_gid) == 0 else {
            throw .switchFailed(user: "uid \(info.st_uid)", reason: "chown \(path): \(String(cString: strerror(errno)))")
        }
    }
}

public enum PrivilegesError: Error, Equatable, CustomStringConvertible {
    case unknownOwner(path: String, uid: uid_t)
    case switchFailed(user: String, reason: String)

    public var description: String {
        switch self {
        case .unknownOwner(let path, let uid): "\(path) belongs to uid \(uid), which has no passwd entry; fix its owner"
        case .switchFailed(let user, let reason): "cannot act as \(user), the owner of the daemon's files: \(reason)"
        }
    }
}
