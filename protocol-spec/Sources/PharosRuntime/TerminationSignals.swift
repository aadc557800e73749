import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM and SIGINT cancel `task` (a daemon's main task) instead of killing the process,
/// so it can tell systemd it is stopping and tear down what it started.
public final class TerminationSignals {
    private let sources: [any DispatchSourceSignal]

    public init<T: Sendable>(cancelling task: Task<T, any Error>, onSignal: @escaping @Sendable (Int32) -> Void = { _ in }) {
        sources = [SIGTERM, SIGINT].map { signo in
            signal(signo, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signo)
            source.setEventHandler {
                onSignal(signo)
                task.cancel()
            }
            source.resume()
            return source
        }
    }

    deinit { sources.forEach { $0.cancel() } }
}
