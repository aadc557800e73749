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
    /// Follow the profile's endpoint rotation (off: `connect --no-rotation`).
    var rotate = true

    /// Moves the tunnel to another endpoint of its node every interval ± jitter, until
    /// cancelled. A failed move is reported and the tunnel stays where it is.
    static func rotate(_ tunnel: LinuxTunnel, _ rotation: EndpointRotation) async {
        var rng = SystemRandomNumberGenerator()
        while true {
            do { try await Task.sleep(for: rotation.nextDelay(using: &rng)) } catch { return }
            do {
                let endpoint = try tunnel.rotate(using: &rng)
                print("moved to \(endpoint)")
                fflush(nil)
                SystemdNotify.send("STATUS=connected via \(tunnel.plan.nodeName) at \(endpoint)")
            } catch {
                FileHandle.standardError.write(Data("caravel: warning: \(error)\n".utf8))
            }
        }
    }

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
        let rotation = rotate ? tunnel.rotation : nil
        if let rotation {
            print("rotating between \(rotation.hosts.joined(separator: ", ")) every \(rotation.intervalSeconds) s"
                  + (rotation.jitterSeconds > 0 ? " ± \(rotation.jitterSeconds) s" : ""))
            fflush(nil)
        }
        await cancelWhenGracefulShutdown { [tunnel] in
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await tunnel.waitWhileRunning() }
                if let rotation { group.addTask { await Self.rotate(tunnel, rotation) } }
                await group.next()  // the daemon exited: the rotation has nothing left to move
                group.cancelAll()
            }
        }
        SystemdNotify.send("STOPPING=1")
        guard tunnel.daemonRunning else { throw CaravelError.tunnel("the WireGuard daemon exited; the tunnel was torn down") }
    }
}
