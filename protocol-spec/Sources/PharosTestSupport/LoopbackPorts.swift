#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Free TCP ports on 127.0.0.1 for tests and benchmarks, for a daemon to listen on a moment
/// later. They come from below the kernel's ephemeral range (32768-60999), so no outgoing
/// connection of a test running alongside can take one as its source port in between (it
/// did: "Address already in use"), and this process never hands out a port twice. Every
/// probe socket stays bound until all `count` ports are chosen; they are released on return.
public enum LoopbackPorts {
    static let range = 20_000...32_767
    private static let handedOut = Mutex<Set<Int>>([])

    public static func free(_ count: Int = 1) -> [Int] {
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        return (0..<count).map { _ in
            for _ in 0..<1000 {
                let port = Int.random(in: range)
                guard handedOut.withLock({ $0.insert(port).inserted }) else { continue }
                if let fd = bound(port: port) {
                    sockets.append(fd)
                    return port
                }
            }
            let (port, fd) = bound()  // the range is exhausted: let the kernel choose
            sockets.append(fd)
            return port
        }
    }

    /// A TCP socket bound to 127.0.0.1:`port`, or nil when the port is taken.
    static func bound(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = loopback(port: port)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// A TCP socket bound to 127.0.0.1 on a port the kernel chose, and that port.
    static func bound() -> (port: Int, socket: Int32) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return (Int(UInt16(bigEndian: address.sin_port)), fd)
    }

    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return address
    }
}

extension LoopbackPorts {
    /// A port another program holds: a socket bound to 127.0.0.1 and listening, until the
    /// caller closes `socket`. For tests of what a daemon says when its port is taken.
    public static func hold() -> (port: Int, socket: Int32) {
        let held = bound()
        _ = listen(held.socket, 1)
        return held
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port` (a port that should be
    /// closed after its daemon stopped).
    public static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = loopback(port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
