// STUB: API fixed, implementation pending (see the brief in the commit that replaces this).

/// Why a capture file could not be opened.
public enum CaptureError: Error, Equatable, Sendable {
    case tooShort
    case badMagic(UInt32)
    case unsupportedVersion(major: UInt16, minor: UInt16)
    case badHeader(String)
}

/// One packet of a capture file. `data` points into the buffer the reader was given.
public struct CapturedPacket {
    public var data: UnsafeRawBufferPointer
    /// nanoseconds since the Unix epoch
    public var timestampNanos: UInt64
    /// length on the wire (>= data.count)
    public var wireLength: Int
    /// LINKTYPE_* of the packet's interface, as in the file
    public var linkType: UInt32
    /// pcapng interface index (0 for classic pcap)
    public var interface: Int
}

/// Reads classic pcap (both byte orders, micro- and nanosecond) and pcapng from bytes in memory.
public struct CaptureReader {
    public init(_ bytes: UnsafeRawBufferPointer) throws(CaptureError) { fatalError("stub") }
    /// The next packet, or nil at the end of the data or at the first malformed record.
    public mutating func next() -> CapturedPacket? { fatalError("stub") }
    /// Why reading stopped before the end of the data (nil after a clean end).
    public var stoppedEarly: String? { nil }
    public var isPcapng: Bool { false }
}
