import Foundation

/// An external tool (openssl, wg, ip, ping, node): run to completion with no input, its exit
/// status and stdout (with stderr when merged), whatever the status.
public enum Tool {
    public static func run(_ path: String, _ arguments: [String], mergingStandardError: Bool = true) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = mergingStandardError ? pipe : FileHandle.nullDevice
        // Nothing to read: a tool that would (openssl s_client) sees end of input at once.
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }
}
