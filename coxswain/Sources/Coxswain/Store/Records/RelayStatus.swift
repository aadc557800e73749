import Foundation

/// A relay row's lifecycle. Whether its tunnel is up right now is not stored: it is live
/// state of `cox serve` (`RelayTier.tunnelStates`).
public enum RelayStatus: String, Codable, Sendable, CaseIterable, SQLStringEnum {
    /// Enrolled: the controller dials it.
    case pending
}
