// STUB: API fixed, implementation pending.

/// Classic pcap output (what `lb cat` writes): helpers that write headers into memory that the
/// caller owns, so writing a packet allocates nothing.
public enum Pcap {
    public static let fileHeaderSize = 24
    public static let recordHeaderSize = 16

    public static func writeFileHeader(to p: UnsafeMutableRawPointer, linkType: UInt32, snaplen: UInt32, nanosecond: Bool) { fatalError("stub") }

    public static func writeRecordHeader(to p: UnsafeMutableRawPointer, timestampNanos: UInt64, caplen: UInt32, wirelen: UInt32, nanosecond: Bool) { fatalError("stub") }

    /// A whole file in memory (for tests and generators; allocates).
    public static func file(linkType: UInt32, nanosecond: Bool, packets: [(timestampNanos: UInt64, bytes: [UInt8])]) -> [UInt8] { fatalError("stub") }
}
