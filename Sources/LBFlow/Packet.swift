// The parts of one IP packet that connection tracking needs, read once with bounds checks.
//
// Input is a packet from a ring (an Ethernet frame, `l3` the offset of its innermost IP
// header) or any buffer with an IP header at `l3`. Nothing here allocates.

/// An IPv4 or IPv6 address; IPv4 is stored IPv4-mapped (::ffff:a.b.c.d), as Zeek does.
public struct IPAddr: Hashable, Comparable, Sendable {
    public var hi: UInt64
    public var lo: UInt64
    public init(hi: UInt64, lo: UInt64) { self.hi = hi; self.lo = lo }
    public init(v4: UInt32) { hi = 0; lo = 0xFFFF_0000_0000 | UInt64(v4) }
    public var isV4: Bool { hi == 0 && lo >> 32 == 0xFFFF }
    public var v4: UInt32 { UInt32(truncatingIfNeeded: lo) }
    public static func < (a: IPAddr, b: IPAddr) -> Bool { (a.hi, a.lo) < (b.hi, b.lo) }
    /// 255.255.255.255 (Zeek never flips a connection to a broadcast address)
    public var isBroadcast: Bool { isV4 && v4 == 0xFFFF_FFFF }
    /// 224.0.0.0/4 or ff00::/8 (IPAddr::IsMulticast)
    public var isMulticast: Bool { isV4 ? v4 >> 28 == 0xE : hi >> 56 == 0xFF }
}

/// Why a packet was not tracked (each has a counter in `FlowStats`).
public enum PacketProblem: UInt8, Sendable {
    case none, notIP, truncatedIP, badIPHeader, badIPChecksum, fragment, otherProtocol, truncatedTransport, badTCPHeader
}

/// One parsed packet.
public struct FlowPacket {
    public var ts: UInt64 = 0               // ns since the epoch
    public var src = IPAddr(hi: 0, lo: 0)
    public var dst = IPAddr(hi: 0, lo: 0)
    public var isV6 = false
    public var proto: UInt8 = 0             // 6, 17, 1, 58
    /// IP total length (IPv6: payload length + 40): what Zeek counts in *_ip_bytes
    public var ipLength = 0
    /// transport bytes per the IP header (header + payload), and how many of them were captured
    public var l4Length = 0
    public var l4Captured = 0
    public var l4Offset = 0
    public var sport: UInt16 = 0
    public var dport: UInt16 = 0
    // TCP
    public var seq: UInt32 = 0
    public var ack: UInt32 = 0
    public var flags: UInt8 = 0
    public var window: UInt16 = 0
    public var windowScale: Int = -1        // from a SYN's options, -1 if none
    public var payloadLength = 0            // TCP/UDP/ICMP payload per the headers
    public var payloadCaptured = 0
    // UDP
    public var udpLength = 0                // the UDP header's length field
    /// the UDP payload's bytes 0 and 2 (NTP's mode, DNS's QR bit), and how many were captured
    public var appByte0: UInt8 = 0, appByte2: UInt8 = 0
    // ICMP
    public var icmpType: UInt8 = 0
    public var icmpCode: UInt8 = 0
    /// the TCP header's length field is bad or the header is cut short: Zeek creates the
    /// connection from the first 20 bytes but analyses nothing more
    public var tcpHeaderUsable = true
    // a fragment (parse returned .fragment): its datagram and its place in it
    public var fragID: UInt32 = 0
    public var fragOffset = 0            // bytes into the datagram's payload
    public var fragMore = false
    public var fragHeaderLen = 0         // IPv4: the header's length (copied from the first fragment)
    public var fragDataOffset = 0        // where this fragment's payload starts in the buffer
    public var fragDataLen = 0           // payload bytes per the header (all must be captured)
    /// transport checksum verified (or not checked: ignoring checksums, or not all captured)
    public var checksumOK = true

    public init() {}
}

public enum TCPFlag {
    public static let fin: UInt8 = 0x01
    public static let syn: UInt8 = 0x02
    public static let rst: UInt8 = 0x04
    public static let psh: UInt8 = 0x08
    public static let ack: UInt8 = 0x10
    public static let urg: UInt8 = 0x20
}

@inline(__always) func be16(_ b: UnsafeRawBufferPointer, _ o: Int) -> UInt16 {
    UInt16(bigEndian: b.loadUnaligned(fromByteOffset: o, as: UInt16.self))
}
@inline(__always) func be32(_ b: UnsafeRawBufferPointer, _ o: Int) -> UInt32 {
    UInt32(bigEndian: b.loadUnaligned(fromByteOffset: o, as: UInt32.self))
}
@inline(__always) func be64(_ b: UnsafeRawBufferPointer, _ o: Int) -> UInt64 {
    UInt64(bigEndian: b.loadUnaligned(fromByteOffset: o, as: UInt64.self))
}

/// Ones-complement sum of `count` bytes at `offset` (not folded, not inverted).
@inline(__always)
func onesSum(_ b: UnsafeRawBufferPointer, _ offset: Int, _ count: Int, _ start: UInt64 = 0) -> UInt64 {
    var sum = start
    var i = offset
    let end = offset + count
    while end - i >= 8 {
        let w = be64(b, i)
        sum &+= (w >> 32) &+ (w & 0xFFFF_FFFF)
        i += 8
    }
    while end - i >= 2 { sum &+= UInt64(be16(b, i)); i += 2 }
    if i < end { sum &+= UInt64(b[i]) << 8 }
    return sum
}

@inline(__always)
func fold(_ s: UInt64) -> UInt16 {
    var sum = s
    while sum >> 16 != 0 { sum = (sum & 0xFFFF) &+ (sum >> 16) }
    return UInt16(sum)
}

public enum PacketParser {
    /// Parses the IP packet at `l3` of `bytes` (`wireLength`: the length of the whole frame on
    /// the wire). Returns `.none` and fills `p` when the packet is trackable.
    /// `cutToSlot`: the missing bytes were cut by lb's slot size, not by the capture: the
    /// payload counts as captured (it is reassembled, as Zeek does with the whole packet) and
    /// its checksum, which cannot be verified, as good.
    public static func parse(_ bytes: UnsafeRawBufferPointer, l3: Int, wireLength: Int, ts: UInt64,
                             ignoreChecksums: Bool, cutToSlot: Bool = false, into p: inout FlowPacket) -> PacketProblem {
        p.ts = ts
        p.windowScale = -1
        p.checksumOK = true
        p.tcpHeaderUsable = true
        guard l3 >= 0, l3 < bytes.count else { return .notIP }
        let cap = bytes.count - l3
        let wire = max(wireLength, bytes.count) - l3
        let version = bytes[l3] >> 4
        var l4: Int
        var l4Len: Int
        var pseudo: UInt64 = 0
        if version == 4 {
            guard cap >= 20 else { return .truncatedIP }
            let ihl = Int(bytes[l3] & 0x0F) * 4
            guard ihl >= 20 else { return .badIPHeader }
            guard cap >= ihl else { return .truncatedIP }
            var total = Int(be16(bytes, l3 + 2))
            if total == 0 {
                // segmentation offload zeroes it (Zeek's ip_hdr_len_zero): Zeek drops the packet
                // unless checksums are ignored, then takes the captured length
                guard ignoreChecksums else { return .badIPHeader }
                total = cutToSlot ? wire : cap
            }
            guard total >= ihl else { return .badIPHeader }
            guard wire >= total else { return .truncatedIP }
            if !ignoreChecksums && fold(onesSum(bytes, l3, ihl)) != 0xFFFF { return .badIPChecksum }
            let frag = be16(bytes, l3 + 6)
            p.isV6 = false
            p.proto = bytes[l3 + 9]
            p.src = IPAddr(v4: be32(bytes, l3 + 12))
            p.dst = IPAddr(v4: be32(bytes, l3 + 16))
            // the conn-size analyzer adds the header's total length (IP_Hdr::TotalLen), 0 for a
            // segmentation-offloaded packet, though the analysis uses the captured length
            p.ipLength = Int(be16(bytes, l3 + 2))
            if frag & 0x3FFF != 0 {
                p.fragID = UInt32(be16(bytes, l3 + 4))
                p.fragOffset = Int(frag & 0x1FFF) * 8
                p.fragMore = frag & 0x2000 != 0
                p.fragHeaderLen = ihl
                p.fragDataOffset = l3 + ihl
                p.fragDataLen = total - ihl
                return p.fragDataOffset + p.fragDataLen <= bytes.count ? .fragment : .truncatedIP
            }
            l4 = l3 + ihl
            l4Len = total - ihl
            pseudo = UInt64(be16(bytes, l3 + 12)) &+ UInt64(be16(bytes, l3 + 14))
                &+ UInt64(be16(bytes, l3 + 16)) &+ UInt64(be16(bytes, l3 + 18))
        } else if version == 6 {
            guard cap >= 40 else { return .truncatedIP }
            let plen = Int(be16(bytes, l3 + 4))
            let total = plen + 40
            guard wire >= total else { return .truncatedIP }
            p.isV6 = true
            p.src = IPAddr(hi: be64(bytes, l3 + 8), lo: be64(bytes, l3 + 16))
            p.dst = IPAddr(hi: be64(bytes, l3 + 24), lo: be64(bytes, l3 + 32))
            p.ipLength = total
            var next = bytes[l3 + 6]
            var off = l3 + 40
            // extension headers: hop-by-hop, routing, destination options, fragment, AH (Zeek's
            // IP_Hdr walks them; its chain stops at ESP and the mobility header)
            var guardCount = 0
            while next == 0 || next == 43 || next == 60 || next == 44 || next == 51 {
                guardCount += 1
                guard guardCount < 16, l3 + cap - off >= 8, off + 8 <= l3 + total else { return .truncatedIP }
                if next == 44 {
                    let fo = be16(bytes, off + 2)
                    if fo & 0xFFF9 != 0 {                    // atomic fragments pass
                        p.proto = bytes[off]
                        p.fragID = be32(bytes, off + 4)
                        p.fragOffset = Int(fo & 0xFFF8)
                        p.fragMore = fo & 1 != 0
                        p.fragHeaderLen = 40
                        p.fragDataOffset = off + 8
                        p.fragDataLen = l3 + total - (off + 8)
                        guard p.fragDataLen >= 0 else { return .badIPHeader }
                        return p.fragDataOffset + p.fragDataLen <= bytes.count ? .fragment : .truncatedIP
                    }
                }
                let len = next == 51 ? (Int(bytes[off + 1]) + 2) * 4 : (Int(bytes[off + 1]) + 1) * 8
                next = bytes[off]
                off += len
            }
            guard off <= l3 + total else { return .badIPHeader }
            p.proto = next
            l4 = off
            l4Len = l3 + total - off
            for k in stride(from: 8, to: 40, by: 2) { pseudo &+= UInt64(be16(bytes, l3 + k)) }
        } else {
            return .notIP
        }
        p.l4Offset = l4
        p.l4Length = l4Len
        p.l4Captured = cutToSlot ? l4Len : min(l4Len, bytes.count - l4)
        // the headers must be in the bytes at hand; the payload may be cut by lb's slot size
        let captured = min(l4Len, bytes.count - l4)
        let allCaptured = captured >= l4Len
        let proto = p.proto
        if proto == 6 {
            guard l4Len >= 20, captured >= 20 else { return .truncatedTransport }
            let hl = Int(bytes[l4 + 12] >> 4) * 4
            p.sport = be16(bytes, l4)
            p.dport = be16(bytes, l4 + 2)
            p.seq = be32(bytes, l4 + 4)
            p.ack = be32(bytes, l4 + 8)
            p.flags = bytes[l4 + 13]
            p.window = be16(bytes, l4 + 14)
            p.tcpHeaderUsable = hl >= 20 && hl <= l4Len && hl <= captured
            guard p.tcpHeaderUsable else { return .none }
            p.payloadLength = l4Len - hl
            p.payloadCaptured = p.l4Captured - hl
            if p.flags & TCPFlag.syn != 0 { p.windowScale = windowScale(bytes, l4 + 20, l4 + hl) }
            if !ignoreChecksums && allCaptured {
                let s = onesSum(bytes, l4, l4Len, pseudo &+ 6 &+ UInt64(l4Len))
                p.checksumOK = fold(s) == 0xFFFF
            }
        } else if proto == 17 {
            guard l4Len >= 8, captured >= 8 else { return .truncatedTransport }
            p.sport = be16(bytes, l4)
            p.dport = be16(bytes, l4 + 2)
            p.udpLength = Int(be16(bytes, l4 + 4))
            p.payloadLength = l4Len - 8
            p.payloadCaptured = p.l4Captured - 8
            p.appByte0 = captured >= 9 ? bytes[l4 + 8] : 0
            p.appByte2 = captured >= 11 ? bytes[l4 + 10] : 0
            let sum = be16(bytes, l4 + 6)
            if !ignoreChecksums && allCaptured && (sum != 0 || p.isV6) {
                let s = onesSum(bytes, l4, l4Len, pseudo &+ 17 &+ UInt64(l4Len))
                p.checksumOK = fold(s) == 0xFFFF
            }
        } else if proto == 1 || proto == 58 {
            guard l4Len >= 8, captured >= 8 else { return .truncatedTransport }
            p.icmpType = bytes[l4]
            p.icmpCode = bytes[l4 + 1]
            p.payloadLength = l4Len - 8
            p.payloadCaptured = p.l4Captured - 8
            if !ignoreChecksums && allCaptured {
                let start: UInt64 = proto == 58 ? pseudo &+ 58 &+ UInt64(l4Len) : 0
                p.checksumOK = fold(onesSum(bytes, l4, l4Len, start)) == 0xFFFF
            }
        } else if proto == 2 || proto == 4 || proto == 41 || proto == 47 || proto == 59 || proto == 50 || proto == 135 {
            // IGMP has a packet analyzer of its own in Zeek (base/packet-protocols/igmp), IP-in-IP
            // and GRE go to its tunnel analyzers (lb removes them), Zeek's IP analyzer stops at ESP
            // and the mobility header, and IPv6's No Next Header is a weird: none of them makes a
            // connection
            return .otherProtocol
        } else {
            // any other protocol: a connection of its own (Zeek's Unknown_IP_Transport)
            p.sport = 0
            p.dport = 0
            p.payloadLength = l4Len
            p.payloadCaptured = p.l4Captured
        }
        return .none
    }

    /// The window scale option of a SYN, or -1.
    static func windowScale(_ b: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Int {
        var o = start
        while o < end {
            let kind = b[o]
            if kind == 0 { break }
            if kind == 1 { o += 1; continue }
            guard o + 1 < end else { break }
            let len = Int(b[o + 1])
            guard len > 0, o + len <= end else { break }
            if kind == 3 && len >= 3 { return Int(b[o + 2]) }
            o += len
        }
        return -1
    }
}
