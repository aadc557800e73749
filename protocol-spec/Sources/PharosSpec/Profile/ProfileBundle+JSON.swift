/// JSON of the plaintext bundle, members in upstream's struct order. Readers accept
/// the older layout with `nodes`/`path` at top level and no `profiles`.
extension ProfileBundle {
    static let format = "profile bundle"
    public static let maximumSize = 4 << 20

    public var json: JSONValue {
        var members = [
            JSONMember("fleet_id", .string(fleetID)),
            JSONMember("user", .string(user)),
            JSONMember("revision", .integer(revision)),
            JSONMember("issued_at", .string(issuedAt)),
            JSONMember("expires_at", .string(expiresAt)),
            JSONMember("profiles", .array(profiles.map(\.json))),
        ]
        if let control {
            members.append(JSONMember("control", .object([
                JSONMember("label", .string(control.label)),
                JSONMember("city", .string(control.city)),
                JSONMember("lat", .double(control.latitude)),
                JSONMember("lon", .double(control.longitude)),
            ])))
        }
        return .object(members)
    }

    public init(jsonBytes: [UInt8]) throws(PharosFormatError) {
        try self.init(fields: JSONFields(parsing: jsonBytes, format: Self.format, limit: Self.maximumSize))
    }

    public init(json: JSONValue) throws(PharosFormatError) {
        try self.init(fields: JSONFields(json, format: Self.format))
    }

    private init(fields f: JSONFields) throws(PharosFormatError) {
        var profiles = try f.array("profiles").map { v throws(PharosFormatError) in try ClientProfile(json: JSONFields(v, format: Self.format)) }
        if f.optional("profiles") == nil, f.optional("nodes") != nil {
            // Pre-profiles bundles: one implicit profile over the top-level nodes and path.
            profiles = [ClientProfile(
                id: "default", name: "default", protocolChoice: .both,
                nodes: try f.array("nodes").map { v throws(PharosFormatError) in try ProfileNode(json: JSONFields(v, format: Self.format)) },
                path: try f.object("path").map { o throws(PharosFormatError) in try PathView(json: o) })]
        }
        var control: ControlLocation?
        if let c = try f.object("control") {
            control = ControlLocation(label: try c.optionalString("label"), city: try c.optionalString("city"),
                                      latitude: try c.optionalDouble("lat") ?? 0, longitude: try c.optionalDouble("lon") ?? 0)
        }
        self.init(fleetID: try f.optionalString("fleet_id"), user: try f.optionalString("user"),
                  revision: try f.optionalInteger("revision") ?? 0,
                  issuedAt: try f.optionalString("issued_at"), expiresAt: try f.optionalString("expires_at"),
                  profiles: profiles, control: control)
    }
}

extension ClientProfile {
    var json: JSONValue {
        var members = [
            JSONMember("id", .string(id)),
            JSONMember("name", .string(name)),
            JSONMember("protocol", .string(protocolChoice.rawValue)),
            JSONMember("nodes", .array(nodes.map(\.json))),
        ]
        if let path { members.append(JSONMember("path", path.json)) }
        if let mtu, mtu != 0 { members.append(JSONMember("mtu", .integer(mtu))) }
        return .object(members)
    }

    init(json f: JSONFields) throws(PharosFormatError) {
        let choice = try f.optionalString("protocol")
        guard let protocolChoice = choice.isEmpty ? .both : ProtocolChoice(rawValue: choice) else {
            throw .wrongFieldType(format: f.format, field: "protocol", expected: "amneziawg, xray-reality or both", found: "\"\(choice)\"")
        }
        self.init(id: try f.optionalString("id"), name: try f.optionalString("name"), protocolChoice: protocolChoice,
                  nodes: try f.array("nodes").map { v throws(PharosFormatError) in try ProfileNode(json: JSONFields(v, format: f.format)) },
                  path: try f.object("path").map { o throws(PharosFormatError) in try PathView(json: o) },
                  mtu: try f.optionalInteger("mtu"))
    }
}

extension PathView {
    var json: JSONValue {
        .object([
            JSONMember("name", .string(name)),
            JSONMember("hops", .array(hops.map { hop in
                .object([
                    JSONMember("id", .string(hop.id)),
                    JSONMember("name", .string(hop.name)),
                    JSONMember("region", .string(hop.region)),
                    JSONMember("role", .string(hop.role)),
                    JSONMember("ips", .array(hop.ips.map(JSONValue.string))),
                ])
            })),
        ])
    }

    init(json f: JSONFields) throws(PharosFormatError) {
        self.init(name: try f.optionalString("name"), hops: try f.array("hops").map { v throws(PharosFormatError) in
            let h = try JSONFields(v, format: f.format)
            return PathHop(id: try h.optionalString("id"), name: try h.optionalString("name"),
                           region: try h.optionalString("region"), role: try h.optionalString("role"),
                           ips: try h.strings("ips"))
        })
    }
}

extension ProfileNode {
    var json: JSONValue {
        .object([
            JSONMember("id", .string(id)),
            JSONMember("name", .string(name)),
            JSONMember("region", .string(region)),
            JSONMember("endpoints", .array(endpoints.map(JSONValue.string))),
            JSONMember("protocols", .array(protocols.map(\.json))),
        ])
    }

    init(json f: JSONFields) throws(PharosFormatError) {
        var protocols: [NodeProtocol] = []
        for entry in try f.array("protocols") {
            let p = try JSONFields(entry, format: f.format)
            let params = try p.objectOrEmpty("params")
            switch try p.optionalString("type") {
            case NodeProtocol.amneziaWGType: protocols.append(.amneziaWG(try AmneziaWGParams(json: params)))
            case NodeProtocol.xrayRealityType: protocols.append(.xrayReality(try XRayRealityParams(json: params)))
            default: continue  // a protocol this build does not know: ignored, never an error
            }
        }
        self.init(id: try f.optionalString("id"), name: try f.optionalString("name"),
                  region: try f.optionalString("region"), endpoints: try f.strings("endpoints"), protocols: protocols)
    }
}

extension NodeProtocol {
    var json: JSONValue {
        switch self {
        case .amneziaWG(let p):
            .object([JSONMember("type", .string(Self.amneziaWGType)), JSONMember("v", .integer(1)), JSONMember("params", p.json)])
        case .xrayReality(let p):
            .object([JSONMember("type", .string(Self.xrayRealityType)), JSONMember("v", .integer(1)), JSONMember("params", p.json)])
        }
    }
}

extension EndpointPool {
    var json: JSONValue {
        .object([JSONMember("ip", .string(ip)), JSONMember("port_min", .integer(portMin)), JSONMember("port_max", .integer(portMax))])
    }

    static func list(_ f: JSONFields) throws(PharosFormatError) -> [EndpointPool] {
        try f.array("endpoints").map { v throws(PharosFormatError) in
            let e = try JSONFields(v, format: f.format)
            return EndpointPool(ip: try e.optionalString("ip"), portMin: try e.optionalInteger("port_min") ?? 0,
                                portMax: try e.optionalInteger("port_max") ?? 0)
        }
    }
}

extension Obfuscation {
    private static var numericKeys: [(String, WritableKeyPath<Obfuscation, UInt32>)] { numeric.map { ($0.0.rawValue, $0.1) } }
    private static var templateKeys: [(String, WritableKeyPath<Obfuscation, String>)] { templates.map { ($0.0.rawValue, $0.1) } }

    var json: JSONValue {
        var members = Self.numericKeys.map { JSONMember($0.0, .integer(self[keyPath: $0.1])) }
        for (key, path) in Self.templateKeys where !self[keyPath: path].isEmpty {
            members.append(JSONMember(key, .string(self[keyPath: path])))
        }
        return .object(members)
    }

    init(json f: JSONFields) throws(PharosFormatError) {
        self.init()
        for (key, path) in Self.numericKeys { self[keyPath: path] = try f.optionalInteger(key) ?? 0 }
        for (key, path) in Self.templateKeys { self[keyPath: path] = try f.optionalString(key) }
    }
}

extension AmneziaWGParams {
    var json: JSONValue {
        var members = [
            JSONMember("private_key", .string(privateKey)),
            JSONMember("address", .string(address)),
            JSONMember("public_key", .string(publicKey)),
            JSONMember("preshared_key", .string(presharedKey)),
            JSONMember("endpoints", .array(endpoints.map(\.json))),
        ]
        if let rotation {
            members.append(JSONMember("rotation", .object([
                JSONMember("enabled", .bool(rotation.enabled)),
                JSONMember("interval_seconds", .integer(rotation.intervalSeconds)),
                JSONMember("jitter_seconds", .integer(rotation.jitterSeconds)),
            ])))
        }
        members.append(JSONMember("allowed_ips", .array(allowedIPs.map(JSONValue.string))))
        members.append(JSONMember("obfuscation", obfuscation.json))
        return .object(members)
    }

    init(json f: JSONFields) throws(PharosFormatError) {
        var rotation: RotationPolicy?
        if let r = try f.object("rotation") {
            rotation = RotationPolicy(enabled: try r.optionalBool("enabled") ?? false,
                                      intervalSeconds: try r.optionalInteger("interval_seconds") ?? 0,
                                      jitterSeconds: try r.optionalInteger("jitter_seconds") ?? 0)
        }
        self.init(privateKey: try f.string("private_key"), address: try f.optionalString("address"),
                  publicKey: try f.string("public_key"), presharedKey: try f.optionalString("preshared_key"),
                  endpoints: try EndpointPool.list(f), rotation: rotation, allowedIPs: try f.strings("allowed_ips"),
                  obfuscation: try Obfuscation(json: f.objectOrEmpty("obfuscation")))
    }
}

extension XRayRealityParams {
    var json: JSONValue {
        .object([
            JSONMember("uuid", .string(uuid)),
            JSONMember("flow", .string(flow)),
            JSONMember("address", .string(address)),
            JSONMember("public_key", .string(publicKey)),
            JSONMember("server_name", .string(serverName)),
            JSONMember("short_id", .string(shortID)),
            JSONMember("fingerprint", .string(fingerprint)),
            JSONMember("endpoints", .array(endpoints.map(\.json))),
            JSONMember("allowed_ips", .array(allowedIPs.map(JSONValue.string))),
        ])
    }

    init(json f: JSONFields) throws(PharosFormatError) {
        self.init(uuid: try f.string("uuid"), flow: try f.optionalString("flow"), address: try f.optionalString("address"),
                  publicKey: try f.string("public_key"), serverName: try f.optionalString("server_name"),
                  shortID: try f.optionalString("short_id"), fingerprint: try f.optionalString("fingerprint"),
                  endpoints: try EndpointPool.list(f), allowedIPs: try f.strings("allowed_ips"))
    }
}
