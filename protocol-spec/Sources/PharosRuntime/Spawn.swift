import Foundation

/// posix_spawn as every child of ours is started: argv only, and with a clean signal state.
/// A child inherits the spawning thread's signal mask, and Swift's concurrency and Dispatch
/// threads block nearly every signal: started through Foundation's `Process`, a daemon
/// ignored SIGTERM and was only ever stopped by the SIGKILL after the grace period. Here the
/// child gets an empty mask and every signal at its default disposition, and no descriptor
/// of ours beyond 0, 1 and 2.
enum Spawn {
    /// `stdin`: a descriptor for the child's standard input (nil: /dev/null). `output`: a
    /// descriptor for its stdout and stderr (nil: ours). `environment` nil: ours. In its own
    /// process group with `newProcessGroup`, so a stop reaches what it started too.
    static func start(_ executable: String, argv: [String], environment: [String: String]?, stdin: Int32?, output: Int32?,
                      newProcessGroup: Bool = false) -> Result<pid_t, SpawnFailure> {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let stdin { posix_spawn_file_actions_adddup2(&actions, stdin, 0) } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        if let output {
            posix_spawn_file_actions_adddup2(&actions, output, 1)
            posix_spawn_file_actions_adddup2(&actions, output, 2)
        }
        // Nothing else of ours reaches the child: not a listening socket, not a key file,
        // not the descriptor Foundation's Process watches to see the parent exit (a daemon
        // holding it made the parent look alive after it was killed).
        _ = Self.addCloseFrom(&actions, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if newProcessGroup {
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        let cArgs = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        var pid: pid_t = 0
        let result: Int32
        if let environment {
            let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer { cEnv.forEach { free($0) } }
            result = posix_spawn(&pid, executable, &actions, &attributes, cArgs, cEnv)
        } else {
            result = posix_spawn(&pid, executable, &actions, &attributes, cArgs, environ)
        }
        guard result == 0 else { return .failure(SpawnFailure(executable: executable, errno: result)) }
        return .success(pid)
    }

    /// glibc ≥ 2.34's `posix_spawn_file_actions_addclosefrom_np`, which Swift does not
    /// import (it sits behind `_GNU_SOURCE`); looked up once. Debian 12 has glibc 2.36.
    private static let addCloseFrom: @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32 = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else {
            fatalError("glibc without posix_spawn_file_actions_addclosefrom_np (needs 2.34 or newer)")
        }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// The exit status of a `waitpid` status word: the code, or 128 + the signal.
    static func exitCode(_ status: Int32) -> Int32 {
        // WIFEXITED / WEXITSTATUS / WTERMSIG by hand (the macros do not import).
        status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}

public struct SpawnFailure: Error, Equatable, CustomStringConvertible {
    public var executable: String
    public var errno: Int32
    public var description: String { "cannot run \(executable): \(String(cString: strerror(errno)))" }
}
