#if canImport(Glibc)
import Glibc
#endif

/// Free TCP ports on 127.0.0.1 for tests and benchmarks. Every probe socket stays bound until
/// all `count` ports are chosen, so the ports are distinct; they are released on return.
public enum LoopbackPorts {
    public static func free(_ count: Int = 1) -> [Int] {
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        return (0..<count).map { _ in
            let (port, fd) = bound()
            sockets.append(fd)
            return port
        }
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
