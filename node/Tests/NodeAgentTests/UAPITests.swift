import Foundation
import PharosSpec
import PharosWireGuard
import Testing
@testable import NodeAgent

@Suite struct UAPITests {
    let pub = String(repeating: "ab", count: 32), psk = String(repeating: "cd", count: 32)

    @Test func fullReplaceIsOneTransaction() {
        var obfuscation = Obfuscation.generate()
        obfuscation.jc = 4
        let text = UAPI.Set(privateKeyHex: String(repeating: "11", count: 32), listenPort: 443, deviceLines: obfuscation.uapiLines,
                            replacePeers: true,
                            peers: [UAPI.Peer(publicKeyHex: pub, presharedKeyHex: psk, allowedIPs: ["10.86.0.5/32", "fd00::5/128"])]).render()
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first == "set=1")
        #expect(text.hasSuffix("\n\n"))
        #expect(lines.contains("jc=4"))
        #expect(lines.firstIndex(of: "replace_peers=true")! < lines.firstIndex(of: "public_key=\(pub)")!)
        #expect(lines.contains("preshared_key=\(psk)"))
        #expect(lines.filter { $0.hasPrefix("allowed_ip=") } == ["allowed_ip=10.86.0.5/32", "allowed_ip=fd00::5/128"])
    }

    @Test func plainWireGuardGetsNoObfuscationAndRemovalIsOneLine() {
        let text = UAPI.Set(peers: [UAPI.Peer(publicKeyHex: pub, remove: true)]).render()
        #expect(text == "set=1\npublic_key=\(pub)\nremove=true\n\n")
    }

    @Test func parsesGetAnswers() {
        let status = UAPI.DeviceStatus(parsing: """
            private_key=\(psk)
            listen_port=51820
            public_key=\(pub)
            endpoint=192.0.2.2:40000
            last_handshake_time_sec=1700000000
            last_handshake_time_nsec=5
            rx_bytes=100
            tx_bytes=200
            allowed_ip=10.86.0.5/32
            public_key=\(psk)
            errno=0

            """)
        #expect(status.listenPort == 51820)
        #expect(status.peers.count == 2)
        #expect(status.peers[0].endpoint == "192.0.2.2:40000")
        #expect(status.peers[0].lastHandshakeSeconds == 1_700_000_000)
        #expect(status.peers[0].rxBytes == 100 && status.peers[0].txBytes == 200)
        #expect(status.peers[0].allowedIPs == ["10.86.0.5/32"])
    }

    @Test func keysConvertBetweenBase64AndHex() {
        let b64 = Support.key()
        let hex = WireGuardKey.hex(fromBase64: b64)!
        #expect(hex.count == 64)
        #expect(WireGuardKey.base64(fromHex: hex) == b64)
        #expect(WireGuardKey.hex(fromBase64: "c2hvcnQ=") == nil)
    }

    @Test(arguments: [("10.0.0.1/32", true), ("::/0", true), ("fd00::1/129", false), ("10.0.0.1", false), ("300.0.0.1/8", false), ("10.0.0.0/08", false)])
    func cidrValidation(text: String, valid: Bool) {
        #expect(CIDR.isValid(text) == valid)
    }
}

@Suite struct AmneziaWGIdentityTests {
    @Test func identityIsCreatedOnceAt0600() throws {
        let dir = try Support.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try AmneziaWGIdentity.loadOrCreate(at: "\(dir)/awg-node.json")
        let again = try AmneziaWGIdentity.loadOrCreate(at: "\(dir)/awg-node.json")
        #expect(first == again)
        #expect(try Support.mode("\(dir)/awg-node.json") == 0o600)
    }
}

@Suite struct CIDRContainmentTests {
    @Test(arguments: [
        ("10.86.0.1/16", "10.86.3.4/32", true), ("10.86.0.1/16", "10.87.0.1/32", false), ("10.86.0.1/16", "10.0.0.0/8", false),
        ("fd00::1/64", "fd00::5/128", true), ("fd00::1/64", "fd01::5/128", false), ("10.86.0.1/16", "fd00::5/128", false),
        ("0.0.0.0/0", "192.0.2.1/32", true),
    ])
    func containment(outer: String, inner: String, expected: Bool) {
        #expect(CIDR.contains(outer, inner) == expected)
    }
}
