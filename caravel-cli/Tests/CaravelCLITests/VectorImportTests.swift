import Foundation
import PharosSpec
import PharosTestSupport
import Testing

/// Issue #25: every file protocol-spec's Python vectors wrote (as upstream would) goes through
/// the `caravel` binary, each with the exit code and sentence its kind deserves.
@Suite struct VectorImportTests {
    static let caravel = TestBinaries.path("caravel", package: "caravel-cli")
    static let vectors = TestBinaries.repository.appendingPathComponent("protocol-spec/Tests/PharosSpecTests/Vectors").path
    static let password = "correct horse battery staple"

    struct Outcome {
        var status: Int32
        var output: String
    }

    /// `caravel ARGS --store STORE`, with `input` on stdin (a secret is never an argument).
    static func caravel(_ arguments: [String], store: String, input: String = "") throws -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: caravel)
        process.arguments = arguments + ["--store", store]
        process.environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        let stdin = Pipe(), out = Pipe()
        process.standardInput = stdin
        process.standardOutput = out
        process.standardError = out
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return Outcome(status: process.terminationStatus, output: output)
    }

    static func vector(_ name: String) -> String { "\(vectors)/\(name)" }

    /// A store as a legacy sync leaves it: the vector identity without a key of its own, and
    /// the vector's passphrase-wrapped account key beside it.
    static func legacyStore(_ dir: String) throws -> String {
        let store = "\(dir)/store"
        try FileManager.default.createDirectory(atPath: store, withIntermediateDirectories: true)
        var identity = try DeviceIdentity(jsonBytes: Array(try Data(contentsOf: URL(fileURLWithPath: vector("device.pharosid")))))
        identity.encryptionKey = nil
        try Data(identity.encoded()).write(to: URL(fileURLWithPath: "\(store)/laptop.pharosid"))
        try Data(contentsOf: URL(fileURLWithPath: vector("wrapped_key.json"))).write(to: URL(fileURLWithPath: "\(store)/laptop.accountkey"))
        return store
    }

    @Test func everyUpstreamVectorImportsThroughTheCLI() throws {
        let dir = "/tmp/caravel-vectors-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try Self.legacyStore(dir)

        let plain = try Self.caravel(["import", Self.vector("profile_none.pharos"), "--name", "none"], store: store)
        #expect(plain.status == 0 && plain.output.contains("imported none: 1 profile(s)"), "\(plain.output)")
        let bare = try Self.caravel(["import", Self.vector("profile_bundle.json"), "--name", "bare"], store: store)
        #expect(bare.status == 0, "\(bare.output)")

        // Password mode: a wrong password loses nothing, the right one from stdin opens it.
        let wrong = try Self.caravel(["import", Self.vector("profile_password.pharos"), "--name", "pw", "--password-stdin"],
                                     store: store, input: "Correct horse battery staple\n")
        #expect(wrong.status == 65 && wrong.output.contains("wrong password"), "\(wrong.output)")
        let password = try Self.caravel(["import", Self.vector("profile_password.pharos"), "--name", "pw", "--password-stdin"],
                                        store: store, input: Self.password + "\n")
        #expect(password.status == 0, "\(password.output)")

        // Account mode and a bare sealed bundle: opened with the account key the passphrase unwraps.
        let noPassphrase = try Self.caravel(["import", Self.vector("profile_account.pharos"), "--name", "acct"], store: store)
        #expect(noPassphrase.status == 65 && noPassphrase.output.contains("password"), "\(noPassphrase.output)")
        let badPassphrase = try Self.caravel(["import", Self.vector("profile_account.pharos"), "--name", "acct"], store: store,
                                             input: "not the passphrase\n")
        #expect(badPassphrase.status == 77 && badPassphrase.output.contains("does not open the account key"), "\(badPassphrase.output)")
        let account = try Self.caravel(["import", Self.vector("profile_account.pharos"), "--name", "acct"], store: store,
                                       input: Self.password + "\n")
        #expect(account.status == 0, "\(account.output)")
        let sealed = try Self.caravel(["import", Self.vector("sealed_bundle.json"), "--name", "sealed"], store: store,
                                      input: Self.password + "\n")
        #expect(sealed.status == 0, "\(sealed.output)")

        // Every import opened to the same bundle.
        let list = try Self.caravel(["list", "--json"], store: store)
        let entries = try JSONValue(parsing: Array(list.output.utf8))
        guard case .array(let rows) = entries else { Issue.record("list --json: \(list.output)"); return }
        #expect(rows.compactMap { row -> String? in if case .string(let n) = row["name"] { n } else { nil } }.sorted()
                == ["acct", "bare", "none", "pw", "sealed"])
        #expect(rows.allSatisfy { $0["user"] == .string("ada@example.org") && $0["revision"] == .integer(7) })

        // The identity is not a profile: import says to sync with it. A sync with it cannot reach
        // the vector's relay (or, after its leaf's 2027-01-01 expiry, is refused) and stores nothing.
        let identity = try Self.caravel(["import", Self.vector("device.pharosid")], store: store)
        #expect(identity.status == 66 && identity.output.contains("caravel sync"), "\(identity.output)")
        let other = "\(dir)/other"
        let sync = try Self.caravel(["sync", Self.vector("device.pharosid"), "--password-stdin"], store: other,
                                    input: Self.password + "\n")
        let expired = Date() >= Date(timeIntervalSince1970: 1_798_761_600)  // 2027-01-01T00:00:00Z
        #expect(sync.status == (expired ? 77 : 69), "\(sync.output)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: other)) ?? []).isEmpty)
    }
}
