import Glibc
import LBCore
import LBRing
import LBSys

/// Classic pcap written straight from the ring: each packet is a record header (kept here) and
/// its bytes where lb put them, handed to writev(2) together, so `lb cat` copies no packet
/// itself (writing to a pipe, the kernel's copy is the only one; to /dev/null, there is none).
/// The packets must stay unreleased until `flush` has returned.
struct PcapVectors: ~Copyable {
    let fd: Int32
    let nanosecond: Bool
    /// packets per writev: two segments each, within IOV_MAX
    static let capacity = 512
    let headers: UnsafeMutableRawPointer
    let segments: UnsafeMutablePointer<iovec>
    var used = 0
    var packets: UInt64 = 0

    init(fd: Int32, nanosecond: Bool) {
        self.fd = fd
        self.nanosecond = nanosecond
        headers = .allocate(byteCount: Self.capacity * Pcap.recordHeaderSize, alignment: 16)
        segments = .allocate(capacity: 2 * Self.capacity)
    }

    deinit {
        headers.deallocate()
        segments.deallocate()
    }

    func header(snaplen: UInt32) throws(SysError) {
        let h = UnsafeMutableRawPointer.allocate(byteCount: Pcap.fileHeaderSize, alignment: 8)
        defer { h.deallocate() }
        Pcap.writeFileHeader(to: h, linkType: 1, snaplen: snaplen, nanosecond: nanosecond)
        try Sys.writeAll(fd, UnsafeRawBufferPointer(start: h, count: Pcap.fileHeaderSize))
    }

    /// Whether another packet fits before a `flush`.
    var full: Bool { used == Self.capacity }

    /// Adds one packet (the caller flushes when `full`).
    mutating func add(_ p: RingPacket) {
        let h = headers + used * Pcap.recordHeaderSize
        let caplen = p.bytes.count
        Pcap.writeRecordHeader(to: h, timestampNanos: p.descriptor.ts_ns, caplen: UInt32(caplen),
                               wirelen: UInt32(clamping: max(Int(p.descriptor.wirelen), caplen)), nanosecond: nanosecond)
        segments[2 * used] = iovec(iov_base: h, iov_len: Pcap.recordHeaderSize)
        segments[2 * used + 1] = iovec(iov_base: UnsafeMutableRawPointer(mutating: p.bytes.baseAddress), iov_len: caplen)
        used += 1
        packets += 1
    }

    /// Writes what was added.
    mutating func flush() throws(SysError) {
        guard used > 0 else { return }
        let n = 2 * used
        used = 0
        try Sys.writeAll(fd, segments, count: n)
    }
}
