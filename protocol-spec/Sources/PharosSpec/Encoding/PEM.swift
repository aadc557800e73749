import Foundation

/// PEM exactly as Go's `pem.EncodeToMemory` writes it: 64-column base64 lines and a
/// trailing newline. Fingerprints hash these bytes, so the layout is part of the format.
public enum PEM {
    public static func encode(type: String, der: [UInt8]) -> String {
        let b64 = Base64.standard(der)
        var out = "-----BEGIN \(type)-----\n"
        var line = b64.startIndex
        while line < b64.endIndex {
            let end = b64.index(line, offsetBy: 64, limitedBy: b64.endIndex) ?? b64.endIndex
            out += b64[line..<end] + "\n"
            line = end
        }
        return out + "-----END \(type)-----\n"
    }

    /// The DER bytes of every block of `type`, in order. Text outside blocks is ignored.
    public static func decodeAll(type: String, from text: String) -> [[UInt8]] {
        var blocks: [[UInt8]] = []
        var body: String?
        for raw in text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line == "-----BEGIN \(type)-----" {
                body = ""
            } else if line == "-----END \(type)-----", let b = body {
                if let der = Base64.decodeStandard(b) { blocks.append(der) }
                body = nil
            } else if body != nil {
                body! += line
            }
        }
        return blocks
    }

    public static func decode(type: String, from text: String) -> [UInt8]? {
        decodeAll(type: type, from: text).first
    }
}
