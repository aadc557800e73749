/// Follows gRPC's length-prefixed framing (1 flag byte, 4-byte big-endian length) across
/// DATA frames of one direction of a stream, without decoding anything, to enforce the
/// relay's message cap.
public struct GRPCMessageMeter: Sendable {
    public let limit: Int
    private var header: [UInt8] = []
    private var remaining = 0

    public init(limit: Int) {
        self.limit = limit
    }

    /// Feeds bytes; returns the size of the first message over the limit, if one starts here.
    public mutating func feed<Bytes: Collection>(_ bytes: Bytes) -> Int? where Bytes.Element == UInt8 {
        var index = bytes.startIndex
        while index != bytes.endIndex {
            if remaining > 0 {
                let available = bytes.distance(from: index, to: bytes.endIndex)
                let take = min(remaining, available)
                remaining -= take
                index = bytes.index(index, offsetBy: take)
                continue
            }
            header.append(bytes[index])
            index = bytes.index(after: index)
            if header.count == 5 {
                let length = Int(header[1]) << 24 | Int(header[2]) << 16 | Int(header[3]) << 8 | Int(header[4])
                header.removeAll(keepingCapacity: true)
                if length > limit { return length }
                remaining = length
            }
        }
        return nil
    }
}
