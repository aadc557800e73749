import PharosSpec
import Testing

@Suite struct HostPortTests {
    @Test(arguments: [
        ("node-1.example.net:8444", "node-1.example.net", 8444, "node-1.example.net:8444"),
        ("192.0.2.7:443", "192.0.2.7", 443, "192.0.2.7:443"),
        ("[2001:db8::1]:8443", "2001:db8::1", 8443, "[2001:db8::1]:8443"),
        ("  relay.example.org:8443 ", "relay.example.org", 8443, "relay.example.org:8443"),
        ("[::1]:1", "::1", 1, "[::1]:1"),
    ])
    func dialAddressesRoundTrip(text: String, host: String, port: Int, rendered: String) throws {
        let parsed = try HostPort.parse(text)
        #expect(parsed.host == host && parsed.port == port)
        #expect(parsed.description == rendered)
        #expect(try HostPort.parse(parsed.description) == parsed)
    }

    @Test func aDefaultPortCompletesABareHost() throws {
        #expect(try HostPort.parse("relay.example.org", defaultPort: 8443) == HostPort(host: "relay.example.org", port: 8443))
        #expect(try HostPort.parse("[2001:db8::2]", defaultPort: 8444) == HostPort(host: "2001:db8::2", port: 8444))
        #expect(try HostPort.parse("relay.example.org:9000", defaultPort: 8443).port == 9000)
    }

    @Test(arguments: [
        ("", HostPortError.empty),
        ("node-1", .missingPort("node-1")),
        (":8444", .missingHost(":8444")),
        ("node-1:0", .invalidPort("node-1:0", port: "0")),
        ("node-1:65536", .invalidPort("node-1:65536", port: "65536")),
        ("node-1:https", .invalidPort("node-1:https", port: "https")),
        ("2001:db8::1:8443", .unbracketedIPv6("2001:db8::1:8443")),
        ("[2001:db8::zz]:8443", .invalidHost("[2001:db8::zz]:8443", host: "2001:db8::zz")),
        ("[2001:db8::1]8443", .invalidHost("[2001:db8::1]8443", host: "[2001:db8::1]8443")),
        ("evil host:8443", .invalidHost("evil host:8443", host: "evil host")),
        ("a/b:8443", .invalidHost("a/b:8443", host: "a/b")),
        ("user@host:22", .invalidHost("user@host:22", host: "user@host")),
        ("host\n:1", .invalidHost("host\n:1", host: "host\n")),
    ])
    func malformedDialAddressesSayWhatIsWrong(text: String, error: HostPortError) {
        #expect(throws: error) { try HostPort.parse(text) }
        #expect(!error.description.isEmpty)
    }

    @Test func listenAddressesAllowEveryInterfaceAndPortZero() throws {
        #expect(try HostPort.listen(":8444") == HostPort(host: "0.0.0.0", port: 8444))
        #expect(try HostPort.listen("127.0.0.1:0") == HostPort(host: "127.0.0.1", port: 0))
        #expect(try HostPort.listen("[::]:8443") == HostPort(host: "::", port: 8443))
        #expect(throws: HostPortError.missingPort("127.0.0.1")) { try HostPort.listen("127.0.0.1") }
        #expect(throws: HostPortError.invalidPort(":70000", port: "70000")) { try HostPort.listen(":70000") }
    }

    @Test func literalsAreRecognised() throws {
        #expect(try HostPort.parse("192.0.2.1:1").isIPv4Literal)
        #expect(try !HostPort.parse("relay.example.org:1").isIPv4Literal)
        #expect(try HostPort.parse("[2001:db8::1]:1").isIPv6Literal)
    }
}
