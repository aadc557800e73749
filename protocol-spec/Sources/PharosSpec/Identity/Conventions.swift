/// Names every component must agree on: metadata keys, certificate subjects, the
/// one method allowed without a client certificate, default ports.
public enum PharosIdentity {
    /// gRPC metadata carrying the AccountSync session token.
    public static let sessionMetadataKey = "pharos-session"
    /// Injected by a relay from the verified device leaf; trusted only from a relay.
    public static let deviceFingerprintMetadataKey = "x-pharos-device-fp"
    /// A relay strips every inbound metadata key with this prefix.
    public static let reservedMetadataPrefix = "x-pharos-"
    /// The only method a relay forwards for a caller without a client certificate.
    public static let certlessMethods: Set<String> = ["/pharos.account.v1.AccountSync/ClaimEnrollment"]
    /// Our extension (upstream has no equivalent, `pharos.relay.v1.RelayControl`): a relay
    /// asks the controller, over its own upstream connection, for the revoked device and
    /// controller certificates, and renews its own leaf. Clients can never call anything
    /// under `relayControlPrefix`.
    public static let relayControlPrefix = "/pharos.relay.v1.RelayControl/"
    public static let deniedDevicesPath = "/pharos.relay.v1.RelayControl/DeniedDevices"
    /// A relay renews its own leaf over the same connection (issue #20).
    public static let renewRelayCertificatePath = "/pharos.relay.v1.RelayControl/RenewRelayCertificate"
    /// Backend SNI and CN of the controller's AccountSync server leaf.
    public static let controllerGRPCServerName = "coxswain-grpc"

    /// Certificate `O=` values.
    public enum Organization {
        /// CAs, nodes and the controller.
        public static let fleet = "PharosVPN"
        /// Relay leaves (also their CN). The controller believes `x-pharos-device-fp` only from these.
        public static let relay = "PharosVPN Relay"
        public static let device = "PharosVPN Device"
    }

    public enum CommonName {
        public static let root = "PharosVPN Root CA"
        public static let fleetCA = "PharosVPN Fleet CA"
        public static let deviceCA = "PharosVPN Device CA"
        /// The controller's client leaf (Fleet CA, ClientAuth, O=PharosVPN). Nodes and relay
        /// tunnels accept exactly this subject as their controller.
        public static let controller = "coxswain-controller"
    }
}

public enum PharosPorts {
    /// Node NodeControl (mTLS gRPC).
    public static let nodeControl = 8444
    /// Relay listener for clients.
    public static let relayClient = 8443
    /// Relay listener for the controller's reverse tunnel.
    public static let relayTunnel = 8444
    public static let relayEgress = 8456
    public static let relayOnion = 8457
    /// Admin HTTP API and UI, bound to 127.0.0.1.
    public static let adminUI = 8443
    public static let amneziaWG = 443
    public static let xrayReality = 443
}
