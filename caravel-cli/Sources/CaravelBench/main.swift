// `make bench` (root, wireguard-go): how fast a stored profile opens and how long
// `caravel connect` takes from start to the first byte through the tunnel. JSON lines.
import CaravelCore
import CaravelLab
import Foundation

func emit(_ fields: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
    fflush(nil)
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
}

func ms(_ d: Duration) -> Double { Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15 }

guard NetnsLab.available else {
    emit(["bench": "caravel", "skipped": "needs root and /usr/bin/wireguard-go"])
    exit(0)
}
let binaryDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
let lab = try NetnsLab(binaryDirectory: binaryDirectory)
defer { lab.tearDown() }

// Profile open: read the stored file, parse, resolve the connect plan.
let store = try ProfileStore(directory: "\(lab.dir)/store")
var opens: [Double] = []
for _ in 0..<500 {
    let start = ContinuousClock.now
    _ = try ConnectPlan.resolve(entry: try store.entry("lab"))
    opens.append(ms(ContinuousClock.now - start))
}
emit(["bench": "caravel.profile_open", "iterations": opens.count, "p50_ms": percentile(opens, 0.5), "p99_ms": percentile(opens, 0.99)])

// Connect: process start → tunnel up ("connected:") and → first ping reply through it.
// The ping's own round trip (measured once the tunnel is up) is subtracted: it includes
// the WireGuard handshake only on the first packet, which is what "excluding the
// handshake RTT" asks to leave out.
var upTimes: [Double] = [], firstByte: [Double] = []
for _ in 0..<5 {
    let start = ContinuousClock.now
    let client = try lab.connect()
    let up = ContinuousClock.now - start
    while !(try lab.ping("10.200.0.1", wait: 1)) {}
    let reply = ContinuousClock.now - start
    let rttStart = ContinuousClock.now
    _ = try lab.ping("10.200.0.1", wait: 1)
    let rtt = ContinuousClock.now - rttStart
    upTimes.append(ms(up))
    firstByte.append(ms(reply - rtt))
    try lab.caravel(["down", "--interface", lab.interface])
    client.waitUntilExit()
}
emit(["bench": "caravel.connect", "runs": upTimes.count, "tunnel_up_p50_ms": percentile(upTimes, 0.5),
      "first_byte_p50_ms": percentile(firstByte, 0.5), "first_byte_max_ms": firstByte.max()!, "goal_ms": 300])
