import Foundation
import Hummingbird
import NIOCore

/// An RFC 9457 problem response: `application/problem+json` with a title and a sentence
/// that says what was wrong and what to do.
public struct Problem: HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    public let detail: String
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ detail: String, headers: HTTPFields = [:]) {
        self.status = status
        self.detail = detail
        self.headers = headers
    }

    struct Body: Encodable {
        let type: String
        let title: String
        let status: Int
        let detail: String
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = try JSONEncoder().encode(Body(type: "about:blank", title: status.reasonPhrase, status: status.code, detail: detail))
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// Every error a handler can throw, as the problem an API client gets.
    public static func from(_ error: any Error) -> Problem? {
        switch error {
        case let problem as Problem: return problem
        case let error as StoreError:
            switch error {
            case .staleWrite: return Problem(.conflict, error.description)
            case .notFound: return Problem(.notFound, error.description)
            case .duplicate: return Problem(.conflict, error.description)
            case .ambiguous: return Problem(.badRequest, error.description)
            case .constraint: return Problem(.conflict, error.description)
            case .unreadable, .damaged: return nil
            case .sqliteOnly: return Problem(.conflict, error.description)
            }
        case let error as FleetInputError:
            return Problem(.badRequest, error.description)
        case let error as ProvisioningError:
            switch error {
            case .nodeNotReady, .protocolUnavailable, .subnetExhausted, .cascadeConflict: return Problem(.conflict, error.description)
            case .pathsNotSupported, .invalidEncryptionKey: return Problem(.badRequest, error.description)
            }
        case let error as AccountError:
            switch error {
            case .failedPrecondition: return Problem(.conflict, error.description)
            case .tooManyAttempts(let seconds): return Problem(.tooManyRequests, error.description, headers: [.retryAfter: "\(seconds)"])
            case .invalidArgument: return Problem(.badRequest, error.description)
            case .notFound: return Problem(.notFound, error.description)
            case .unauthenticated: return Problem(.unauthorized, error.description)
            }
        case let error as AdminError:
            switch error {
            case .badCredentials: return Problem(.unauthorized, error.description)
            case .tooManyAttempts(let seconds): return Problem(.tooManyRequests, error.description, headers: [.retryAfter: "\(seconds)"])
            case .internalFailure: return nil
            }
        case let error as SSHError:
            switch error {
            case .invalidTarget, .unusablePassword, .hostKeyUnchecked, .unreadableFingerprint: return Problem(.badRequest, error.description)
            case .hostKeyChanged, .hostKeyNotPresented: return Problem(.conflict, error.description)
            case .keyRefused, .passwordRefused, .installedKeyRefused, .unreachable, .remoteFailed:
                return Problem(.badGateway, error.description)
            case .local: return Problem(.serviceUnavailable, error.description)
            }
        case let error as OnboardingError:
            switch error {
            case .package, .badPort, .samePorts: return Problem(.badRequest, error.description)
            case .taken, .notInstalledOverSSH, .downgrade, .busy: return Problem(.conflict, error.description)
            case .undone, .notRunning: return Problem(.badGateway, error.description)
            }
        case let error as HTTPError:
            return Problem(error.status, error.body ?? error.status.reasonPhrase, headers: error.headers)
        case let error as any HTTPResponseError:
            return Problem(error.status, error.status.reasonPhrase)
        case let error as DecodingError:
            return Problem(.badRequest, "the request body is not what this route takes: \(Self.describe(error))")
        default:
            return nil
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map(\.stringValue).filter { !$0.isEmpty }
            return keys.isEmpty ? "" : " at \(keys.joined(separator: "."))"
        }
        switch error {
        case .keyNotFound(let key, let context): return "the field \(key.stringValue) is missing\(path(context))"
        case .typeMismatch(let type, let context): return "expected \(type)\(path(context))"
        case .valueNotFound(let type, let context): return "expected \(type)\(path(context)), found null"
        case .dataCorrupted(let context): return "not valid JSON\(path(context))"
        @unknown default: return "\(error)"
        }
    }
}
