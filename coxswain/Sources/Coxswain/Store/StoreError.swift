/// What the store refuses, in words an operator can act on.
public enum StoreError: Error, Equatable, CustomStringConvertible {
    /// Optimistic concurrency: the row changed since the caller read it (HTTP 409).
    case staleWrite(kind: String, id: String, expected: Int64, current: Int64)
    case notFound(kind: String, id: String)
    case duplicate(kind: String, field: String, value: String)
    /// A name that more than one row has: the caller must give an ID.
    case ambiguous(kind: String, name: String, ids: [String])
    /// A change the schema's constraints refuse (HTTP 409); the database's own words.
    case constraint(String)
    /// The state database lacks what every controller has (the CAs): restore a backup.
    case damaged(String)
    case unreadable(path: String, reason: String)
    /// What only the SQLite store does (its online backup), asked of a PostgreSQL store.
    case sqliteOnly

    public var description: String {
        switch self {
        case .staleWrite(let kind, let id, let expected, let current):
            "\(kind) \(id) was changed by someone else (you edited version \(expected), it is now \(current)); reload it and retry"
        case .notFound(let kind, let id): "no \(kind) \(id)"
        case .duplicate(let kind, let field, let value): "a \(kind) with \(field) \(value) already exists"
        case .ambiguous(let kind, let name, let ids): "\(ids.count) \(kind)s are named \(name) (\(ids.joined(separator: ", "))); give the ID"
        case .constraint(let detail): "the change conflicts with existing data: \(detail)"
        case .damaged(let what): "the state database is damaged: \(what); restore it from a backup"
        case .unreadable(let path, let reason): "cannot open the state database \(path): \(reason)"
        case .sqliteOnly: "the state is in PostgreSQL: back it up with PostgreSQL's own tools (pg_dump, base backups)"
        }
    }
}
