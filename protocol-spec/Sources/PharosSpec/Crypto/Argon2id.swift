import CArgon2

/// Argon2id from libargon2 (libsodium's pwhash is fixed at one lane; upstream uses four).
public enum Argon2id {
    public struct Parameters: Sendable, Equatable {
        /// Iterations.
        public var time: UInt32
        /// Memory in KiB.
        public var memoryKiB: UInt32
        /// Lanes.
        public var parallelism: UInt8

        public init(time: UInt32, memoryKiB: UInt32, parallelism: UInt8) {
            self.time = time
            self.memoryKiB = memoryKiB
            self.parallelism = parallelism
        }

        /// t=1, m=64 MiB, p=4: every Argon2id use in upstream PharosVPN.
        public static let upstream = Parameters(time: 1, memoryKiB: 65536, parallelism: 4)

        /// Bounds a file from elsewhere may ask for before we spend the memory and time.
        public func validateForUntrustedInput() throws(PharosFormatError) {
            guard time >= 1, time <= 16 else { throw .kdfRejected(reason: "t=\(time) is outside 1...16") }
            guard memoryKiB >= 8 * UInt32(max(parallelism, 1)), memoryKiB <= 1 << 20 else {
                throw .kdfRejected(reason: "m=\(memoryKiB) KiB is outside \(8 * UInt32(max(parallelism, 1)))...1048576")
            }
            guard parallelism >= 1, parallelism <= 16 else { throw .kdfRejected(reason: "p=\(parallelism) is outside 1...16") }
        }
    }

    public static let saltLength = 16

    public static func deriveKey(password: [UInt8], salt: [UInt8], parameters: Parameters = .upstream,
                                 length: Int = 32) throws(PharosFormatError) -> [UInt8] {
        guard salt.count >= 8 else { throw .kdfRejected(reason: "salt is \(salt.count) bytes; at least 8 are required") }
        var out = [UInt8](repeating: 0, count: length)
        let rc = argon2id_hash_raw(parameters.time, parameters.memoryKiB, UInt32(parameters.parallelism),
                                   password, password.count, salt, salt.count, &out, length)
        guard rc == ARGON2_OK.rawValue else {
            throw .cryptoFailure(reason: "argon2id: " + String(cString: argon2_error_message(rc)))
        }
        return out
    }
}
