import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Crash-safe file writes: temp file in the same directory, fsync, rename, fsync of
/// the directory. A reader sees the old file or the new one, never half of either.
public enum AtomicFile {
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(AtomicFileError) {
        // A bare file name lives in the working directory, and so must its temporary file
        // (not "/", where the rename would cross file systems or the write be refused).
        let parent = (path as NSString).deletingLastPathComponent, directory = parent.isEmpty ? "." : parent
        let temp = "\(directory)/.\((path as NSString).lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .failed(path: path, step: "create \(temp)", errno: errno) }
        var ok = false
        defer {
            if !ok { unlink(temp) }
        }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                close(fd)
                throw .failed(path: path, step: "write", errno: e)
            }
            written += n
        }
        guard fchmod(fd, mode) == 0, fsync(fd) == 0 else {
            let e = errno
            close(fd)
            throw .failed(path: path, step: "fsync", errno: e)
        }
        close(fd)
        guard rename(temp, path) == 0 else { throw .failed(path: path, step: "rename", errno: errno) }
        ok = true
        syncDirectory(directory)
    }

    /// Makes renames and unlinks in `directory` durable.
    public static func syncDirectory(_ directory: String) {
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { return }
        fsync(dfd)
        close(dfd)
    }

    /// The file's bytes, or nil when it does not exist.
    public static func read(_ path: String) throws(AtomicFileError) -> [UInt8]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else { throw .failed(path: path, step: "read", errno: EACCES) }
        return Array(data)
    }
}

public enum AtomicFileError: Error, Equatable, CustomStringConvertible {
    case failed(path: String, step: String, errno: Int32)

    public var description: String {
        switch self {
        case .failed(let path, let step, let e): "cannot save \(path): \(step) failed: \(String(cString: strerror(e)))"
        }
    }
}
