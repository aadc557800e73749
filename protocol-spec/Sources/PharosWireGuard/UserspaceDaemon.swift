import Foundation
import PharosRuntime
import PharosSpec

/// Starting a userspace WireGuard daemon (wireguard-go, amneziawg-go) that the caller
/// supervises: in the foreground, with nothing of ours in its environment but PATH.
public enum UserspaceDaemon {
    /// Starts `executable interface` as `child`. `output` receives its stdout and stderr (default: ours).
    public static func start(_ child: ChildProcess, executable: String, interface: String, output: FileHandle? = nil,
                             onExit: @escaping @Sendable (ChildProcess.Exit) -> Void = { _ in }) throws {
        // Foreground so it can be supervised; wireguard-go otherwise refuses to run beside a kernel module.
        var environment = ["WG_PROCESS_FOREGROUND": "1", "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"]
        environment["PATH"] = ProcessInfo.processInfo.environment["PATH"]
        try child.start(executable, arguments: [interface], environment: environment, output: output, onExit: onExit)
    }

    /// True once the daemon's UAPI socket exists; false when it exits first or `timeout` passes.
    public static func waitForSocket(_ socket: UAPISocket, of child: ChildProcess, timeout: Duration = .seconds(5)) async -> Bool {
        await child.waitUntilReady(timeout: timeout) { socket.exists }
    }
}
