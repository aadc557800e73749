#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// `/etc/resolv.conf` while a tunnel holds the default route: the profile's resolvers, so
/// lookups go through the tunnel and not to the network's resolver (a DNS leak), and exactly
/// the previous file (or symlink, or no file) again on disconnect.
///
/// A regular file is rewritten in place, never renamed over: under `ip netns exec` it is a
/// bind mount, and a container's is often one too. A symlink (systemd-resolved's stub,
/// resolvconf's) is replaced by a file and put back as the same symlink. The change is
/// recorded in `TunnelState` before the file is written, and undone only while the file
/// still holds what caravel wrote: a file someone rewrote since (a DHCP client, the
/// administrator) is theirs and is left alone.
public struct ResolvConf: Codable, Sendable, Equatable {
    /// The file every resolver reads; the path is never taken from the state file.
    public static let systemPath = "/etc/resolv.conf"
    /// Larger previous files are refused rather than half restored.
    static let sizeLimit = 64 * 1024

    /// The previous regular file's bytes; nil when there was none or it was a symlink.
    public var original: String?
    /// The previous symlink's target.
    public var symlinkTarget: String?
    /// What caravel wrote.
    public var written: String

    /// The contents for `servers` (IP addresses, checked by `TunnelPlan`).
    static func contents(servers: [String], interface: String) -> String {
        "# Written by caravel connect for \(interface); the previous file comes back on disconnect.\n"
            + servers.map { "nameserver \($0)\n" }.joined()
    }

    /// Reads what is at `path` now and what would replace it; writes nothing.
    public static func prepare(servers: [String], interface: String, path: String = systemPath) throws(CaravelError) -> ResolvConf {
        let written = contents(servers: servers, interface: interface)
        var info = stat()
        guard lstat(path, &info) == 0 else {
            guard errno == ENOENT else { throw .io("cannot read \(path): \(String(cString: strerror(errno)))") }
            return ResolvConf(original: nil, symlinkTarget: nil, written: written)
        }
        switch info.st_mode & S_IFMT {
        case S_IFLNK:
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path), isPlainTarget(target) else {
                throw .io("cannot read the symlink \(path)")
            }
            return ResolvConf(original: nil, symlinkTarget: target, written: written)
        case S_IFREG:
            let original = try read(path)
            return ResolvConf(original: original, symlinkTarget: nil, written: written)
        default:
            throw .io("\(path) is neither a file nor a symlink; DNS was not changed (pass --dns system to leave it)")
        }
    }

    /// Puts `written` in place of what `prepare` found. A write that fails halfway (a full
    /// disk) puts the original back before it throws: restore would not recognise a half-
    /// written file as caravel's and would leave it.
    public func apply(path: String = Self.systemPath) throws(CaravelError) {
        if let original {
            do { try Self.overwrite(path, with: written) } catch {
                try? Self.overwrite(path, with: original)
                throw error
            }
        } else {
            try Self.replace(path, with: written, symlinkTarget: nil)
        }
    }

    public enum Restored: Equatable, Sendable {
        case restored
        /// The file no longer holds what caravel wrote (or never did: killed before writing).
        case leftAlone
    }

    /// Puts back what `prepare` found, when the file still holds what caravel wrote.
    @discardableResult
    public func restore(path: String = Self.systemPath) throws(CaravelError) -> Restored {
        var info = stat()
        guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG, (try? Self.read(path)) == written else { return .leftAlone }
        if let original {
            try Self.overwrite(path, with: original)
        } else if let symlinkTarget {
            try Self.replace(path, with: nil, symlinkTarget: symlinkTarget)
        } else if unlink(path) != 0 {
            throw .io("cannot remove \(path): \(String(cString: strerror(errno)))")
        }
        return .restored
    }

    /// Why a recorded change must not be acted on, or nil.
    var untrustworthy: String? {
        if (original?.utf8.count ?? 0) > Self.sizeLimit || written.utf8.count > Self.sizeLimit { return "resolv.conf too large" }
        if original != nil, symlinkTarget != nil { return "resolv.conf both a file and a symlink" }
        if let symlinkTarget, !Self.isPlainTarget(symlinkTarget) {
            return "resolv.conf symlink \(String(reflecting: symlinkTarget))"
        }
        guard written.hasPrefix("# Written by caravel connect") else { return "resolv.conf contents caravel did not write" }
        return nil
    }

    /// A symlink target caravel may record and recreate: not empty, no control characters.
    static func isPlainTarget(_ target: String) -> Bool {
        !target.isEmpty && !target.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    private static func read(_ path: String) throws(CaravelError) -> String {
        let bytes = try ProfileStore.read(path, limit: sizeLimit)
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .io("\(path) is not text; DNS was not changed") }
        return text
    }

    /// Whether the file at `path` sends lookups to systemd-resolved's stub (a symlink into
    /// /run/systemd/resolve, or `nameserver 127.0.0.53`).
    public static func pointsToResolvedStub(path: String = systemPath) -> Bool {
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path), target.contains("systemd/resolve/") {
            return true
        }
        guard let text = try? read(path) else { return false }
        return text.split(separator: "\n").contains { $0.split(whereSeparator: \.isWhitespace) == ["nameserver", "127.0.0.53"] }
    }

    /// Truncates and writes the file itself (same inode, owner and mode; works on a bind mount).
    private static func overwrite(_ path: String, with text: String) throws(CaravelError) {
        let fd = open(path, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == EROFS {
                throw .io("cannot write \(path): read-only file system; DNS would go around the tunnel, so connect stops here (--dns system leaves the host's DNS alone)")
            }
            throw .io("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw .io("cannot write \(path): \(String(cString: strerror(errno)))") }
            offset += n
        }
        guard fsync(fd) == 0 else { throw .io("cannot write \(path): \(String(cString: strerror(errno)))") }
    }

    /// Renames a new file (0644) or symlink over `path`.
    private static func replace(_ path: String, with text: String?, symlinkTarget: String?) throws(CaravelError) {
        let temporary = "\(path).caravel-\(getpid())"
        unlink(temporary)
        if let symlinkTarget {
            guard symlink(symlinkTarget, temporary) == 0 else { throw .io("cannot create \(temporary): \(String(cString: strerror(errno)))") }
        } else {
            let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw .io("cannot create \(temporary): \(String(cString: strerror(errno)))") }
            fchmod(fd, 0o644)  // whatever the umask
            close(fd)
            do { try overwrite(temporary, with: text ?? "") } catch { unlink(temporary); throw error }
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw .io("cannot replace \(path): \(reason)")
        }
    }
}
