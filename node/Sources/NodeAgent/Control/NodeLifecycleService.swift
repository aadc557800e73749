import Foundation
import GRPCCore
import Logging
import PharosProto
import PharosTLS

/// `pharos.lifecycle.v1.NodeLifecycle`: the protobuf edge of `NodeCertificates`. Served on
/// the control port beside NodeControl, so only the controller's leaf reaches it.
public struct NodeLifecycleService: Pharos_Lifecycle_V1_NodeLifecycle.SimpleServiceProtocol {
    let certificates: NodeCertificates

    public init(certificates: NodeCertificates) {
        self.certificates = certificates
    }

    public func beginRenewal(request: Pharos_Lifecycle_V1_BeginRenewalRequest,
                             context: ServerContext) async throws -> Pharos_Lifecycle_V1_BeginRenewalResponse {
        let (csr, current) = try await mapped { () async throws(NodeCertificates.Failure) in try await certificates.beginRenewal() }
        return .with {
            $0.csrPem = csr
            $0.currentSerial = current.serialHex
            $0.currentNotAfterUnix = Int64(current.notValidAfter.timeIntervalSince1970)
        }
    }

    public func installCertificate(request: Pharos_Lifecycle_V1_InstallCertificateRequest,
                                   context: ServerContext) async throws -> Pharos_Lifecycle_V1_InstallCertificateResponse {
        let leaf = try await mapped { () async throws(NodeCertificates.Failure) in
            try await certificates.install(chainPEM: request.certificateChainPem)
        }
        return .with {
            $0.serial = leaf.serialHex
            $0.notAfterUnix = Int64(leaf.notValidAfter.timeIntervalSince1970)
        }
    }

    public func setDeniedCertificates(request: Pharos_Lifecycle_V1_SetDeniedCertificatesRequest,
                                      context: ServerContext) async throws -> Pharos_Lifecycle_V1_SetDeniedCertificatesResponse {
        try await mapped { () async throws(NodeCertificates.Failure) in try await certificates.setDenied(Set(request.serials)) }
        return .with { $0.count = Int32(certificates.denied.all.count) }
    }

    private func mapped<T>(_ body: () async throws(NodeCertificates.Failure) -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            switch error {
            case .noPendingKey, .wrongKey: throw RPCError(code: .failedPrecondition, message: error.description)
            case .unreadableChain, .refused: throw RPCError(code: .invalidArgument, message: error.description)
            case .storage: throw RPCError(code: .internalError, message: error.description)
            }
        }
    }
}
