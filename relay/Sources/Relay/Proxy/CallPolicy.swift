import NIOHPACK
import PharosSpec

/// Per-call decisions of the relay's public side, as pure functions: which calls may pass
/// without a device certificate, and what metadata reaches the controller.
public enum CallPolicy {
    public enum Decision: Equatable, Sendable {
        case forward(HPACKHeaders)
        case reject(status: GRPCStatusCode, message: String)
    }

    /// `deviceFingerprint` is `sha256:<hex>` of the verified Device-CA leaf, nil without one.
    /// `denied` says the controller revoked that certificate.
    public static func decide(_ request: HPACKHeaders, deviceFingerprint: String?, denied: Bool = false) -> Decision {
        guard let path = request.first(name: ":path"), path.hasPrefix("/") else {
            return .reject(status: .unimplemented, message: "request has no gRPC method path")
        }
        if path.hasPrefix(PharosIdentity.relayControlPrefix) {
            return .reject(status: .permissionDenied, message: "\(path) is between relays and the controller only")
        }
        if denied {
            return .reject(status: .unauthenticated, message: "this device's certificate has been revoked; ask the operator to enroll it again")
        }
        if deviceFingerprint == nil, !PharosIdentity.certlessMethods.contains(path) {
            return .reject(status: .unauthenticated,
                           message: "\(path) needs a device certificate (only ClaimEnrollment is allowed without one); enroll this device first")
        }
        return .forward(sanitized(request, deviceFingerprint: deviceFingerprint))
    }

    /// Drops every `x-pharos-*` header the client sent and adds exactly one
    /// `x-pharos-device-fp` when a verified device leaf was presented.
    public static func sanitized(_ request: HPACKHeaders, deviceFingerprint: String?) -> HPACKHeaders {
        var out = HPACKHeaders()
        for (name, value, indexing) in request where !name.lowercased().hasPrefix(PharosIdentity.reservedMetadataPrefix) {
            out.add(name: name, value: value, indexing: indexing)
        }
        if let deviceFingerprint { out.add(name: PharosIdentity.deviceFingerprintMetadataKey, value: deviceFingerprint) }
        return out
    }

    /// A complete gRPC response carrying only an error status (trailers-only).
    public static func trailersOnly(status: GRPCStatusCode, message: String) -> HPACKHeaders {
        [":status": "200", "content-type": "application/grpc", "grpc-status": "\(status.rawValue)",
         "grpc-message": percentEncoded(message)]
    }

    /// Trailers after response headers were already sent.
    public static func trailers(status: GRPCStatusCode, message: String) -> HPACKHeaders {
        ["grpc-status": "\(status.rawValue)", "grpc-message": percentEncoded(message)]
    }

    /// gRPC's grpc-message encoding: bytes outside 0x20–0x7E and `%` are percent-encoded.
    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if byte >= 0x20, byte <= 0x7E, byte != UInt8(ascii: "%") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

/// The gRPC status codes the relay itself answers with.
public enum GRPCStatusCode: Int, Sendable {
    case cancelled = 1, deadlineExceeded = 4, permissionDenied = 7, resourceExhausted = 8, unimplemented = 12, unavailable = 14, unauthenticated = 16
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
