import CaravelCore
import Foundation
import PharosRuntime
import ServiceLifecycle

/// Supervises xray for `caravel connect` on an XRay profile: starts it with the rendered
/// config, says where its SOCKS proxy listens, then waits until it exits or the group shuts
/// down. Stopping it and removing its config is the composition root's.
struct XRayService: Service {
    let plan: ConnectPlan
    let binary: String?
    let xray: ChildProcess

    func run() async throws {
        try XRayClient.start(xray, plan: plan, binary: binary)
        print("xray running: SOCKS5 proxy on 127.0.0.1:\(XRayClient.socksPort) to \(plan.nodeName) at \(plan.endpoint)")
        print("point applications at it (there is no system-wide tunnel for XRay on Linux yet); Ctrl-C stops")
        fflush(nil)
        await cancelWhenGracefulShutdown { [xray] in await xray.waitForExit() }
        guard xray.isRunning else { throw CaravelError.tunnel("xray exited on its own; see its output above") }
    }
}
