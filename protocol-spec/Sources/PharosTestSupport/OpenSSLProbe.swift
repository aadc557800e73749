import Foundation

/// FOR TESTS ONLY: what a TLS port presents, as the real `openssl s_client` sees it.
public enum OpenSSLProbe {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The serial (lowercase hex) of the leaf `127.0.0.1:port` presents to a new TLS 1.3
    /// connection made with the client leaf given (chain and key, PEM), verified against
    /// `rootPEM`. The files openssl reads live in a 0700 directory removed afterwards.
    public static func presentedSerial(port: Int, clientChainPEM: String, clientKeyPEM: String, rootPEM: String) throws -> String {
        let dir = "/tmp/pharos-ssl-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try clientChainPEM.write(toFile: "\(dir)/c.crt", atomically: true, encoding: .utf8)
        try clientKeyPEM.write(toFile: "\(dir)/c.key", atomically: true, encoding: .utf8)
        try rootPEM.write(toFile: "\(dir)/ca.crt", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", """
            openssl s_client -connect 127.0.0.1:\(port) -tls1_3 -cert \(dir)/c.crt -key \(dir)/c.key -CAfile \(dir)/ca.crt \
              -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -serial
            """]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard output.hasPrefix("serial=") else { throw Failure(description: "openssl printed no serial: \(output)") }
        return String(output.dropFirst("serial=".count)).trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }

    /// `openssl verify -CAfile root -untrusted file [-purpose purpose] file`: whether the first
    /// certificate in `path` chains to `root` through the others in that file (a key block in
    /// it is skipped); the exit status and what openssl printed, trimmed.
    public static func verify(_ path: String, root: String, purpose: String? = nil) throws -> (status: Int32, output: String) {
        let result = try Tool.run("/usr/bin/openssl", ["verify", "-CAfile", root, "-untrusted", path] + (purpose.map { ["-purpose", $0] } ?? []) + [path])
        return (result.status, result.output.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
