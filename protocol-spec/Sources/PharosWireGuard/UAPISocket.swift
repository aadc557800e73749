import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One UAPI transaction per connection to `/var/run/<wireguard|amneziawg>/<iface>.sock`.
public struct UAPISocket: Sendable {
    public let path: String
    public var timeoutSeconds = 10

    public init(path: String) { self.path = path }

    public var exists: Bool { FileManager.default.fileExists(atPath: path) }

    /// Sends a `set=1` transaction; throws unless the daemon answers `errno=0`.
    public func set(_ request: UAPI.Set) throws(UAPIError) {
        _ = try exchange(request.render())
    }

    public func get() throws(UAPIError) -> UAPI.DeviceStatus {
        UAPI.DeviceStatus(parsing: try exchange("get=1\n\n"))
    }

    private func exchange(_ request: String) throws(UAPIError) -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw .uapi(path: path, reason: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw .uapi(path: path, reason: "socket path too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { throw .uapi(path: path, reason: "connect: \(String(cString: strerror(errno)))") }

        let bytes = Array(request.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw .uapi(path: path, reason: "send: \(String(cString: strerror(errno)))") }
            sent += n
        }

        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !(answer.count >= 2 && answer[answer.count - 1] == 0x0A && answer[answer.count - 2] == 0x0A) {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw .uapi(path: path, reason: n == 0 ? "daemon closed the socket mid-answer" : "recv: \(String(cString: strerror(errno)))") }
            answer += buffer[0..<n]
        }
        let text = String(decoding: answer, as: UTF8.self)
        guard let errnoLine = text.split(separator: "\n").last(where: { $0.hasPrefix("errno=") }) else {
            throw .uapi(path: path, reason: "answer has no errno line")
        }
        guard errnoLine == "errno=0" else {
            // The request is never logged: it holds keys.
            throw .uapi(path: path, reason: "daemon refused the transaction (\(errnoLine))")
        }
        return text
    }
}

public enum UAPIError: Error, Equatable, CustomStringConvertible {
    case uapi(path: String, reason: String)

    public var description: String {
        switch self {
        case .uapi(let path, let reason): "UAPI \(path): \(reason)"
        }
    }
}
