/// Classic pcap output (what `lb cat` writes): helpers that write headers into memory that the
/// caller owns, so writing a packet allocates nothing. Headers are written in the host's byte
/// order (little-endian on x86 and arm64), version 2.4, with magic 0xa1b2c3d4 (microsecond
/// timestamps) or 0xa1b23c4d (nanosecond timestamps).
public enum Pcap {
    public static let fileHeaderSize = 24
    public static let recordHeaderSize = 16
    /// The snaplen `file(linkType:nanosecond:packets:)` declares.
    public static let defaultSnaplen: UInt32 = 262_144

    /// Writes the 24-byte file header to `p` (which must have room for `fileHeaderSize` bytes).
    public static func writeFileHeader(to p: UnsafeMutableRawPointer, linkType: UInt32, snaplen: UInt32, nanosecond: Bool) {
        p.storeBytes(of: nanosecond ? UInt32(0xA1B2_3C4D) : UInt32(0xA1B2_C3D4), toByteOffset: 0, as: UInt32.self)
        p.storeBytes(of: UInt16(2), toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: UInt16(4), toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: UInt32(0), toByteOffset: 8, as: UInt32.self)  // thiszone
        p.storeBytes(of: UInt32(0), toByteOffset: 12, as: UInt32.self)  // sigfigs
        p.storeBytes(of: snaplen, toByteOffset: 16, as: UInt32.self)
        p.storeBytes(of: linkType, toByteOffset: 20, as: UInt32.self)
    }

    /// Writes the 16-byte record header to `p`: seconds, then microseconds (truncated) or
    /// nanoseconds, then the captured and the wire length. Seconds past 2106 wrap (the field is 32 bits).
    public static func writeRecordHeader(to p: UnsafeMutableRawPointer, timestampNanos: UInt64, caplen: UInt32, wirelen: UInt32, nanosecond: Bool) {
        let sec = timestampNanos / 1_000_000_000, ns = timestampNanos % 1_000_000_000
        p.storeBytes(of: UInt32(truncatingIfNeeded: sec), toByteOffset: 0, as: UInt32.self)
        p.storeBytes(of: UInt32(nanosecond ? ns : ns / 1000), toByteOffset: 4, as: UInt32.self)
        p.storeBytes(of: caplen, toByteOffset: 8, as: UInt32.self)
        p.storeBytes(of: wirelen, toByteOffset: 12, as: UInt32.self)
    }

    /// A whole file in memory (for tests and generators; allocates). Snaplen is `defaultSnaplen`;
    /// each packet is stored whole, with its wire length equal to its size.
    public static func file(linkType: UInt32, nanosecond: Bool, packets: [(timestampNanos: UInt64, bytes: [UInt8])]) -> [UInt8] {
        let total = packets.reduce(fileHeaderSize) { $0 + recordHeaderSize + $1.bytes.count }
        return [UInt8](unsafeUninitializedCapacity: total) { buf, count in
            let base = UnsafeMutableRawPointer(buf.baseAddress!)
            writeFileHeader(to: base, linkType: linkType, snaplen: defaultSnaplen, nanosecond: nanosecond)
            var at = fileHeaderSize
            for pkt in packets {
                let n = UInt32(truncatingIfNeeded: pkt.bytes.count)
                writeRecordHeader(to: base + at, timestampNanos: pkt.timestampNanos, caplen: n, wirelen: n, nanosecond: nanosecond)
                at += recordHeaderSize
                pkt.bytes.withUnsafeBytes { src in
                    if src.count > 0 { (base + at).copyMemory(from: src.baseAddress!, byteCount: src.count) }
                }
                at += pkt.bytes.count
            }
            count = total
        }
    }
}
