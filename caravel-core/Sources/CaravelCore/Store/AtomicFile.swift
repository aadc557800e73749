import Foundation

/// Writes that a crash never leaves half done: a temporary file in the same directory,
/// fsync, rename over the target, fsync of the directory.
enum AtomicFile {
    static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(CaravelError) {
        let directory = (path as NSString).deletingLastPathComponent
        let temp = "\(directory)/.\((path as NSString).lastPathComponent).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .io("cannot create \(temp): \(String(cString: strerror(errno)))") }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                let reason = String(cString: strerror(errno))
                close(fd)
                unlink(temp)
                throw .io("cannot write \(temp): \(reason)")
            }
            written += n
        }
        fchmod(fd, mode)
        guard fsync(fd) == 0, close(fd) == 0 else {
            unlink(temp)
            throw .io("cannot flush \(temp) to disk: \(String(cString: strerror(errno)))")
        }
        guard rename(temp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temp)
            throw .io("cannot move \(temp) to \(path): \(reason)")
        }
        syncDirectory(directory)
    }

    static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    /// Reads a regular file of at most `limit` bytes.
    static func read(_ path: String, limit: Int = 1 << 20) throws(CaravelError) -> [UInt8] {
        var info = stat()
        guard stat(path, &info) == 0 else { throw .notFound("\(path) does not exist") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .io("\(path) is not a regular file") }
        guard Int(info.st_size) <= limit else { throw .io("\(path) is \(info.st_size) bytes; the limit is \(limit)") }
        guard let data = FileManager.default.contents(atPath: path) else { throw .io("cannot read \(path)") }
        return Array(data)
    }
}
