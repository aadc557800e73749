import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Secrets (passwords, passphrases) come from stdin, never from argv or the environment.
public enum SecretInput {
    /// The next line of stdin, nil at its end or on an empty line. On a terminal it prompts
    /// on stderr and does not echo what is typed.
    public static func readLine(prompt: String) -> [UInt8]? {
        var saved = termios()
        let terminal = isatty(STDIN_FILENO) == 1 && tcgetattr(STDIN_FILENO, &saved) == 0
        if terminal {
            FileHandle.standardError.write(Data(prompt.utf8))
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet)
        }
        defer {
            if terminal {
                tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
                FileHandle.standardError.write(Data("\n".utf8))
            }
        }
        guard let line = Swift.readLine(strippingNewline: true), !line.isEmpty else { return nil }
        return Array(line.utf8)
    }

    /// Whether stdin is a terminal (a new passphrase is then asked twice).
    public static var isTerminal: Bool { isatty(STDIN_FILENO) == 1 }
}
