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

/// An IP header and the transport ports after it, as the fast path found them.
@usableFromInline
struct FastIP {
    @usableFromInline var key = FlowKey()
    @usableFromInline var l3 = 0
    @usableFromInline var l4 = 0
    /// where the IP packet ends (its length, or the end of the bytes)
    @usableFromInline var end = 0
    @usableFromInline var vlan: UInt16 = 0
    @usableFromInline var tagged = false
    @usableFromInline var isIPv6 = false
    @inlinable init() {}
    @inlinable var sport: UInt16 { key.sport }
    @inlinable var dport: UInt16 { key.dport }
}

/// What the fast path found in a frame: the flow, what to deliver, and (for VXLAN) the tunnel.
/// A small value the dispatcher can use without writing a whole `Decoded`.
@frozen
public struct FastFrame {
    public var key: FlowKey
    /// deliver frame[start..<end] (an Ethernet frame: no header is synthesized)
    public var start: Int
    public var end: Int
    /// offset of the innermost IP header in the frame
    public var l3: Int
    public var vlan: UInt16
    public var tagged: Bool
    /// one VXLAN tunnel was removed (or kept, with --decap keep): `vni` and `outer` describe it
    public var vxlan: Bool
    public var vni: UInt32
    public var outer: TunnelEndpoints

    @inlinable
    init(_ ip: FastIP, start: Int, end: Int) {
        key = ip.key
        self.start = start
        self.end = end
        l3 = ip.l3
        vlan = ip.vlan
        tagged = ip.tagged
        vxlan = false
        vni = 0
        outer = TunnelEndpoints()
    }
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
        guard let outer = fastIP(f, at: 0, end: f.count, allowTag: true) else { return nil }
        if outer.key.proto == 17 {
            let kind = params.ports.kind(outer.sport, outer.dport)
            if kind == .vxlan { return classifyVXLAN(f, outer) }
            if kind != .none || mayBeTeredo(f, outer) { return nil }
        }
        return FastFrame(outer, start: 0, end: f.count)
    }

    /// VXLAN around the common shape (untagged inner frame, no tunnel inside).
    @inlinable @inline(__always)
    func classifyVXLAN(_ f: UnsafeRawBufferPointer, _ outer: FastIP) -> FastFrame? {
        let len = Int(f.be16(outer.l4 &+ 4))
        let payloadEnd = len >= 8 && outer.l4 &+ len < outer.end ? outer.l4 &+ len : outer.end
        let p = outer.l4 &+ 8
        guard params.config.maxDepth >= 1, payloadEnd &- p >= 8, f.u8(p) & 0x08 != 0 else { return nil }
        let innerStart = p &+ 8
        guard let inner = fastIP(f, at: innerStart, end: payloadEnd, allowTag: false) else { return nil }
        if inner.key.proto == 17 && (params.ports.kind(inner.sport, inner.dport) != .none || mayBeTeredo(f, inner)) {
            return nil
        }
        let keep = params.config.keepEncapsulation
        var ff = FastFrame(inner, start: keep ? 0 : innerStart, end: keep ? f.count : payloadEnd)
        ff.vlan = outer.vlan
        ff.tagged = outer.tagged
        ff.vxlan = true
        ff.vni = f.be32(p &+ 4) >> 8
        ff.outer.srcHi = outer.key.srcHi
        ff.outer.srcLo = outer.key.srcLo
        ff.outer.dstHi = outer.key.dstHi
        ff.outer.dstLo = outer.key.dstLo
        ff.outer.isIPv6 = outer.isIPv6
        ff.outer.proto = 17
        ff.outer.sport = outer.sport
        ff.outer.dport = outer.dport
        return ff
    }

    /// What the walk would try as Teredo on any port: leave it to the walk.
    @inlinable @inline(__always)
    func mayBeTeredo(_ f: UnsafeRawBufferPointer, _ ip: FastIP) -> Bool {
        params.config.teredoAnyPort && ip.end &- ip.l4 >= 48 && f.u8(ip.l4 &+ 8) >> 4 == 6
    }

    /// Ethernet (one optional 802.1Q tag), IPv4 without options or fragmentation or IPv6
    /// without extension headers, then TCP, UDP or SCTP with its ports; nil for anything else.
    @inlinable @inline(__always)
    func fastIP(_ f: UnsafeRawBufferPointer, at start: Int, end frameEnd: Int, allowTag: Bool) -> FastIP? {
        guard frameEnd &- start >= 14 + 20 + 8 else { return nil }
        var ip = FastIP()
        var off = start &+ 14
        var type = f.be16(start &+ 12)
        if type == 0x8100 && allowTag {
            ip.vlan = f.be16(off) & 0x0FFF
            ip.tagged = true
            type = f.be16(off &+ 2)
            off &+= 4
        }
        ip.l3 = off
        ip.end = frameEnd
        if type == 0x0800 {
            guard frameEnd &- off >= 20 + 8, f.u8(off) == 0x45 else { return nil }
            let total = Int(f.be16(off &+ 2))
            // not a fragment (MF or offset), and a length that covers the header and ports
            guard total >= 28, f.be16(off &+ 6) & 0x3FFF == 0 else { return nil }
            if off &+ total < frameEnd { ip.end = off &+ total }
            ip.key.proto = f.u8(off &+ 9)
            ip.key.srcLo = FlowKey.v4Mapped(f.be32(off &+ 12))
            ip.key.dstLo = FlowKey.v4Mapped(f.be32(off &+ 16))
            ip.l4 = off &+ 20
        } else if type == 0x86DD {
            guard frameEnd &- off >= 40 + 8, f.u8(off) >> 4 == 6 else { return nil }
            let plen = Int(f.be16(off &+ 4))
            guard plen >= 8 else { return nil }
            if off &+ 40 &+ plen < frameEnd { ip.end = off &+ 40 &+ plen }
            ip.key.proto = f.u8(off &+ 6)
            ip.key.srcHi = f.be64(off &+ 8); ip.key.srcLo = f.be64(off &+ 16)
            ip.key.dstHi = f.be64(off &+ 24); ip.key.dstLo = f.be64(off &+ 32)
            ip.l4 = off &+ 40
            ip.isIPv6 = true
        } else {
            return nil
        }
        guard ip.end &- ip.l4 >= 8 else { return nil }
        switch ip.key.proto {
        case 6, 17, 132: break
        default: return nil
        }
        ip.key.sport = f.be16(ip.l4)
        ip.key.dport = f.be16(ip.l4 &+ 2)
        ip.key.kind = .ports
        return ip
    }
}
