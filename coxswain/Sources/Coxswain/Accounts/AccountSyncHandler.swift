import Foundation
import GRPCCore
import Logging
import PharosProto
import PharosSpec
import PharosTLS
import X509

/// `pharos.account.v1.AccountSync` over gRPC. It is served only on the controller's private
/// Unix socket, which only relays reach: the embedded relay in-process, and remote relays
/// through a tunnel the controller itself dialed after checking the relay's certificate
/// (`O=PharosVPN Relay`). That is why `x-pharos-device-fp` is believed here: every caller is
/// a relay, and relays strip that header from clients and set it from the verified leaf.
public struct AccountSyncHandler: Pharos_Account_V1_AccountSync.ServiceProtocol {
    let accounts: AccountService
    let logger: Logger

    public init(accounts: AccountService, logger: Logger) {
        self.accounts = accounts
        self.logger = logger
    }

    public func authenticate(request: ServerRequest<Pharos_Account_V1_AuthenticateRequest>,
                             context: ServerContext) async throws -> ServerResponse<Pharos_Account_V1_AuthenticateResponse> {
        try await answer("Authenticate") {
            let session = try await accounts.authenticate(email: request.message.email, password: request.message.password,
                                                          deviceFingerprint: Self.fingerprint(request.metadata))
            var response = Pharos_Account_V1_AuthenticateResponse()
            response.sessionToken = session.token
            response.userID = session.userID
            response.keysEnrolled = session.keysEnrolled
            return response
        }
    }

    public func enrollKeys(request: ServerRequest<Pharos_Account_V1_EnrollKeysRequest>,
                           context: ServerContext) async throws -> ServerResponse<Pharos_Account_V1_EnrollKeysResponse> {
        try await answer("EnrollKeys") {
            let session = try await session(request.metadata)
            try await accounts.enrollKeys(session: session, publicKey: Array(request.message.publicKey),
                                          wrappedPrivateKey: Array(request.message.wrappedPrivateKey))
            return Pharos_Account_V1_EnrollKeysResponse()
        }
    }

    public func getProfile(request: ServerRequest<Pharos_Account_V1_GetProfileRequest>,
                           context: ServerContext) async throws -> ServerResponse<Pharos_Account_V1_GetProfileResponse> {
        try await answer("GetProfile") {
            let profile = try await accounts.profile(session: try await session(request.metadata))
            var response = Pharos_Account_V1_GetProfileResponse()
            response.ciphertext = profile.ciphertext
            response.revision = profile.revision
            response.signingPublicKey = Data(profile.signingPublicKey)
            response.wrappedPrivateKey = profile.wrappedPrivateKey
            return response
        }
    }

    public func claimEnrollment(request: ServerRequest<Pharos_Account_V1_ClaimEnrollmentRequest>,
                                context: ServerContext) async throws -> ServerResponse<Pharos_Account_V1_ClaimEnrollmentResponse> {
        try await answer("ClaimEnrollment") {
            let message = request.message
            let claimed = try await accounts.claim(AccountService.Claim(
                token: message.token, csrPEM: String(decoding: message.csrPem, as: UTF8.self), deviceName: message.deviceName,
                platform: message.platform, encryptionKey: Array(message.encryptionPubkey)))
            logger.info("device enrolled", metadata: ["device": "\(claimed.device.id)", "user": "\(claimed.device.userID)"])
            var response = Pharos_Account_V1_ClaimEnrollmentResponse()
            response.deviceCertPem = Data(claimed.certificatePEM.utf8)
            response.fleetCaPem = Data(claimed.fleetCAPEM.utf8)
            response.relayAddr = claimed.relayAddr
            response.relayServerName = claimed.relayServerName
            response.caFingerprint = claimed.caFingerprint
            response.signingPublicKey = Data(claimed.signingPublicKey)
            response.signingKeyEndorsement = Data(claimed.signingKeyEndorsement)
            return response
        }
    }

    static func fingerprint(_ metadata: Metadata) -> String? {
        let values = Array(metadata[stringValues: PharosIdentity.deviceFingerprintMetadataKey])
        return values.count == 1 ? values[0] : nil
    }

    private func session(_ metadata: Metadata) async throws -> AccountService.Session {
        try await accounts.session(token: metadata[stringValues: PharosIdentity.sessionMetadataKey].first(where: { _ in true }),
                                   deviceFingerprint: Self.fingerprint(metadata))
    }

    /// Maps the service's refusals to gRPC statuses; anything else is logged and answered
    /// as `internal` without its details.
    private func answer<Output: Sendable>(_ method: String, _ body: () async throws -> Output) async throws -> ServerResponse<Output> {
        try await Self.answer(method, logger: logger, body)
    }

    static func answer<Output: Sendable>(_ method: String, logger: Logger,
                                         _ body: () async throws -> Output) async throws -> ServerResponse<Output> {
        do {
            return ServerResponse(message: try await body())
        } catch let error as AccountError {
            logger.info("account call refused", metadata: ["method": "\(method)", "reason": "\(error)"])
            switch error {
            case .unauthenticated(let message): throw RPCError(code: .unauthenticated, message: message)
            case .invalidArgument(let message): throw RPCError(code: .invalidArgument, message: message)
            case .notFound(let message): throw RPCError(code: .notFound, message: message)
            case .failedPrecondition(let message): throw RPCError(code: .failedPrecondition, message: message)
            case .tooManyAttempts: throw RPCError(code: .resourceExhausted, message: error.description)
            }
        } catch let error as ProvisioningError {
            logger.warning("account call failed", metadata: ["method": "\(method)", "error": "\(error)"])
            throw RPCError(code: .failedPrecondition, message: error.description)
        } catch {
            logger.error("account call failed", metadata: ["method": "\(method)", "error": "\(error)"])
            throw RPCError(code: .internalError, message: "the controller could not complete \(method); see its log")
        }
    }
}

/// `pharos.lifecycle.v1.DeviceLifecycle` beside AccountSync on the same private socket, so
/// the same trust holds: every caller is a relay, which injected the fingerprint of the
/// certificate the device presented.
public struct DeviceLifecycleHandler: Pharos_Lifecycle_V1_DeviceLifecycle.ServiceProtocol {
    let accounts: AccountService
    let logger: Logger

    public init(accounts: AccountService, logger: Logger) {
        self.accounts = accounts
        self.logger = logger
    }

    public func renewDeviceCertificate(
        request: ServerRequest<Pharos_Lifecycle_V1_RenewDeviceCertificateRequest>, context: ServerContext
    ) async throws -> ServerResponse<Pharos_Lifecycle_V1_RenewDeviceCertificateResponse> {
        try await AccountSyncHandler.answer("RenewDeviceCertificate", logger: logger) {
            let leaf = try await accounts.renewDeviceCertificate(csrPEM: request.message.csrPem,
                                                                 deviceFingerprint: AccountSyncHandler.fingerprint(request.metadata))
            logger.info("device certificate renewed", metadata: ["serial": "\(leaf.serialHex)"])
            return .with {
                $0.certificatePem = (try? leaf.pemString()) ?? ""
                $0.notAfterUnix = Int64(leaf.notValidAfter.timeIntervalSince1970)
            }
        }
    }

    public func getDeniedRelays(
        request: ServerRequest<Pharos_Lifecycle_V1_GetDeniedRelaysRequest>, context: ServerContext
    ) async throws -> ServerResponse<Pharos_Lifecycle_V1_GetDeniedRelaysResponse> {
        try await AccountSyncHandler.answer("GetDeniedRelays", logger: logger) {
            let signed = try await accounts.deniedRelays(nonce: Array(request.message.nonce),
                                                         deviceFingerprint: AccountSyncHandler.fingerprint(request.metadata))
            return .with {
                $0.list = Data(signed.payload)
                $0.signature = Data(signed.signature)
            }
        }
    }
}
