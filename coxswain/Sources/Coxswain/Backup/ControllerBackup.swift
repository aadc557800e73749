import Foundation
import PharosSpec

/// The file `cox backup` writes: a controller's `cox.yaml` and a consistent snapshot of its
/// database (every key the fleet trusts: CAs, controller certificate, profile-signing key),
/// encrypted under a passphrase as the `.pharos` password mode is: Argon2id (t=1, m=64 MiB,
/// p=4, stored so a later cox can raise them) and XChaCha20-Poly1305, here as libsodium's
/// secretstream so a database of any size streams through 1 MiB chunks.
///
///     PHAROS-COX-BACKUP 1\n
///     {"v":1,"created_at_ms":…,"ca_fingerprint":…,"cox":…,"kdf":{"alg":"argon2id","t","m","p","salt"},"check":…,"stream":…}\n
///     ( u32 big-endian length, sealed chunk )*
///
/// Argon2id gives 48 bytes: the first 32 are the stream key, the last 16 the `check` a
/// wrong passphrase is told by (they cost an attacker the same Argon2id run as the key).
/// Every chunk is authenticated with both header lines as associated data, so nothing in
/// the header can be changed either. The first chunk is the manifest
/// `{"files":[{"name":"cox.yaml","size":N},{"name":"app.db","size":M}]}`; the files' bytes
/// follow in that order; only the last chunk carries the final tag.
public enum ControllerBackup {
    public static let minimumPassphraseLength = 12
    static let magic = Array("PHAROS-COX-BACKUP 1\n".utf8)
    static let magicPrefix = Array("PHAROS-COX-BACKUP ".utf8)
    static let version = 1
    /// The most a backup's header may ask of Argon2id (this cox writes t=1, 64 MiB, p=4): a
    /// later cox may raise the cost that far, a hostile file no further.
    static let kdfCeiling = Argon2id.Parameters(time: 8, memoryKiB: 256 * 1024, parallelism: 8)
    /// cox.yaml is read whole: it may not claim more.
    static let configLimit = 1 << 20
    static let headerLimit = 4096
    /// The largest chunk a backup holds; a writer may cut smaller ones.
    public static let maximumChunk = 1 << 20
    static let configName = "cox.yaml"
    static let databaseName = "app.db"

    public struct Header: Sendable, Equatable {
        public var createdAtMs: Int64
        public var caFingerprint: String
        public var coxVersion: String
        public var parameters: Argon2id.Parameters
        public var salt: [UInt8]
        public var check: [UInt8]
        public var stream: [UInt8]

        var json: JSONValue {
            .object([
                JSONMember("v", .integer(ControllerBackup.version)),
                JSONMember("created_at_ms", .integer(createdAtMs)),
                JSONMember("ca_fingerprint", .string(caFingerprint)),
                JSONMember("cox", .string(coxVersion)),
                JSONMember("kdf", .object([
                    JSONMember("alg", .string("argon2id")),
                    JSONMember("t", .integer(parameters.time)),
                    JSONMember("m", .integer(parameters.memoryKiB)),
                    JSONMember("p", .integer(parameters.parallelism)),
                    JSONMember("salt", .bytes(salt)),
                ])),
                JSONMember("check", .bytes(check)),
                JSONMember("stream", .bytes(stream)),
            ])
        }

        init(createdAtMs: Int64, caFingerprint: String, coxVersion: String, parameters: Argon2id.Parameters,
             salt: [UInt8], check: [UInt8], stream: [UInt8]) {
            self.createdAtMs = createdAtMs
            self.caFingerprint = caFingerprint
            self.coxVersion = coxVersion
            self.parameters = parameters
            self.salt = salt
            self.check = check
            self.stream = stream
        }

        init(line: [UInt8], path: String) throws(BackupError) {
            do {
                let f = try JSONFields(parsing: line, format: "coxswain backup header", limit: ControllerBackup.headerLimit)
                let version = try f.integer("v", as: Int.self)
                guard version == ControllerBackup.version else { throw BackupError.unsupportedVersion(path: path, version: "\(version)") }
                guard let kdf = try f.object("kdf") else { throw BackupError.notABackup(path: path, reason: "its header names no kdf") }
                guard try kdf.string("alg") == "argon2id" else {
                    throw BackupError.notABackup(path: path, reason: "its key derivation is not argon2id")
                }
                parameters = Argon2id.Parameters(time: try kdf.integer("t"), memoryKiB: try kdf.integer("m"),
                                                 parallelism: try kdf.integer("p"))
                salt = try kdf.bytes("salt", length: Argon2id.saltLength)
                createdAtMs = try f.integer("created_at_ms")
                caFingerprint = try f.string("ca_fingerprint")
                coxVersion = try f.string("cox")
                // Both are shown before anything is authenticated: nothing but what they can be.
                guard caFingerprint.count == 64, caFingerprint.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
                    throw BackupError.notABackup(path: path, reason: "its ca_fingerprint is not a SHA-256 in hex")
                }
                guard (1...32).contains(coxVersion.count),
                      coxVersion.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || ".+-~".unicodeScalars.contains($0)) }) else {
                    throw BackupError.notABackup(path: path, reason: "its cox version is not a version")
                }
                check = try f.bytes("check", length: 16)
                stream = try f.bytes("stream", length: SecretStream.headerLength)
            } catch let error as BackupError {
                throw error
            } catch {
                throw .notABackup(path: path, reason: "its header: \(error)")
            }
            do { try parameters.validateForUntrustedInput() } catch { throw .kdfRejected(path: path, reason: "\(error)") }
            let ceiling = ControllerBackup.kdfCeiling
            guard parameters.time <= ceiling.time, parameters.memoryKiB <= ceiling.memoryKiB, parameters.parallelism <= ceiling.parallelism else {
                throw .kdfRejected(path: path, reason: "t=\(parameters.time) m=\(parameters.memoryKiB) KiB p=\(parameters.parallelism) exceeds "
                                   + "t=\(ceiling.time) m=\(ceiling.memoryKiB) KiB p=\(ceiling.parallelism)")
            }
        }
    }

    /// At least `minimumPassphraseLength` characters (not bytes).
    public static func isLongEnough(_ passphrase: [UInt8]) -> Bool {
        String(decoding: passphrase, as: UTF8.self).count >= minimumPassphraseLength
    }

    /// The key and check value a passphrase derives under `header`'s parameters.
    static func derive(passphrase: [UInt8], salt: [UInt8], parameters: Argon2id.Parameters) throws -> (key: [UInt8], check: [UInt8]) {
        let out = try Argon2id.deriveKey(password: passphrase, salt: salt, parameters: parameters, length: 48)
        return (Array(out[0..<32]), Array(out[32..<48]))
    }

    public struct Written: Sendable {
        public var header: Header
        public var bytes: Int
        public var databaseBytes: Int
    }

    /// Where a backup of the database at `databasePath` keeps its snapshot while it reads it.
    public static func snapshotPath(besides databasePath: String) -> String {
        URL(fileURLWithPath: databasePath).deletingLastPathComponent().appendingPathComponent(".backup-\(UUID().uuidString).db").path
    }

    /// The snapshot and the files SQLite may keep beside it.
    public static func snapshotFiles(_ snapshot: String) -> [String] {
        ["", "-wal", "-shm", "-journal"].map { snapshot + $0 }
    }

    /// Writes `configBytes` and a snapshot of `store` (taken online: writers carry on) to
    /// `output`. The snapshot is a 0600 file beside the database while it is read, then gone.
    public static func write(store: Store, caFingerprint: String, configBytes: [UInt8], passphrase: [UInt8],
                             to output: FileHandle, parameters: Argon2id.Parameters = .upstream,
                             chunkSize: Int = maximumChunk, now: Date = Date(), snapshotPath: String? = nil) throws -> Written {
        precondition(chunkSize > 0 && chunkSize <= maximumChunk, "backup chunk size")
        guard isLongEnough(passphrase) else { throw BackupError.passphraseTooShort(minimum: minimumPassphraseLength) }
        let snapshot = snapshotPath ?? Self.snapshotPath(besides: store.path)
        defer { for file in snapshotFiles(snapshot) { try? FileManager.default.removeItem(atPath: file) } }
        try store.snapshot(to: snapshot)
        guard let database = FileHandle(forReadingAtPath: snapshot) else {
            throw BackupError.io(path: snapshot, reason: "cannot read the snapshot just taken")
        }
        defer { try? database.close() }
        let databaseBytes = Int(try database.seekToEnd())
        try database.seek(toOffset: 0)

        let salt = secureRandomBytes(Argon2id.saltLength)
        let (key, check) = try derive(passphrase: passphrase, salt: salt, parameters: parameters)
        var sealer = SecretStream.Sealer(key: key)
        let header = Header(createdAtMs: Int64(now.timeIntervalSince1970 * 1000), caFingerprint: caFingerprint,
                            coxVersion: CoxswainVersion.component, parameters: parameters, salt: salt, check: check,
                            stream: sealer.header)
        let aad = magic + header.json.compactBytes() + [0x0A]
        var written = 0
        func emit(_ bytes: [UInt8]) throws {
            try output.write(contentsOf: bytes)
            written += bytes.count
        }
        try emit(aad)

        let manifest = JSONValue.object([JSONMember("files", .array([
            .object([JSONMember("name", .string(configName)), JSONMember("size", .integer(configBytes.count))]),
            .object([JSONMember("name", .string(databaseName)), JSONMember("size", .integer(databaseBytes))]),
        ]))]).compactBytes()
        func seal(_ plaintext: [UInt8], final: Bool) throws {
            let sealed = sealer.seal(plaintext, aad: aad, final: final)
            var length = UInt32(sealed.count).bigEndian
            try emit(withUnsafeBytes(of: &length) { Array($0) } + sealed)
        }
        // The final tag goes on the chunk that ends the last byte (the manifest's when both files are empty).
        try seal(manifest, final: configBytes.isEmpty && databaseBytes == 0)
        for start in stride(from: 0, to: configBytes.count, by: chunkSize) {
            let end = min(start + chunkSize, configBytes.count)
            try seal(Array(configBytes[start..<end]), final: end == configBytes.count && databaseBytes == 0)
        }
        var remaining = databaseBytes
        while remaining > 0 {
            let piece = [UInt8](try database.read(upToCount: min(chunkSize, remaining)) ?? Data())
            guard !piece.isEmpty else { throw BackupError.io(path: snapshot, reason: "the snapshot shrank while it was read") }
            remaining -= piece.count
            try seal(piece, final: remaining == 0)
        }
        try output.synchronize()
        return Written(header: header, bytes: written, databaseBytes: databaseBytes)
    }

    /// The header of the backup at `path` (no passphrase needed) and the bytes it spans.
    public static func readHeader(path: String) throws(BackupError) -> Header {
        guard let file = FileHandle(forReadingAtPath: path) else { throw .io(path: path, reason: "cannot be read") }
        defer { try? file.close() }
        return try readHeader(file, path: path).header
    }

    static func readHeader(_ file: FileHandle, path: String) throws(BackupError) -> (header: Header, aad: [UInt8]) {
        let start: [UInt8]
        do { start = [UInt8](try file.read(upToCount: magic.count + headerLimit + 1) ?? Data()) } catch {
            throw .io(path: path, reason: "\(error)")
        }
        guard start.starts(with: magicPrefix), let lineEnd = start.prefix(64).firstIndex(of: 0x0A) else {
            throw .notABackup(path: path, reason: "it does not start with \(String(decoding: magic.dropLast(), as: UTF8.self))")
        }
        guard start.starts(with: magic) else {
            let token = String(decoding: start[magicPrefix.count..<lineEnd], as: UTF8.self)
            throw .unsupportedVersion(path: path, version: token.allSatisfy(\.isNumber) ? token : "unknown")
        }
        guard let end = start[magic.count...].firstIndex(of: 0x0A) else {
            throw .notABackup(path: path, reason: "its header line is missing or longer than \(headerLimit) bytes")
        }
        let header = try Header(line: Array(start[magic.count..<end]), path: path)
        do { try file.seek(toOffset: UInt64(end + 1)) } catch { throw .io(path: path, reason: "\(error)") }
        return (header, Array(start[0...end]))
    }

    /// Decrypts the backup open as `file` (named `path`) into `directory` (`cox.yaml`, `app.db`), authenticating
    /// every chunk on the way and the final tag at the end. On any error the caller discards
    /// `directory`: what is in it then was never complete.
    static func extract(_ file: FileHandle, path: String, passphrase: [UInt8], into directory: String) throws -> Header {
        try file.seek(toOffset: 0)
        let (header, aad) = try readHeader(file, path: path)
        let (key, check) = try derive(passphrase: passphrase, salt: header.salt, parameters: header.parameters)
        guard check == header.check, var opener = SecretStream.Opener(key: key, header: header.stream) else {
            throw BackupError.wrongPassphrase(path: path)
        }
        var chunk = 0
        func next() throws -> (plaintext: [UInt8], final: Bool) {
            chunk += 1
            guard let lengthBytes = try file.read(upToCount: 4), !lengthBytes.isEmpty else { throw BackupError.truncated(path: path) }
            guard lengthBytes.count == 4 else { throw BackupError.truncated(path: path) }
            let length = Int(lengthBytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            guard length >= SecretStream.overhead, length <= maximumChunk + SecretStream.overhead else {
                throw BackupError.damaged(path: path, reason: "chunk \(chunk) claims \(length) bytes")
            }
            let sealed = [UInt8](try file.read(upToCount: length) ?? Data())
            guard sealed.count == length else { throw BackupError.truncated(path: path) }
            guard let opened = opener.open(sealed, aad: aad) else {
                throw BackupError.damaged(path: path, reason: "chunk \(chunk) does not authenticate")
            }
            return opened
        }

        var (plaintext, final) = try next()
        let files = try manifest(plaintext, path: path)
        var current = -1, remaining = 0
        var out: FileHandle?
        defer { try? out?.close() }
        /// Moves to the next file the manifest lists (0600, empty); false when there is none.
        func nextFile() throws -> Bool {
            guard current + 1 < files.count else { return false }
            current += 1
            try out?.close()
            let target = URL(fileURLWithPath: directory).appendingPathComponent(files[current].name).path
            guard FileManager.default.createFile(atPath: target, contents: nil, attributes: [.posixPermissions: 0o600]),
                  let handle = FileHandle(forWritingAtPath: target) else { throw BackupError.io(path: target, reason: "cannot be written") }
            out = handle
            remaining = files[current].size
            return true
        }
        _ = try nextFile()
        while !final {
            (plaintext, final) = try next()
            var offset = 0
            while offset < plaintext.count {
                while remaining == 0 {
                    guard try nextFile() else {
                        throw BackupError.damaged(path: path, reason: "chunk \(chunk) holds more than its manifest lists")
                    }
                }
                let take = min(remaining, plaintext.count - offset)
                try out?.write(contentsOf: plaintext[offset..<offset + take])
                offset += take
                remaining -= take
            }
        }
        // Empty files at the end of the manifest hold no bytes of any chunk.
        while remaining == 0, try nextFile() {}
        guard remaining == 0, current == files.count - 1 else {
            throw BackupError.damaged(path: path, reason: "it ends before the \(files[current].name) its manifest lists is complete")
        }
        guard (try file.read(upToCount: 1) ?? Data()).isEmpty else {
            throw BackupError.damaged(path: path, reason: "bytes follow its last chunk")
        }
        try out?.synchronize()
        return header
    }

    static func manifest(_ bytes: [UInt8], path: String) throws(BackupError) -> [(name: String, size: Int)] {
        do {
            let f = try JSONFields(parsing: bytes, format: "coxswain backup manifest", limit: headerLimit)
            let files = try f.array("files").map { value throws(PharosFormatError) in
                let entry = try JSONFields(value, format: "coxswain backup manifest")
                return (name: try entry.string("name"), size: try entry.integer("size", as: Int.self))
            }
            guard files.map(\.name) == [configName, databaseName], files.allSatisfy({ $0.size >= 0 }) else {
                throw BackupError.damaged(path: path, reason: "its manifest lists \(files.map(\.name)), not cox.yaml and app.db")
            }
            guard files[0].size <= configLimit else {
                throw BackupError.damaged(path: path, reason: "its manifest claims a cox.yaml of \(files[0].size) bytes")
            }
            return files
        } catch let error as BackupError {
            throw error
        } catch {
            throw .damaged(path: path, reason: "its manifest: \(error)")
        }
    }
}
