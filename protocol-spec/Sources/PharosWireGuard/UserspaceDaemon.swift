import Foundation
import PharosSpec

/// Starting a userspace WireGuard daemon (wireguard-go, amneziawg-go) that the caller
/// supervises: in the foreground, with nothing of ours in its environment but PATH.
public enum UserspaceDaemon {
    /// `executable interface`. `output` receives its stdout and stderr (default: ours).
    public static func spawn(executable: String, interface: String, output: FileHandle? = nil,
                             onExit: (@Sendable (Process) -> Void)? = nil) throws -> Process {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: executable)
        child.arguments = [interface]
        // Foreground so it can be supervised; wireguard-go otherwise refuses to run beside a kernel module.
        var environment = ["WG_PROCESS_FOREGROUND": "1", "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"]
        environment["PATH"] = ProcessInfo.processInfo.environment["PATH"]
        child.environment = environment
        child.standardInput = FileHandle.nullDevice
        if let output {
            child.standardOutput = output
            child.standardError = output
        }
        child.terminationHandler = onExit
        try child.run()
        return child
    }

    /// True once the daemon's UAPI socket exists; false when it exits first or `timeout` passes.
    public static func waitForSocket(_ socket: UAPISocket, of child: Process, timeout: Duration = .seconds(5)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if socket.exists { return true }
            guard child.isRunning else { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return socket.exists
    }
}

extension Obfuscation {
    /// AmneziaWG's UAPI device keys for this set, in its order (i1–i5 only when set).
    public var uapiLines: [String] {
        ["jc=\(jc)", "jmin=\(jmin)", "jmax=\(jmax)", "s1=\(s1)", "s2=\(s2)", "s3=\(s3)", "s4=\(s4)",
         "h1=\(h1)", "h2=\(h2)", "h3=\(h3)", "h4=\(h4)"]
            + [("i1", i1), ("i2", i2), ("i3", i3), ("i4", i4), ("i5", i5)].filter { !$0.1.isEmpty }.map { "\($0.0)=\($0.1)" }
    }
}
