import Crypto
import Foundation
import PharosRuntime
import PharosSpec

/// The on-device profile store: a directory (0700) of `<name>.pharos` files (0600). Cloud
/// profiles (from sync) carry two sidecars, `<name>.pharosid` (the device identity) and
/// `<name>.synced` (the marker), and may carry `<name>.accountkey` (a wrapped account key) and
/// `<name>.deniedrelays` (the signed relay deny list); imported ones have none. Every profile is kept opened
/// (`enc: none`), so connecting never needs a password or the controller. Every write is
/// atomic (temp + fsync + rename).
public struct ProfileStore: Sendable {
    public let directory: String

    /// `$CARAVEL_HOME`, else `/var/lib/pharos/caravel` for root (synced profiles are state), else
    /// `$XDG_CONFIG_HOME/PharosVPN/profiles` (`~/.config/PharosVPN/profiles`).
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let home = environment["CARAVEL_HOME"], !home.isEmpty { return home }
        if geteuid() == 0 { return "/var/lib/pharos/caravel" }
        let config = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.config")
        return config + "/PharosVPN/profiles"
    }

    public init(directory: String = ProfileStore.defaultDirectory()) throws(CaravelError) {
        self.directory = directory
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw .io("cannot create the profile store \(directory): \(error.localizedDescription)")
            }
        } else if !isDirectory.boolValue {
            throw .io("\(directory) is not a directory (set CARAVEL_HOME to choose another store)")
        }
        chmod(directory, 0o700)
    }

    public struct Entry: Sendable, Equatable {
        public var name: String
        public var bundle: ProfileBundle
        /// Synced from a controller (has `.synced` and `.pharosid` sidecars).
        public var marker: SyncedMarker?
        public var isCloud: Bool { marker != nil }
    }

    func path(_ name: String, _ ext: String) -> String { "\(directory)/\(name)\(ext)" }

    /// Letters, digits and `._@+-`, 1–64 characters, not starting with a dot.
    public static func validate(name: String) throws(CaravelError) {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@+-")
        guard (1...64).contains(name.count), name.first != ".", name.allSatisfy(allowed.contains) else {
            throw .invalidName("\"\(name)\" is not a usable profile name: use 1–64 letters, digits or ._@+- (not starting with a dot)")
        }
    }

    /// A usable store name derived from free text (an e-mail, a file name).
    public static func sanitized(_ text: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@+-")
        var name = String(text.map { allowed.contains($0) ? $0 : "-" }.prefix(64))
        while name.hasPrefix(".") { name.removeFirst() }
        return name.isEmpty ? "profile" : name
    }

    // MARK: reading

    public func names() -> [String] {
        files().filter { $0.hasSuffix(ProfileEnvelope.fileExtension) }.map { String($0.dropLast(ProfileEnvelope.fileExtension.count)) }
    }

    /// Every readable entry, and a sentence for each file that could not be read.
    public func entries() -> (entries: [Entry], problems: [String]) {
        var entries: [Entry] = [], problems: [String] = []
        for name in names() {
            do { entries.append(try entry(name)) } catch { problems.append("\(error)") }
        }
        return (entries, problems)
    }

    public func entry(_ name: String) throws(CaravelError) -> Entry {
        try Self.validate(name: name)
        let file = path(name, ProfileEnvelope.fileExtension)
        let bytes = try Self.read(file)
        let bundle: ProfileBundle
        do { bundle = try ProfileEnvelope(jsonBytes: bytes).open() } catch { throw .format(error, file: file) }
        var marker: SyncedMarker?
        if let data = FileManager.default.contents(atPath: path(name, SyncedMarker.fileExtension)) {
            do { marker = try SyncedMarker(jsonBytes: Array(data)) } catch {
                throw .format(error, file: path(name, SyncedMarker.fileExtension))
            }
        }
        return Entry(name: name, bundle: bundle, marker: marker)
    }

    /// The device identity of the logged-in account, with the name of its cloud entry.
    public func identity() throws(CaravelError) -> (name: String, identity: DeviceIdentity)? {
        guard let file = files().first(where: { $0.hasSuffix(DeviceIdentity.fileExtension) }) else {
            return nil
        }
        let full = "\(directory)/\(file)"
        do {
            return (String(file.dropLast(DeviceIdentity.fileExtension.count)),
                    try DeviceIdentity(jsonBytes: try Self.read(full)))
        } catch let error as PharosFormatError {
            throw .format(error, file: full)
        } catch let error as CaravelError {
            throw error
        } catch {
            throw .io("\(full): \(error)")
        }
    }

    // MARK: writing

    /// Imports a `.pharos` file of any `enc` mode (sniffed by content, whatever its name), a
    /// bare sealed bundle, or a plain bundle JSON. The store is touched only when the file
    /// opened completely.
    public func importFile(at path: String, as name: String? = nil, password: [UInt8]? = nil,
                           replacing: Bool = false) throws(CaravelError) -> Entry {
        let bytes = try Self.read(path, limit: SealedBundle.maximumSize)
        let bundle = try open(bytes, file: path, password: password)
        let name = name ?? Self.sanitized(((path as NSString).lastPathComponent as NSString).deletingPathExtension)
        try Self.validate(name: name)
        let target = self.path(name, ProfileEnvelope.fileExtension)
        if FileManager.default.fileExists(atPath: target) {
            guard replacing else { throw .alreadyExists("a profile named \(name) exists; pass --name to choose another or --replace") }
            guard !FileManager.default.fileExists(atPath: self.path(name, SyncedMarker.fileExtension)) else {
                throw .alreadyExists("\(name) is a synced profile; import under another --name")
            }
        }
        try Self.write(ProfileEnvelope.plain(bundle).encoded(), to: target)
        return Entry(name: name, bundle: bundle, marker: nil)
    }

    /// Opens any profile file format, with a distinct error for each way it can be wrong.
    func open(_ bytes: [UInt8], file: String, password: [UInt8]?) throws(CaravelError) -> ProfileBundle {
        let value: JSONValue
        do { value = try JSONValue(parsing: bytes) } catch {
            throw .format(.malformed(format: "profile file", reason: "not JSON (truncated or not a profile): \(error)"), file: file)
        }
        if value["fmt"] == .string(DeviceIdentity.formatTag) {
            throw .invalidName("\(file) is a device identity (.pharosid), not a profile: sync with it instead (`caravel sync \(file)`)")
        }
        do {
            let sealed: SealedBundle
            if value["fmt"] != nil {
                let envelope = try ProfileEnvelope(jsonBytes: bytes)
                guard envelope.encryption == .account else { return try envelope.open(.init(password: password)) }
                sealed = try SealedBundle(json: envelope.payload)
            } else if value["epk"] != nil {
                sealed = try SealedBundle(json: value)
            } else {
                return try ProfileBundle(json: value)
            }
            try Self.checkSigned(sealed, file: file)
            // Sealed to this device's key or its account's, and signed by its controller: only
            // an enrolled store opens it.
            guard let (entry, identity) = try? identity(),
                  let signing = try? Curve25519.Signing.PublicKey(rawRepresentation: identity.signingPublicKey) else {
                throw PharosFormatError.accountKeysRequired
            }
            let wrapped = accountKey(entry)
            if let key = identity.encryptionKey {
                do throws(PharosFormatError) { return try ProfileBundle(jsonBytes: try sealed.open(with: key, signingPublicKey: signing)) } catch {
                    guard wrapped != nil, error == .notSealedToThisKey else { throw error }
                }
            }
            guard let wrapped else { throw PharosFormatError.accountKeysRequired }
            guard let password else { throw PharosFormatError.passwordRequired }
            let accountKey: Curve25519.KeyAgreement.PrivateKey
            do { accountKey = try .init(rawRepresentation: try wrapped.unwrap(passphrase: password)) } catch {
                throw CaravelError.refused("\(file): the account passphrase does not open the account key stored at the last sync; nothing was imported")
            }
            return try ProfileBundle(jsonBytes: try sealed.open(with: accountKey, signingPublicKey: signing))
        } catch let error as PharosFormatError {
            if case .missingField(_, "sig") = error {
                throw .untrusted("\(file): the profile is not signed; a controller always signs what it seals, so it was not imported")
            }
            if error == .signatureInvalid {
                throw .untrusted("\(file): the profile is signed by a key other than your controller's; it was not imported")
            }
            if error == .accountKeysRequired {
                throw .refused("\(file) is sealed to an account or device key this store does not hold; sync it with `caravel sync` instead")
            }
            throw .format(error, file: file)
        } catch let error as CaravelError {
            throw error
        } catch {
            throw .io("\(file): \(error)")
        }
    }

    static func checkSigned(_ sealed: SealedBundle, file: String) throws(CaravelError) {
        if sealed.signature?.isEmpty != false {
            throw .untrusted("\(file): the profile is not signed; a controller always signs what it seals, so it was not imported")
        }
    }

    /// Sync's replace-all: the new cloud entry (bundle, identity, marker, the relay deny list,
    /// and for a device without a key of its own the passphrase-wrapped account key) is
    /// written first, then every other cloud entry is removed. Imported profiles are left alone.
    public func replaceCloud(name: String, bundle: ProfileBundle, identity: DeviceIdentity, marker: SyncedMarker,
                             accountKey: WrappedPrivateKey? = nil, deniedRelays: DeniedRelayList.Signed? = nil) throws(CaravelError) {
        try Self.validate(name: name)
        // All five files or none: what was there before comes back when one cannot be written.
        let written: [(path: String, bytes: [UInt8]?)] = [
            (path(name, ProfileEnvelope.fileExtension), ProfileEnvelope.plain(bundle).encoded()),
            (path(name, DeviceIdentity.fileExtension), identity.encoded()),
            (path(name, Self.accountKeyExtension), accountKey?.encoded()),
            (path(name, DeniedRelayList.fileExtension), deniedRelays?.encoded()),
            (path(name, SyncedMarker.fileExtension), marker.encoded()),
        ]
        let before = written.map { (try? AtomicFile.read($0.path)) ?? nil }
        do throws(CaravelError) {
            for file in written {
                if let bytes = file.bytes { try Self.write(bytes, to: file.path) } else { unlink(file.path) }
            }
        } catch {
            for (file, old) in zip(written, before) {
                if let old { try? AtomicFile.write(old, to: file.path) } else { unlink(file.path) }
            }
            throw error
        }
        for other in names() where other != name && FileManager.default.fileExists(atPath: path(other, SyncedMarker.fileExtension)) {
            removeFiles(other, including: [ProfileEnvelope.fileExtension, SyncedMarker.fileExtension] + Self.accountFileExtensions)
        }
        for file in files() where Self.accountFileExtensions.contains(where: { file.hasSuffix($0) })
            && !Self.accountFileExtensions.contains(where: { file == name + $0 }) {
            unlink("\(directory)/\(file)")
        }
        AtomicFile.syncDirectory(directory)
    }

    /// The sidecar holding a legacy account's key as the controller keeps it: wrapped with
    /// the account passphrase (`{v, salt, n, ct}`), so account-sealed files import offline.
    public static let accountKeyExtension = ".accountkey"

    /// The sidecars of the logged-in account: identity, wrapped account key, relay deny list.
    static let accountFileExtensions = [DeviceIdentity.fileExtension, accountKeyExtension, DeniedRelayList.fileExtension]

    /// The relay deny list stored beside cloud entry `name` as the controller signed it
    /// (`Account` checks the signature), or nil when there is none.
    public func deniedRelays(_ name: String) throws(CaravelError) -> DeniedRelayList.Signed? {
        let file = path(name, DeniedRelayList.fileExtension)
        guard FileManager.default.fileExists(atPath: file) else { return nil }
        let bytes = try Self.read(file, limit: 2 << 20)
        do { return try DeniedRelayList.Signed(jsonBytes: bytes) } catch { throw .format(error, file: file) }
    }

    /// The wrapped account key stored beside cloud entry `name`, if it is one of a device
    /// without a key of its own.
    public func accountKey(_ name: String) -> WrappedPrivateKey? {
        guard let bytes = try? Self.read(path(name, Self.accountKeyExtension), limit: 4096) else { return nil }
        return try? WrappedPrivateKey(jsonBytes: bytes)
    }

    public func saveIdentity(_ identity: DeviceIdentity, name: String) throws(CaravelError) {
        try Self.validate(name: name)
        try Self.write(identity.encoded(), to: path(name, DeviceIdentity.fileExtension))
    }

    public func remove(_ name: String) throws(CaravelError) {
        try Self.validate(name: name)
        guard FileManager.default.fileExists(atPath: path(name, ProfileEnvelope.fileExtension)) else {
            throw .notFound("no profile named \(name); `caravel list` shows what is stored")
        }
        removeFiles(name, including: [ProfileEnvelope.fileExtension, SyncedMarker.fileExtension])
    }

    /// Logout: every cloud profile and the device identity go; imported profiles stay.
    /// Returns the names removed.
    @discardableResult
    public func logout() -> [String] {
        var removed: [String] = []
        for name in names() where FileManager.default.fileExists(atPath: path(name, SyncedMarker.fileExtension)) {
            removeFiles(name, including: [ProfileEnvelope.fileExtension, SyncedMarker.fileExtension])
            removed.append(name)
        }
        for file in files() where file.hasSuffix(SyncedMarker.fileExtension) || Self.accountFileExtensions.contains(where: { file.hasSuffix($0) }) {
            unlink("\(directory)/\(file)")
        }
        AtomicFile.syncDirectory(directory)
        return removed
    }

    /// Atomic, 0600 (temp + fsync + rename + directory fsync).
    static func write(_ bytes: [UInt8], to path: String) throws(CaravelError) {
        do { try AtomicFile.write(bytes, to: path) } catch { throw .io(error.description) }
    }

    /// A regular file of at most `limit` bytes.
    static func read(_ path: String, limit: Int = 1 << 20) throws(CaravelError) -> [UInt8] {
        var info = stat()
        guard stat(path, &info) == 0 else { throw .notFound("\(path) does not exist") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .io("\(path) is not a regular file") }
        guard Int(info.st_size) <= limit else { throw .io("\(path) is \(info.st_size) bytes; the limit is \(limit)") }
        guard let data = FileManager.default.contents(atPath: path) else { throw .io("cannot read \(path)") }
        return Array(data)
    }

    /// File names in the store, hidden (temporary) ones left out.
    private func files() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    private func removeFiles(_ name: String, including extensions: [String]) {
        for ext in extensions { unlink(path(name, ext)) }
        AtomicFile.syncDirectory(directory)
    }
}
