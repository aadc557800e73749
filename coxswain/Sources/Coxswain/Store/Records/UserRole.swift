import Foundation

/// What a user may do: `admin`s also log in to the admin API and UI.
public enum UserRole: String, Codable, Sendable, CaseIterable, SQLStringEnum {
    case user, admin
}
