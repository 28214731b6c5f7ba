/// One received frame, pointing into memory its source owns until the next `receive`.
public struct Frame {
    public var bytes: UnsafeRawBufferPointer
    public var wireLength: Int
    public var timestampNanos: UInt64
    /// LINKTYPE_* value
    public var linkType: UInt32
    /// ingress index (RX queue, socket, file interface)
    public var input: UInt32

    public init(bytes: UnsafeRawBufferPointer, wireLength: Int, timestampNanos: UInt64, linkType: UInt32, input: UInt32) {
        self.bytes = bytes
        self.wireLength = wireLength
        self.timestampNanos = timestampNanos
        self.linkType = linkType
        self.input = input
    }
}

/// Where packets come from: a capture file now; AF_XDP, AF_PACKET and UDP sockets later.
/// The dispatcher is generic over it, so a source's `receive` is specialised into the loop.
public protocol PacketSource: ~Copyable {
    /// Fills up to `max` frames; returns how many. Frames stay valid until the next call.
    /// Returns 0 when nothing is available now (live) or at the end (`finished`).
    mutating func receive(into frames: UnsafeMutablePointer<Frame>, max: Int) -> Int
    /// No more frames will come.
    var finished: Bool { get }
    /// A live source never waits for a consumer: a full ring drops.
    var isLive: Bool { get }
    /// For the stats (`interface` of the aggregate line).
    var name: String { get }
    /// Why the input ended before its end, if it did (a damaged capture file).
    var stoppedEarly: String? { get }
    /// Bytes of the input not read because of that (a capture file; 0 otherwise).
    var unreadBytes: Int { get }
    /// After a stop request: like `receive`, but only what the kernel already holds for lb,
    /// without waiting or sleeping; 0 when that is all taken. A live source whose socket
    /// buffers packets returns them here, so that lb's final counts cover every packet its
    /// socket accepted before the stop.
    mutating func drain(into frames: UnsafeMutablePointer<Frame>, max: Int) -> Int
}

extension PacketSource where Self: ~Copyable {
    public var stoppedEarly: String? { nil }
    public var unreadBytes: Int { 0 }
    public mutating func drain(into frames: UnsafeMutablePointer<Frame>, max: Int) -> Int { 0 }
}
