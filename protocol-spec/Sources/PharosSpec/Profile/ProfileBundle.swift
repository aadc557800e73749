/// The plaintext a controller seals for a device: every profile the device may use.
public struct ProfileBundle: Sendable, Equatable {
    public var fleetID: String
    public var user: String
    public var revision: Int64
    /// RFC 3339 timestamps as Go writes `time.Time`.
    public var issuedAt: String
    public var expiresAt: String
    public var profiles: [ClientProfile]
    public var control: ControlLocation?

    public init(fleetID: String, user: String, revision: Int64, issuedAt: String, expiresAt: String,
                profiles: [ClientProfile], control: ControlLocation? = nil) {
        self.fleetID = fleetID
        self.user = user
        self.revision = revision
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.profiles = profiles
        self.control = control
    }
}

/// Where the controller says it is (informational, shown to users).
public struct ControlLocation: Sendable, Equatable {
    public var label: String
    public var city: String
    public var latitude: Double
    public var longitude: Double

    public init(label: String, city: String, latitude: Double, longitude: Double) {
        self.label = label
        self.city = city
        self.latitude = latitude
        self.longitude = longitude
    }
}

/// One named way to connect: a protocol choice over one node or a multi-hop path.
public struct ClientProfile: Sendable, Equatable {
    public enum ProtocolChoice: String, Sendable {
        case amneziaWG = "amneziawg"
        case xrayReality = "xray-reality"
        case both
    }

    public var id: String
    public var name: String
    public var protocolChoice: ProtocolChoice
    public var nodes: [ProfileNode]
    public var path: PathView?
    /// Overrides the client's default MTU (1420) when set.
    public var mtu: Int?

    public init(id: String, name: String, protocolChoice: ProtocolChoice, nodes: [ProfileNode],
                path: PathView? = nil, mtu: Int? = nil) {
        self.id = id
        self.name = name
        self.protocolChoice = protocolChoice
        self.nodes = nodes
        self.path = path
        self.mtu = mtu
    }
}

public struct PathView: Sendable, Equatable {
    public var name: String
    public var hops: [PathHop]

    public init(name: String, hops: [PathHop]) {
        self.name = name
        self.hops = hops
    }
}

public struct PathHop: Sendable, Equatable {
    public enum Role: String, Sendable {
        case entry, mid, exit
    }

    public var id: String
    public var name: String
    public var region: String
    /// Kept as written: an unknown role is not an error.
    public var role: String
    public var ips: [String]

    public init(id: String, name: String, region: String, role: String, ips: [String]) {
        self.id = id
        self.name = name
        self.region = region
        self.role = role
        self.ips = ips
    }
}

public struct ProfileNode: Sendable, Equatable {
    public var id: String
    public var name: String
    public var region: String
    public var endpoints: [String]
    /// Only the protocol types this build knows; unknown types are dropped on read.
    public var protocols: [NodeProtocol]

    public init(id: String, name: String, region: String, endpoints: [String], protocols: [NodeProtocol]) {
        self.id = id
        self.name = name
        self.region = region
        self.endpoints = endpoints
        self.protocols = protocols
    }
}

/// A `{type, v, params}` entry of a node.
public enum NodeProtocol: Sendable, Equatable {
    case amneziaWG(AmneziaWGParams)
    case xrayReality(XRayRealityParams)

    public static let amneziaWGType = "amneziawg"
    public static let xrayRealityType = "xray-reality"
}

/// One entry IP and its port range; clients pick a random IP and port per connect.
public struct EndpointPool: Sendable, Equatable {
    public var ip: String
    public var portMin: Int
    public var portMax: Int

    public init(ip: String, portMin: Int, portMax: Int) {
        self.ip = ip
        self.portMin = portMin
        self.portMax = portMax
    }
}

public struct RotationPolicy: Sendable, Equatable {
    public var enabled: Bool
    public var intervalSeconds: Int
    public var jitterSeconds: Int

    public init(enabled: Bool, intervalSeconds: Int, jitterSeconds: Int) {
        self.enabled = enabled
        self.intervalSeconds = intervalSeconds
        self.jitterSeconds = jitterSeconds
    }
}

public struct AmneziaWGParams: Sendable, Equatable {
    public var privateKey: String
    /// Tunnel address in CIDR form, e.g. 10.86.0.5/32.
    public var address: String
    public var publicKey: String
    public var presharedKey: String
    public var endpoints: [EndpointPool]
    public var rotation: RotationPolicy?
    public var allowedIPs: [String]
    public var obfuscation: Obfuscation

    public init(privateKey: String, address: String, publicKey: String, presharedKey: String,
                endpoints: [EndpointPool], rotation: RotationPolicy? = nil, allowedIPs: [String],
                obfuscation: Obfuscation) {
        self.privateKey = privateKey
        self.address = address
        self.publicKey = publicKey
        self.presharedKey = presharedKey
        self.endpoints = endpoints
        self.rotation = rotation
        self.allowedIPs = allowedIPs
        self.obfuscation = obfuscation
    }
}

public struct XRayRealityParams: Sendable, Equatable {
    public var uuid: String
    public var flow: String
    public var address: String
    /// The node's REALITY public key.
    public var publicKey: String
    /// SNI the client presents (the decoy host).
    public var serverName: String
    public var shortID: String
    /// uTLS fingerprint; empty means "chrome".
    public var fingerprint: String
    public var endpoints: [EndpointPool]
    public var allowedIPs: [String]

    public init(uuid: String, flow: String, address: String, publicKey: String, serverName: String,
                shortID: String, fingerprint: String, endpoints: [EndpointPool], allowedIPs: [String]) {
        self.uuid = uuid
        self.flow = flow
        self.address = address
        self.publicKey = publicKey
        self.serverName = serverName
        self.shortID = shortID
        self.fingerprint = fingerprint
        self.endpoints = endpoints
        self.allowedIPs = allowedIPs
    }
}
