/// The outer flow of the outermost tunnel that was removed (for the worker's tunnel_parents).
@frozen
public struct TunnelEndpoints: Equatable, Sendable {
    public var srcHi: UInt64 = 0, srcLo: UInt64 = 0, dstHi: UInt64 = 0, dstLo: UInt64 = 0
    public var sport: UInt16 = 0, dport: UInt16 = 0
    public var proto: UInt8 = 0
    public var isIPv6 = false
    @inlinable public init() {}
}

/// An IP fragment found while decoding: the dispatcher's fragment table decides where it goes.
@frozen
public struct FragmentInfo: Equatable, Sendable {
    /// IP identification (IPv4: 16 bits, IPv6: 32 bits)
    public var id: UInt32 = 0
    /// byte offset of this fragment's payload within the datagram
    public var offset: Int = 0
    /// more fragments follow
    public var more = false
    /// the upper-layer protocol of the datagram
    public var proto: UInt8 = 0
    public var isIPv6 = false
    /// where the fragment's payload starts and ends, as offsets into the frame
    public var payloadStart: Int = 0
    public var payloadEnd: Int = 0
    /// the first fragment carries a header of a tunnel that lb removes; its datagram must be
    /// reassembled before it can be decapsulated
    public var tunnel = false
    @inlinable public init() {}
}

/// What the decoder found in one frame: the flow to hash, the bytes to deliver and the
/// metadata that goes with them. A plain value: no allocation, no references into the frame
/// beyond offsets.
@frozen
public struct Decoded: Equatable, Sendable {
    /// the innermost flow that could be read
    public var key = FlowKey()
    /// the bytes to deliver are frame[start..<end], preceded by a synthesized 14-byte Ethernet
    /// header when `synthType != 0`
    public var start = 0
    public var end = 0
    /// EtherType of the synthesized Ethernet header (0: none, the delivered bytes start with one)
    public var synthType: UInt16 = 0
    /// offsets in the frame of 6-byte MAC addresses for the synthesized header (-1: zeros)
    public var synthDst = -1
    public var synthSrc = -1
    /// offset of the innermost IP header in the frame (-1: none)
    public var l3 = -1
    /// tunnels removed, and what they were
    public var depth: UInt8 = 0
    public var encap: EncapKind = .none
    /// bit (1 << EncapKind.rawValue) for every tunnel seen, for the per-encapsulation counters
    public var encapMask: UInt32 = 0
    public var vni: UInt32 = 0
    public var vlan: UInt16 = 0
    public var hasVLAN = false
    /// meaningful only when `depth > 0`
    public var outer = TunnelEndpoints()
    public var error: ParseError = .none
    /// set when the innermost IP header is a fragment
    public var isFragment = false
    /// meaningful only when `isFragment`
    public var fragment = FragmentInfo()
    /// no IP layer was found
    public var nonIP = false
    /// index of the next 802.11 A-MSDU subframe in this frame, 0 if there is none
    public var nextSubframe = 0

    @inlinable public init() {}

    /// Bytes the delivered packet has (before any truncation to the slot size).
    @inlinable
    public var deliveredLength: Int { end - start + (synthType != 0 ? 14 : 0) }

    /// Wire length of the delivered packet: what was cut from the frame's end by the capture
    /// still counts when the delivered bytes run to the end of the frame.
    @inlinable
    public func deliveredWireLength(frameCount: Int, wireLength: Int) -> Int {
        end == frameCount ? deliveredLength + max(0, wireLength - frameCount) : deliveredLength
    }

    /// Offset of the innermost IP header within the delivered packet, or nil.
    @inlinable
    public var deliveredL3: Int? {
        guard l3 >= start else { return nil }
        return l3 - start + (synthType != 0 ? 14 : 0)
    }
}
