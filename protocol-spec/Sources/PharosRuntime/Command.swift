import Foundation

/// Runs a program with an argv, never through a shell. Nothing secret may be passed:
/// argv is visible to every user of the host.
public enum Command {
    /// The executable `name` names: itself when it is a path, else the first match in `$PATH`
    /// (then /usr/sbin, /sbin). As root, a `$PATH` directory counts only when it is absolute,
    /// owned by root and writable by no one else: the daemons and `caravel connect` run `ip`,
    /// `wg` and the like as root, and a directory another user can write would let them plant
    /// one.
    public static func locate(_ name: String, path: String? = ProcessInfo.processInfo.environment["PATH"],
                              asRoot: Bool = geteuid() == 0) -> String? {
        if name.hasPrefix("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = path ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        for dir in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"] where !asRoot || isTrusted(dir) {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// An absolute directory owned by root that neither its group nor others can write.
    static func isTrusted(_ directory: String) -> Bool {
        var info = stat()
        guard directory.hasPrefix("/"), stat(directory, &info) == 0 else { return false }
        return info.st_mode & S_IFMT == S_IFDIR && info.st_uid == 0 && info.st_mode & 0o022 == 0
    }

    /// Runs to completion; throws with the combined output when the exit status is not 0.
    /// posix_spawn + waitpid directly: Foundation's `Process.waitUntilExit` polls its run loop
    /// in 50 ms steps, which made every `ip` call of a tunnel bring-up cost up to 50 ms.
    @discardableResult
    public static func run(_ argv: [String], input: String? = nil) throws(CommandError) -> String {
        let (status, text) = try execute(argv, input: input.map { Array($0.utf8) }, inputFile: nil)
        guard status == 0 else { throw .command(argv: argv, status: status, output: text.trimmingCharacters(in: .whitespacesAndNewlines)) }
        return text
    }

    /// Runs to completion and returns its exit status with what it printed, whatever the
    /// status (`ssh` tells failures apart by what it printed). Its standard input is `input`,
    /// or the file at `inputFile` (read by the child itself: nothing is copied through this
    /// process), not both. `environment` nil: ours.
    public static func status(_ argv: [String], input: String? = nil, inputFile: String? = nil,
                              environment: [String: String]? = nil) throws(CommandError) -> (status: Int32, output: String) {
        precondition(input == nil || inputFile == nil, "Command.status takes input or inputFile, not both")
        return try execute(argv, input: input.map { Array($0.utf8) }, inputFile: inputFile, environment: environment)
    }

    /// A child that exits before reading all its input (ssh refusing a host key) must not
    /// take this process with it: its writes fail with EPIPE instead. Children start with
    /// every signal at its default (`Spawn`).
    private static let ignoreBrokenPipes: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    private static func execute(_ argv: [String], input: [UInt8]?, inputFile: String?,
                                environment: [String: String]? = nil) throws(CommandError) -> (Int32, String) {
        guard let executable = locate(argv[0]) else {
            throw .command(argv: argv, status: 127, output: "\(argv[0]) not found")
        }
        var fileDescriptor: Int32 = -1
        if let inputFile {
            fileDescriptor = open(inputFile, O_RDONLY | O_CLOEXEC)
            guard fileDescriptor >= 0 else {
                throw .command(argv: argv, status: 127, output: "cannot read \(inputFile): \(String(cString: strerror(errno)))")
            }
        }
        defer { if fileDescriptor >= 0 { close(fileDescriptor) } }
        var output = [Int32](repeating: -1, count: 2), stdin = [Int32](repeating: -1, count: 2)
        guard Self.pipeCloseOnExec(&output), input == nil || Self.pipeCloseOnExec(&stdin) else {
            throw .command(argv: argv, status: 127, output: "pipe: \(String(cString: strerror(errno)))")
        }
        let childInput: Int32? = input != nil ? stdin[0] : (fileDescriptor >= 0 ? fileDescriptor : nil)
        let spawned = Spawn.start(executable, argv: argv, environment: environment, stdin: childInput, output: output[1])
        close(output[1])
        if input != nil { close(stdin[0]) }
        let pid: pid_t
        switch spawned {
        case .success(let child): pid = child
        case .failure(let failure):
            close(output[0])
            if input != nil { close(stdin[1]) }
            throw .command(argv: argv, status: 127, output: failure.description)
        }
        if let bytes = input {
            _ = Self.ignoreBrokenPipes
            var sent = 0
            while sent < bytes.count {
                let n = bytes.withUnsafeBytes { write(stdin[1], $0.baseAddress! + sent, bytes.count - sent) }
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { break }
                sent += n
            }
            close(stdin[1])
        }
        var collected: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(output[0], $0.baseAddress!, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { break }
            collected += buffer[0..<n]
        }
        close(output[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        return (Spawn.exitCode(status), String(decoding: collected, as: UTF8.self))
    }

    /// A pipe whose ends other children do not inherit (`pipe2` is not imported on Linux).
    private static func pipeCloseOnExec(_ fds: inout [Int32]) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return true
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
