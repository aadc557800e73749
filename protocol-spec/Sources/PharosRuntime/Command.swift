import Foundation

/// Runs a program with an argv, never through a shell. Nothing secret may be passed:
/// argv is visible to every user of the host.
public enum Command {
    public static func locate(_ name: String) -> String? {
        if name.hasPrefix("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for dir in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"] {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs to completion; throws with the combined output when the exit status is not 0.
    @discardableResult
    public static func run(_ argv: [String], input: String? = nil) throws(CommandError) -> String {
        guard let executable = locate(argv[0]) else {
            throw .command(argv: argv, status: 127, output: "\(argv[0]) not found")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(argv.dropFirst())
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let stdin = Pipe()
        process.standardInput = input == nil ? FileHandle.nullDevice : stdin
        do { try process.run() } catch {
            throw .command(argv: argv, status: 127, output: "\(error)")
        }
        if let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try? stdin.fileHandleForWriting.close()
        }
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw .command(argv: argv, status: process.terminationStatus, output: output.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return output
    }
}

/// A program that could not be run or did not exit 0, with what it printed.
public struct CommandError: Error, Equatable, CustomStringConvertible {
    public var argv: [String]
    public var status: Int32
    public var output: String

    public static func command(argv: [String], status: Int32, output: String) -> CommandError {
        CommandError(argv: argv, status: status, output: output)
    }

    public var description: String { "\(argv.joined(separator: " ")) exited \(status): \(output)" }
}
