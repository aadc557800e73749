import CaravelCore
import Foundation
import PharosRuntime
import ServiceLifecycle

/// Holds the WireGuard tunnel for `caravel connect`: brings it up, says so (and READY to
/// systemd), then waits until its daemon exits or the group shuts down. Tearing it down is
/// the composition root's, so it happens whatever ended the run.
struct TunnelService: Service {
    let tunnel: LinuxTunnel
    let started: ContinuousClock.Instant

    func run() async throws {
        try await tunnel.up()
        let plan = tunnel.plan, options = tunnel.options
        print("connected: \(plan.entry)/\(plan.profileName) via \(plan.nodeName) at \(plan.endpoint) on \(options.interface)"
              + (tunnel.summary.isEmpty ? "" : ", \(tunnel.summary)")
              + " (up in \(Int((ContinuousClock.now - started) / .milliseconds(1))) ms)")
        print("Ctrl-C or `caravel down` disconnects")
        fflush(nil)
        // Under systemd (pharos-caravel@PROFILE.service, Type=notify): ready once the tunnel is up.
        SystemdNotify.send("READY=1\nSTATUS=connected via \(plan.nodeName) at \(plan.endpoint)")
        await cancelWhenGracefulShutdown { [tunnel] in await tunnel.waitWhileRunning() }
        SystemdNotify.send("STOPPING=1")
        guard tunnel.daemonRunning else { throw CaravelError.tunnel("the WireGuard daemon exited; the tunnel was torn down") }
    }
}
