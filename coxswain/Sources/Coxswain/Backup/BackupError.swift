/// What `cox backup` and `cox restore` refuse, each a sentence an operator can act on.
/// Every refusal of a restore leaves the target as it was.
public enum BackupError: Error, Equatable, CustomStringConvertible {
    case notABackup(path: String, reason: String)
    case unsupportedVersion(path: String, version: String)
    /// The header asks for key-derivation costs outside the bounds we accept from a file.
    case kdfRejected(path: String, reason: String)
    case wrongPassphrase(path: String)
    /// A chunk does not authenticate, or what it holds does not add up.
    case damaged(path: String, reason: String)
    /// The file ends before its last chunk (a copy cut short, a backup still being written).
    case truncated(path: String)
    case passphraseTooShort(minimum: Int)
    case passphrasesDiffer
    case outputExists(path: String)
    case missingConfig(path: String)
    case noState(path: String)
    /// The target state directory already holds a controller's database.
    case stateExists(path: String)
    /// The backup's schema has migrations this build does not know (a newer coxswain made it).
    case newerSchema(path: String, migrations: [String])
    /// The backed-up cox.yaml does not load on this version.
    case badConfig(reason: String)
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case .notABackup(let path, let reason): "\(path) is not a coxswain backup: \(reason)"
        case .unsupportedVersion(let path, let version):
            "\(path) is a coxswain backup of format version \(version), which this cox cannot read; restore it with the cox that made it"
        case .kdfRejected(let path, let reason):
            "\(path) asks for a key derivation this cox refuses to run (\(reason)); nothing was restored"
        case .wrongPassphrase(let path):
            "the passphrase does not open \(path) (a wrong passphrase, or its header was altered); nothing was restored"
        case .damaged(let path, let reason):
            "\(path) is damaged or was altered (\(reason)); nothing was restored"
        case .truncated(let path):
            "\(path) ends before its last chunk (a copy cut short, or a backup still being written); nothing was restored"
        case .passphraseTooShort(let minimum):
            "give a passphrase of at least \(minimum) characters on stdin (it protects the fleet's CA keys)"
        case .noState(let path):
            "no controller state at \(path): nothing to back up (check --config and its state_dir)"
        case .passphrasesDiffer: "the two passphrases differ; nothing was written"
        case .outputExists(let path): "\(path) already exists; choose another --out (a backup never replaces a file)"
        case .missingConfig(let path): "no config file at \(path); a backup holds the controller's cox.yaml (pass --config)"
        case .stateExists(let path):
            "\(path) already holds a controller's state; restore writes only into an empty state directory: stop that controller and move the file away, or pass --state-dir"
        case .newerSchema(let path, let migrations):
            "\(path) was made by a newer coxswain (schema \(migrations.joined(separator: ", "))); install that version to restore it"
        case .badConfig(let reason): "the backed-up cox.yaml does not load on this version: \(reason); nothing was restored"
        case .io(let path, let reason): "\(path): \(reason)"
        }
    }
}
