import Logging
import ServiceLifecycle

/// How every Pharos daemon runs its services: one ServiceGroup, SIGTERM and SIGINT start a
/// graceful shutdown (services stop in reverse order of start); what has not stopped 30 s
/// later is cancelled.
public enum DaemonServiceGroup {
    public static let shutdownGrace = Duration.seconds(30)

    /// `services` in start order, each with the name the group logs it under.
    /// `signals: false` for tests and embedders that stop the group themselves.
    public static func make(_ services: [(name: String, service: any Service)], signals: Bool = true,
                            logger: Logger) -> ServiceGroup {
        var configuration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0.service, serviceName: $0.name) },
            gracefulShutdownSignals: signals ? [.sigterm, .sigint] : [],
            cancellationSignals: [],
            logger: logger)
        configuration.maximumGracefulShutdownDuration = shutdownGrace
        return ServiceGroup(configuration: configuration)
    }
}
