import CQREncode
import Foundation

/// The join link as a QR code (libqrencode, medium error correction), rendered as a
/// 512×512 black-on-white PNG with a quiet zone, as upstream serves invites.
public enum JoinQR {
    public static let size = 512

    public enum QRError: Error, CustomStringConvertible {
        case encodingFailed(String)
        public var description: String {
            switch self { case .encodingFailed(let reason): "cannot encode the join link as a QR code: \(reason)" }
        }
    }

    /// The module matrix, row-major, true = dark.
    public static func modules(for text: String) throws -> (width: Int, dark: [Bool]) {
        guard let code = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1) else {
            throw QRError.encodingFailed(String(cString: strerror(errno)))
        }
        defer { QRcode_free(code) }
        let width = Int(code.pointee.width)
        let dark = (0..<(width * width)).map { code.pointee.data[$0] & 1 == 1 }
        return (width, dark)
    }

    public static func png(for text: String) throws -> [UInt8] {
        let (width, dark) = try modules(for: text)
        let quiet = 4
        let scale = max(1, size / (width + 2 * quiet))
        let offset = (size - width * scale) / 2
        // 1-bit grayscale: 0 = black, 1 = white; each row starts with filter type 0.
        let rowBytes = size / 8
        var raw = [UInt8](repeating: 0, count: size * (rowBytes + 1))
        for y in 0..<size {
            let base = y * (rowBytes + 1)
            for x in 0..<size {
                let mx = (x - offset), my = (y - offset)
                let isDark = mx >= 0 && my >= 0 && mx < width * scale && my < width * scale
                    && dark[(my / scale) * width + mx / scale]
                if !isDark { raw[base + 1 + x / 8] |= 0x80 >> UInt8(x % 8) }
            }
        }
        return PNG.grayscale1Bit(width: size, height: size, rows: raw)
    }
}

/// Just enough PNG for a bitmap: IHDR, one IDAT of stored (uncompressed) deflate blocks, IEND.
enum PNG {
    static func grayscale1Bit(width: Int, height: Int, rows: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header = bigEndian(UInt32(width)) + bigEndian(UInt32(height))
        header += [1, 0, 0, 0, 0]  // bit depth 1, grayscale, deflate, adaptive filter, no interlace
        chunk("IHDR", header, into: &out)
        chunk("IDAT", zlibStored(rows), into: &out)
        chunk("IEND", [], into: &out)
        return out
    }

    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let length = min(65535, data.count - offset)
            let final: UInt8 = offset + length == data.count ? 1 : 0
            out.append(final)
            out += [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8((~length >> 8) & 0xFF)]
            out += data[offset..<(offset + length)]
            offset += length
        } while offset < data.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in data {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        return out + bigEndian((b << 16) | a)
    }

    static func chunk(_ type: String, _ body: [UInt8], into out: inout [UInt8]) {
        let typed = Array(type.utf8) + body
        out += bigEndian(UInt32(body.count)) + typed + bigEndian(crc32(typed))
    }

    static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for byte in bytes { c = crcTable[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }
}
