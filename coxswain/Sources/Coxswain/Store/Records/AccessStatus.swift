import Foundation

/// Whether a user or a device may sync and log in. A disabled user's sessions end at once.
public enum AccessStatus: String, Codable, Sendable, CaseIterable, SQLStringEnum {
    case active, disabled
}
