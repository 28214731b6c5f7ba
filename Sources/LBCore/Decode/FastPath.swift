// The common cases, decoded without the general walk: an Ethernet frame with at most one
// 802.1Q tag, then IPv4 without options or fragmentation, or IPv6 without extension headers,
// then TCP, UDP or SCTP on ports that carry no tunnel — either directly, or inside one VXLAN
// tunnel (cloud traffic mirroring). Most packets of most sensors look like one of these.
//
// It must give exactly what the walk gives for the same frame; anything it is not sure of, it
// leaves to the walk (returns false). FastPathTests compares the two on every corpus packet and
// on mutated and random frames.

extension Decoded {
    /// Sets every field the fast path decides, without writing the whole value: `outer` and
    /// `fragment` keep what they had (they mean something only when `depth > 0` and
    /// `isFragment`, which this clears).
    @inlinable @inline(__always)
    mutating func setCommon(key k: FlowKey, start s: Int, end e: Int, l3 l: Int, vlan v: UInt16, tagged: Bool) {
        key = k
        start = s
        end = e
        synthType = 0
        synthDst = -1
        synthSrc = -1
        l3 = l
        depth = 0
        encap = .none
        encapMask = 0
        vni = 0
        vlan = v
        hasVLAN = tagged
        error = .none
        isFragment = false
        nonIP = false
        nextSubframe = 0
    }
}

/// What the fast path found in a frame: the flow, what to deliver, and (for VXLAN) the tunnel.
/// A small value the dispatcher can use without writing a whole `Decoded`.
@frozen
public struct FastFrame {
    public var key = FlowKey()
    /// deliver frame[start..<end] (an Ethernet frame: no header is synthesized)
    public var start = 0
    public var end = 0
    /// offset of the innermost IP header in the frame
    public var l3 = 0
    public var vlan: UInt16 = 0
    public var tagged = false
    /// one VXLAN tunnel was removed (or kept, with --decap keep): `vni` and `outer` describe it
    public var vxlan = false
    public var vni: UInt32 = 0
    public var outer = TunnelEndpoints()
    @inlinable public init() {}
}

extension Decoder {
    /// Decodes `f` (an Ethernet frame) into `r` if it has one of the common shapes; false
    /// otherwise, and then `r` is untouched.
    @_spi(Testing)
    public func fastDecode(_ f: UnsafeRawBufferPointer, into r: UnsafeMutablePointer<Decoded>) -> Bool {
        fast(f, into: r)
    }

    /// The fast path's result as a `Decoded` (what the walk would give).
    @inlinable @inline(__always)
    func fast(_ f: UnsafeRawBufferPointer, into r: UnsafeMutablePointer<Decoded>) -> Bool {
        guard let ff = classify(f) else { return false }
        r.pointee.setCommon(key: ff.key, start: ff.start, end: ff.end, l3: ff.l3, vlan: ff.vlan, tagged: ff.tagged)
        if ff.vxlan {
            r.pointee.depth = 1
            r.pointee.encap = .vxlan
            r.pointee.encapMask = 1 << UInt32(EncapKind.vxlan.rawValue)
            r.pointee.vni = ff.vni
            r.pointee.outer = ff.outer
        }
        return true
    }

    /// The fast path: the frame (Ethernet) if it has one of the common shapes, else nil (then
    /// `decode` must be used).
    @inlinable @inline(__always)
    public func classify(_ f: UnsafeRawBufferPointer) -> FastFrame? {
        var ff = FastFrame()
        return classify(f, into: &ff) ? ff : nil
    }

    /// The same, written into `r` field by field as it is found (the data path's way: what is
    /// found goes to memory at once instead of staying alive in registers, and is read back
    /// where it is used). False: not one of the common shapes, and `r` holds nothing useful.
    @inlinable @inline(__always)
    public func classify(_ f: UnsafeRawBufferPointer, into r: UnsafeMutablePointer<FastFrame>) -> Bool {
        let count = f.count
        guard let outer = fastIP(f, at: 0, end: count, outer: true, into: r) else { return false }
        r.pointee.start = 0
        r.pointee.end = count
        r.pointee.vxlan = false
        r.pointee.vni = 0
        if r.pointee.key.proto == 17 {
            let kind = params.ports.kind(r.pointee.key.sport, r.pointee.key.dport)
            if kind == .vxlan { return classifyVXLAN(f, l4: outer.l4, end: outer.end, isIPv6: outer.isIPv6, into: r) }
            if kind != .none || mayBeTeredo(f, l4: outer.l4, end: outer.end) { return false }
        }
        return true
    }

    /// VXLAN around the common shape (untagged inner frame, no tunnel inside); `r` holds the
    /// outer headers' flow, and the UDP header is at `l4`.
    @inlinable @inline(always)
    func classifyVXLAN(_ f: UnsafeRawBufferPointer, l4: Int, end: Int, isIPv6: Bool, into r: UnsafeMutablePointer<FastFrame>) -> Bool {
        let len = Int(f.be16(l4 &+ 4))
        let payloadEnd = len >= 8 && l4 &+ len < end ? l4 &+ len : end
        let p = l4 &+ 8
        guard params.config.maxDepth >= 1, payloadEnd &- p >= 8, f.u8(p) & 0x08 != 0 else { return false }
        r.pointee.outer.srcHi = r.pointee.key.srcHi
        r.pointee.outer.srcLo = r.pointee.key.srcLo
        r.pointee.outer.dstHi = r.pointee.key.dstHi
        r.pointee.outer.dstLo = r.pointee.key.dstLo
        r.pointee.outer.isIPv6 = isIPv6
        r.pointee.outer.proto = 17
        r.pointee.outer.sport = r.pointee.key.sport
        r.pointee.outer.dport = r.pointee.key.dport
        let innerStart = p &+ 8
        guard let inner = fastIP(f, at: innerStart, end: payloadEnd, outer: false, into: r) else { return false }
        if r.pointee.key.proto == 17
            && (params.ports.kind(r.pointee.key.sport, r.pointee.key.dport) != .none || mayBeTeredo(f, l4: inner.l4, end: inner.end)) {
            return false
        }
        if !params.config.keepEncapsulation {
            r.pointee.start = innerStart
            r.pointee.end = payloadEnd
        }
        r.pointee.vxlan = true
        r.pointee.vni = f.be32(p &+ 4) >> 8
        return true
    }

    /// What the walk would try as Teredo on any port: leave it to the walk.
    @inlinable @inline(__always)
    func mayBeTeredo(_ f: UnsafeRawBufferPointer, l4: Int, end: Int) -> Bool {
        params.config.teredoAnyPort && end &- l4 >= 48 && f.u8(l4 &+ 8) >> 4 == 6
    }

    /// Ethernet (for the outer frame: one optional 802.1Q tag, which sets `vlan` and
    /// `tagged`), IPv4 without options or fragmentation or IPv6 without extension headers,
    /// then TCP, UDP or SCTP with its ports, into `r.key` and `r.l3`; nil for anything else.
    /// Returns where the transport header starts, where the IP packet ends (its length, or
    /// the end of the bytes) and the IP version.
    @inlinable @inline(__always)
    func fastIP(_ f: UnsafeRawBufferPointer, at start: Int, end frameEnd: Int, outer: Bool,
                into r: UnsafeMutablePointer<FastFrame>) -> (l4: Int, end: Int, isIPv6: Bool)? {
        guard frameEnd &- start >= 14 + 20 + 8 else { return nil }
        var off = start &+ 14
        var type = f.be16(start &+ 12)
        if outer {
            if type == 0x8100 {
                r.pointee.vlan = f.be16(off) & 0x0FFF
                r.pointee.tagged = true
                type = f.be16(off &+ 2)
                off &+= 4
            } else {
                r.pointee.vlan = 0
                r.pointee.tagged = false
            }
        }
        var end = frameEnd
        let l4: Int
        let proto: UInt8
        let isIPv6: Bool
        if type == 0x0800 {
            guard frameEnd &- off >= 20 + 8, f.u8(off) == 0x45 else { return nil }
            let total = Int(f.be16(off &+ 2))
            // not a fragment (MF or offset), and a length that covers the header and ports
            guard total >= 28, f.be16(off &+ 6) & 0x3FFF == 0 else { return nil }
            if off &+ total < frameEnd { end = off &+ total }
            proto = f.u8(off &+ 9)
            r.pointee.key.srcHi = 0
            r.pointee.key.srcLo = FlowKey.v4Mapped(f.be32(off &+ 12))
            r.pointee.key.dstHi = 0
            r.pointee.key.dstLo = FlowKey.v4Mapped(f.be32(off &+ 16))
            l4 = off &+ 20
            isIPv6 = false
        } else if type == 0x86DD {
            guard frameEnd &- off >= 40 + 8, f.u8(off) >> 4 == 6 else { return nil }
            let plen = Int(f.be16(off &+ 4))
            guard plen >= 8 else { return nil }
            if off &+ 40 &+ plen < frameEnd { end = off &+ 40 &+ plen }
            proto = f.u8(off &+ 6)
            r.pointee.key.srcHi = f.be64(off &+ 8); r.pointee.key.srcLo = f.be64(off &+ 16)
            r.pointee.key.dstHi = f.be64(off &+ 24); r.pointee.key.dstLo = f.be64(off &+ 32)
            l4 = off &+ 40
            isIPv6 = true
        } else {
            return nil
        }
        guard end &- l4 >= 8 else { return nil }
        switch proto {
        case 6, 17: break
        default: return nil
        }
        r.pointee.l3 = off
        r.pointee.key.proto = proto
        r.pointee.key.sport = f.be16(l4)
        r.pointee.key.dport = f.be16(l4 &+ 2)
        r.pointee.key.kind = .ports
        return (l4, end, isIPv6)
    }
}
