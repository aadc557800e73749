import GRPCCore
import PharosProto
import PharosSpec

/// What relays ask the controller for themselves (`pharos.relay.v1.RelayControl`, not a
/// client API: relays refuse client calls under `PharosIdentity.relayControlPrefix`).
/// `DeniedDevices` answers the fingerprints of revoked, still-valid device certificates and
/// the serials of revoked controller leaves,
/// so a remote relay refuses a revoked device on its next call and that controller leaf at
/// its tunnel port.
struct RelayControlService: Pharos_Relay_V1_RelayControl.SimpleServiceProtocol {
    let store: Store

    func deniedDevices(request: Pharos_Relay_V1_DeniedDevicesRequest,
                       context: ServerContext) async throws -> Pharos_Relay_V1_DeniedDevicesResponse {
        var response = Pharos_Relay_V1_DeniedDevicesResponse()
        let (devices, controllers) = try await store.read { tx in
            (try tx.deniedDeviceFingerprints(), try tx.revokedCertificates(kind: .controller).map(\.serial))
        }
        response.fingerprints = devices.sorted()
        response.controllerSerials = controllers.sorted()
        return response
    }
}
