import Crypto
import Foundation

/// The audit log's SHA-256 hash chain, as upstream defines it:
/// `row_hash = hex(SHA-256(prev_hash ‖ canonical(row)))` where `canonical` is the fixed field
/// order id, at (UnixNano after µs truncation, 8-byte big endian), actor, actor_kind,
/// action, target_type, target_id, source_ip, detail, result, error — each string as an
/// 8-byte big-endian length followed by its UTF-8 bytes. The genesis `prev_hash` is "".
/// (`prev_hash` enters the hash as its plain hex text, without a length prefix.)
public enum AuditChain {
    public static func canonical(_ row: AuditRecord) -> [UInt8] {
        var out = [UInt8]()
        func append(_ value: UInt64) { withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) } }
        func append(_ text: String) {
            let bytes = Array(text.utf8)
            append(UInt64(bytes.count))
            out.append(contentsOf: bytes)
        }
        append(row.id)
        append(UInt64(bitPattern: row.at &* 1000))
        for field in [row.actor, row.actorKind, row.action, row.targetType, row.targetID,
                      row.sourceIP, row.detail, row.result, row.error] {
            append(field)
        }
        return out
    }

    public static func hash(previous: String, row: AuditRecord) -> String {
        var hasher = SHA256()
        hasher.update(data: Array(previous.utf8))
        hasher.update(data: canonical(row))
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// The first place the chain breaks, walking oldest to newest (by `at`, then `id`).
    public enum Break: Sendable, Equatable, CustomStringConvertible {
        /// The row's content no longer matches its own `row_hash`: it was edited.
        case edited(id: String, position: Int)
        /// The row does not follow the one before it: a row was deleted, inserted or reordered here.
        case unlinked(id: String, position: Int, expectedPrevious: String, found: String)

        public var description: String {
            switch self {
            case .edited(let id, let position):
                "row \(position + 1) (\(id)) was edited after it was written: its content does not match its hash"
            case .unlinked(let id, let position, let expected, let found):
                "row \(position + 1) (\(id)) does not follow the row before it (expected prev_hash \(expected.prefix(16))…, found \(found.prefix(16))…): a row was deleted, inserted or reordered just before it"
            }
        }
    }

    /// The action of the row a retention purge leaves behind; its detail names the
    /// `row_hash` of the last purged row (`anchor`), where the surviving chain starts.
    public static let purgeAction = "audit.purge"

    static func anchors(in rows: [AuditRecord]) -> Set<String> {
        var anchors = Set<String>()
        for row in rows where row.action == purgeAction {
            guard let range = row.detail.range(of: "\"anchor\":\"") else { continue }
            anchors.insert(String(row.detail[range.upperBound...].prefix(64)))
        }
        return anchors
    }

    /// Checks `rows`, which must be in chain order. Nil when intact. The chain starts at the
    /// genesis "" or, after a retention purge, at the anchor a later purge row vouches for.
    public static func verify(_ rows: [AuditRecord]) -> Break? {
        var previous = ""
        if let first = rows.first, first.prevHash != "", anchors(in: rows).contains(first.prevHash) {
            previous = first.prevHash
        }
        for (position, row) in rows.enumerated() {
            if row.prevHash != previous {
                return .unlinked(id: row.id, position: position, expectedPrevious: previous, found: row.prevHash)
            }
            if hash(previous: row.prevHash, row: row) != row.rowHash {
                return .edited(id: row.id, position: position)
            }
            previous = row.rowHash
        }
        return nil
    }
}
