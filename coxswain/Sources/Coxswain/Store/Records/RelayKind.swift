import Foundation

/// How the controller reaches a relay. Every row is `remote` (`cox relays enroll`): the
/// embedded relay lives and dies with `cox serve` and has no row, but the schema allows it.
public enum RelayKind: String, Codable, Sendable, CaseIterable, SQLStringEnum {
    case embedded, remote
}
