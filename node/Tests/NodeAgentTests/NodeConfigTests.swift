import PharosConfig
import PharosSpec
import Testing
@testable import NodeAgent

@Suite struct NodeConfigTests {
    @Test func defaultsNeedNoFile() throws {
        let config = try NodeConfig.load(path: "/nonexistent/node.yaml", environment: [:])
        #expect(config.listenAddress == ":8444")
        #expect(try config.listenHostPort() == HostPort(host: "0.0.0.0", port: 8444))
        #expect(config.backend == .amneziawgGo)
    }

    @Test func yamlThenEnvironmentOverrides() throws {
        var config = NodeConfig()
        try NodeConfig.schema.apply(yaml: """
            control:
              listen_addr: 127.0.0.1:9444
            dataplane:
              backend: wireguard-go
              interface: wg7
              listen_port: 51820
            """, source: "node.yaml", to: &config)
        try NodeConfig.schema.apply(environment: ["NODE_DATAPLANE_LISTEN_PORT": "443", "NODE_LOG_LEVEL": "debug"], to: &config)
        #expect(config.backend == .wireguardGo)
        #expect(config.interfaceName == "wg7")
        #expect(config.listenPort == 443)
        #expect(config.logLevel == "debug")
        #expect(config.socketDirectory == "/var/run/wireguard")
        #expect(try config.listenHostPort() == HostPort(host: "127.0.0.1", port: 9444))
    }

    @Test(arguments: [
        ("dataplane:\n  backend: kernel\n", "dataplane.backend"),
        ("dataplane:\n  listen_port: 70000\n", "dataplane.listen_port"),
        ("dataplane:\n  interface: a-name-far-too-long\n", "dataplane.interface"),
        ("control:\n  listen_addr: nowhere\n", "control.listen_addr"),
        ("dataplane:\n  colour: blue\n", "dataplane.colour"),
        ("- just\n- a list\n", "mapping"),
    ])
    func badSettingsAreNamed(yaml: String, named: String) {
        var config = NodeConfig()
        let error = #expect(throws: ConfigError.self) { try NodeConfig.schema.apply(yaml: yaml, source: "node.yaml", to: &config) }
        #expect(error?.description.contains(named) == true, "\(String(describing: error))")
    }
}
