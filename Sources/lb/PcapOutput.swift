import LBCore
import LBRing
import LBSys

/// Buffered classic-pcap writing: one write(2) per megabyte, no allocation per packet.
struct PcapOutput: ~Copyable {
    let fd: Int32
    let nanosecond: Bool
    let buffer: UnsafeMutableRawPointer
    let capacity = 1 << 20
    var used = 0
    var packets: UInt64 = 0

    init(fd: Int32, nanosecond: Bool) {
        self.fd = fd
        self.nanosecond = nanosecond
        buffer = .allocate(byteCount: capacity, alignment: 64)
    }

    deinit { buffer.deallocate() }

    mutating func header(snaplen: UInt32, linkType: UInt32 = 1) throws {
        Pcap.writeFileHeader(to: buffer, linkType: linkType, snaplen: snaplen, nanosecond: nanosecond)
        used = Pcap.fileHeaderSize
    }

    mutating func append(_ p: RingPacket) throws(SysError) {
        try append(bytes: p.bytes, timestampNanos: p.descriptor.ts_ns, wireLength: Int(p.descriptor.wirelen))
    }

    mutating func append(bytes: UnsafeRawBufferPointer, timestampNanos: UInt64, wireLength: Int) throws(SysError) {
        let need = Pcap.recordHeaderSize + bytes.count
        if used + need > capacity { try flush() }
        Pcap.writeRecordHeader(to: buffer + used, timestampNanos: timestampNanos, caplen: UInt32(bytes.count),
                               wirelen: UInt32(clamping: max(wireLength, bytes.count)), nanosecond: nanosecond)
        used += Pcap.recordHeaderSize
        if bytes.count > 0 { (buffer + used).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        used += bytes.count
        packets += 1
    }

    /// The same for bytes in an array (lb gen).
    mutating func append(array: [UInt8], timestampNanos: UInt64) throws(SysError) {
        let need = Pcap.recordHeaderSize + array.count
        if used + need > capacity { try flush() }
        Pcap.writeRecordHeader(to: buffer + used, timestampNanos: timestampNanos, caplen: UInt32(array.count),
                               wirelen: UInt32(array.count), nanosecond: nanosecond)
        used += Pcap.recordHeaderSize
        let dst = buffer + used
        array.withUnsafeBytes { src in if src.count > 0 { dst.copyMemory(from: src.baseAddress!, byteCount: src.count) } }
        used += array.count
        packets += 1
    }

    mutating func flush() throws(SysError) {
        guard used > 0 else { return }
        try Sys.writeAll(fd, UnsafeRawBufferPointer(start: buffer, count: used))
        used = 0
    }
}
