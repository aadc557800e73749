import Crypto
import Foundation
import PharosSpec

/// The on-device profile store: a directory (0700) of `<name>.pharos` files (0600). Cloud
/// profiles (from sync) carry two sidecars, `<name>.pharosid` (the device identity) and
/// `<name>.synced` (the marker); imported ones have neither. Every profile is kept opened
/// (`enc: none`), so connecting never needs a password or the controller. Every write is
/// atomic (temp + fsync + rename).
public struct ProfileStore: Sendable {
    public let directory: String

    /// `$CARAVEL_HOME`, else `/etc/pharos/profiles` for root, else
    /// `$XDG_CONFIG_HOME/PharosVPN/profiles` (`~/.config/PharosVPN/profiles`).
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let home = environment["CARAVEL_HOME"], !home.isEmpty { return home }
        if geteuid() == 0 { return "/etc/pharos/profiles" }
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
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.filter { $0.hasSuffix(ProfileEnvelope.fileExtension) && !$0.hasPrefix(".") }
            .map { String($0.dropLast(ProfileEnvelope.fileExtension.count)) }.sorted()
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
        let bytes = try AtomicFile.read(file)
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
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        guard let file = files.sorted().first(where: { $0.hasSuffix(DeviceIdentity.fileExtension) && !$0.hasPrefix(".") }) else {
            return nil
        }
        let full = "\(directory)/\(file)"
        do {
            return (String(file.dropLast(DeviceIdentity.fileExtension.count)),
                    try DeviceIdentity(jsonBytes: try AtomicFile.read(full)))
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
        let bytes = try AtomicFile.read(path, limit: SealedBundle.maximumSize)
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
        try AtomicFile.write(ProfileEnvelope.plain(bundle).encoded(), to: target)
        return Entry(name: name, bundle: bundle, marker: nil)
    }

    /// Opens any profile file format, with a distinct error for each way it can be wrong.
    func open(_ bytes: [UInt8], file: String, password: [UInt8]?) throws(CaravelError) -> ProfileBundle {
        let value: JSONValue
        do { value = try JSONValue(parsing: bytes) } catch {
            throw .format(.malformed(format: "profile file", reason: "not JSON (truncated or not a profile): \(error)"), file: file)
        }
        if value["fmt"] == .string(DeviceIdentity.formatTag) {
            throw .invalidName("\(file) is a device identity (.pharosid), not a profile; enroll with a join link instead")
        }
        let identity = try? identity()?.identity
        let secrets = ProfileEnvelope.Secrets(password: password, accountKey: identity?.encryptionKey,
                                              signingPublicKey: identity.flatMap { $0.signingPublicKey.count == 32
                                                  ? try? Curve25519.Signing.PublicKey(rawRepresentation: $0.signingPublicKey) : nil })
        do {
            if value["fmt"] != nil {
                let envelope = try ProfileEnvelope(jsonBytes: bytes)
                if envelope.encryption == .password, let kdf = envelope.kdf,
                   kdf.parameters.memoryKiB < Argon2id.Parameters.upstream.memoryKiB {
                    // Its AAD would catch the edit only as "wrong password"; say what it is.
                    throw PharosFormatError.downgradeDetected(
                        reason: "the password KDF asks for \(kdf.parameters.memoryKiB) KiB, less than the \(Argon2id.Parameters.upstream.memoryKiB) KiB every PharosVPN writer uses")
                }
                if envelope.encryption == .account {
                    try Self.checkSigned(SealedBundle(json: envelope.payload), file: file)
                }
                return try envelope.open(secrets)
            }
            if value["epk"] != nil {
                try Self.checkSigned(try SealedBundle(json: value), file: file)
                return try ProfileEnvelope.account(try SealedBundle(json: value)).open(secrets)
            }
            return try ProfileBundle(json: value)
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

    /// Sync's replace-all: the new cloud entry (bundle, identity, marker) is written first,
    /// then every other cloud entry is removed. Imported profiles are left alone.
    public func replaceCloud(name: String, bundle: ProfileBundle, identity: DeviceIdentity, marker: SyncedMarker) throws(CaravelError) {
        try Self.validate(name: name)
        try AtomicFile.write(ProfileEnvelope.plain(bundle).encoded(), to: path(name, ProfileEnvelope.fileExtension))
        try AtomicFile.write(identity.encoded(), to: path(name, DeviceIdentity.fileExtension))
        try AtomicFile.write(marker.encoded(), to: path(name, SyncedMarker.fileExtension))
        for other in names() where other != name && FileManager.default.fileExists(atPath: path(other, SyncedMarker.fileExtension)) {
            removeFiles(other, including: [ProfileEnvelope.fileExtension, SyncedMarker.fileExtension, DeviceIdentity.fileExtension])
        }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for file in files where file.hasSuffix(DeviceIdentity.fileExtension) && file != name + DeviceIdentity.fileExtension {
            unlink("\(directory)/\(file)")
        }
        AtomicFile.syncDirectory(directory)
    }

    public func saveIdentity(_ identity: DeviceIdentity, name: String) throws(CaravelError) {
        try Self.validate(name: name)
        try AtomicFile.write(identity.encoded(), to: path(name, DeviceIdentity.fileExtension))
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
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for file in files where file.hasSuffix(DeviceIdentity.fileExtension) || file.hasSuffix(SyncedMarker.fileExtension) {
            unlink("\(directory)/\(file)")
        }
        AtomicFile.syncDirectory(directory)
        return removed
    }

    private func removeFiles(_ name: String, including extensions: [String]) {
        for ext in extensions { unlink(path(name, ext)) }
        AtomicFile.syncDirectory(directory)
    }
}
