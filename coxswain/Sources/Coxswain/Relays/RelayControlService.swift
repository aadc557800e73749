import Foundation
import GRPCCore
import Logging
import PharosProto
import PharosSpec
import PharosTLS
import X509

/// What relays ask the controller for themselves (`pharos.relay.v1.RelayControl`, not a
/// client API: relays refuse client calls under `PharosIdentity.relayControlPrefix`).
/// `DeniedDevices` answers the fingerprints of revoked, still-valid device certificates and
/// the serials of revoked controller leaves,
/// so a remote relay refuses a revoked device on its next call and that controller leaf at
/// its tunnel port. `RenewRelayCertificate` renews the calling relay's own leaf
/// (`FleetService.renewRelayCertificate`).
struct RelayControlService: Pharos_Relay_V1_RelayControl.SimpleServiceProtocol {
    let service: FleetService
    let logger: Logger

    var store: Store { service.store }

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

    func renewRelayCertificate(request: Pharos_Relay_V1_RenewRelayCertificateRequest,
                               context: ServerContext) async throws -> Pharos_Relay_V1_RenewRelayCertificateResponse {
        do {
            let (chainPEM, leaf) = try await service.renewRelayCertificate(
                csrPEM: request.csrPem, currentPEM: request.currentCertificatePem, proof: Array(request.possessionSignature))
            logger.info("relay certificate renewed", metadata: ["serial": "\(leaf.serialHex)", "not_after": "\(leaf.notValidAfter)"])
            var response = Pharos_Relay_V1_RenewRelayCertificateResponse()
            response.certificateChainPem = chainPEM
            response.notAfterUnix = Int64(leaf.notValidAfter.timeIntervalSince1970)
            return response
        } catch {
            logger.warning("relay certificate renewal refused", metadata: ["reason": "\(error)"])
            let code: RPCError.Code = switch error {
            case .tooSoon: .resourceExhausted
            case .unusableCSR, .unreadableCertificate: .invalidArgument
            case .refused, .badProof, .unknownLeaf, .superseded, .revoked: .permissionDenied
            }
            throw RPCError(code: code, message: error.description)
        }
    }
}
