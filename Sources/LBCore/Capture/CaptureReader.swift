/// Why a capture file could not be opened.
public enum CaptureError: Error, Equatable, Sendable {
    /// The data ends inside the file header (classic pcap) or the first Section Header Block (pcapng).
    case tooShort
    /// Neither a pcap nor a pcapng magic; the first four bytes, read big-endian (as a hex dump shows them).
    case badMagic(UInt32)
    /// A classic pcap major version other than 2, or a pcapng section major version other than 1.
    case unsupportedVersion(major: UInt16, minor: UInt16)
    /// The first pcapng Section Header Block is malformed (e.g. an unknown byte-order magic).
    case badHeader(String)
}

/// One packet of a capture file. `data` points into the buffer the reader was given.
public struct CapturedPacket {
    public var data: UnsafeRawBufferPointer
    /// nanoseconds since the Unix epoch (0 for a pcapng Simple Packet Block, which has none)
    public var timestampNanos: UInt64
    /// length on the wire (>= data.count)
    public var wireLength: Int
    /// LINKTYPE_* of the packet's interface, as in the file
    public var linkType: UInt32
    /// pcapng interface index within its section (0 for classic pcap)
    public var interface: Int
}

/// Reads classic pcap (both byte orders, micro- and nanosecond) and pcapng from bytes in memory.
///
/// Every field is length-checked before it is read. Malformed input never makes the reader
/// crash, read outside the buffer or loop: `next()` returns nil and `stoppedEarly` says why.
/// `next()` allocates nothing; a pcapng file may declare at most `maxInterfaces` interfaces
/// per section.
public struct CaptureReader {
    /// The most interfaces one pcapng section may declare.
    public static let maxInterfaces = 256
    /// The largest per-packet capture length accepted (256 MiB, above libpcap's largest snaplen for any link type).
    public static let maxCaplen = 256 << 20

    var bytes: UnsafeRawBufferPointer
    var offset: Int
    /// Position in the file of `bytes[0]` (nonzero when the caller feeds a window of a file).
    var base = 0
    /// Whether `bytes` ends where the data ends. A caller that feeds a window of a longer file
    /// sets it false: a record that runs past the window is then waited for (`needsMore`),
    /// not reported as truncated.
    public var atEnd = true
    /// After `next()` returned nil with `atEnd` false: bytes from `offset` that the next record
    /// needs in the window (0 otherwise).
    public private(set) var needsMore = 0
    let pcapng: Bool
    /// Byte order of the file (classic pcap) or of the current section (pcapng).
    var bigEndian: Bool
    /// Classic pcap: nanosecond timestamps, link type, snaplen, how incl_len and orig_len are stored.
    var nanosecond = false
    var pcapLinkType: UInt32 = 0
    var pcapSnaplen: UInt32 = 0
    var lengths = LengthOrder.normal
    /// pcapng: the interfaces of the current section.
    var interfaces: [PcapngInterface] = []
    var stopReason: String?
    var finished = false
    /// Reading ended (at the end of the data or at a damaged record).
    public var isFinished: Bool { finished }

    /// Bytes of the file not read when the reader stopped early (0 otherwise): from the record
    /// it could not use to the end.
    public var unreadBytes: Int { stopReason == nil ? 0 : max(0, bytes.count - offset) }

    /// Position in the file of the next record (where an early stop stopped).
    public var position: Int { base + offset }

    /// Bytes of the current window already used (everything before the next record).
    public var consumed: Int { offset }

    /// Continues in `window`, which holds the file from `position` on (the caller has moved the
    /// unused rest of the old window to its start and read more behind it).
    public mutating func slide(to window: UnsafeRawBufferPointer, atEnd: Bool) {
        base += offset
        offset = 0
        bytes = window
        self.atEnd = atEnd
        needsMore = 0
    }

    /// Opens the capture in `bytes`, which must stay valid while the reader and its packets are used.
    /// Throws if the file header (classic pcap) or first Section Header Block (pcapng) is unusable.
    public init(_ bytes: UnsafeRawBufferPointer) throws(CaptureError) {
        self.bytes = bytes
        guard bytes.count >= 4 else { throw .tooShort }
        let magic = bytes.be32(0)
        if magic == Pcapng.shbType {
            pcapng = true
            bigEndian = false
            offset = 0
            interfaces.reserveCapacity(8)
            try openPcapng()
            return
        }
        pcapng = false
        offset = Pcap.fileHeaderSize
        switch magic {
        case 0xD4C3_B2A1: bigEndian = false; nanosecond = false
        case 0x4D3C_B2A1: bigEndian = false; nanosecond = true
        case 0xA1B2_C3D4: bigEndian = true; nanosecond = false
        case 0xA1B2_3C4D: bigEndian = true; nanosecond = true
        default: throw .badMagic(magic)
        }
        try openPcap()
    }

    /// The next packet, or nil at the end of the data or at the first malformed record.
    public mutating func next() -> CapturedPacket? {
        if finished { return nil }
        needsMore = 0
        return pcapng ? nextPcapng() : nextPcap()
    }

    /// Why reading stopped before the end of the data (nil after a clean end).
    public var stoppedEarly: String? { stopReason }

    /// True for pcapng, false for classic pcap.
    public var isPcapng: Bool { pcapng }

    /// The snapshot length: the file header's for classic pcap (as written, even if absurd; the
    /// reader never trusts it); for pcapng, that of interface 0 of the current section (0 means
    /// no limit), or nil before its Interface Description Block has been read.
    public var snaplen: UInt32? {
        if !pcapng { return pcapSnaplen }
        return interfaces.first?.snaplen
    }

    /// The data ends inside the record at `offset`, which needs `need` bytes: a truncation at
    /// the end of the data, or a wait for more in a window.
    mutating func short(_ reason: String?, need: Int) -> CapturedPacket? {
        if !atEnd {
            needsMore = need
            return nil
        }
        return stop(reason)
    }

    /// Ends reading; `reason` nil means a clean end of the data.
    mutating func stop(_ reason: String?) -> CapturedPacket? {
        finished = true
        stopReason = reason
        return nil
    }

    /// A slice of the input as a packet's data (the caller has checked the range).
    @inline(__always)
    func slice(_ start: Int, _ count: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[start..<start + count])
    }

    @inline(__always)
    func u16(_ at: Int) -> UInt16 { bigEndian ? bytes.be16(at) : bytes.le16(at) }

    @inline(__always)
    func u32(_ at: Int) -> UInt32 { bigEndian ? bytes.be32(at) : bytes.le32(at) }

    @inline(__always)
    func u64(_ at: Int) -> UInt64 {
        bigEndian ? UInt64(u32(at)) << 32 | UInt64(u32(at + 4)) : UInt64(u32(at + 4)) << 32 | UInt64(u32(at))
    }
}

/// How a classic pcap record stores its two lengths (files older than version 2.3 swapped them).
enum LengthOrder {
    case normal, swapped, maybeSwapped
}
