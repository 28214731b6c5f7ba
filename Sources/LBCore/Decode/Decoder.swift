import Synchronization

/// The UDP ports that carry tunnels: two 64-bit masks and a pointer, a plain value that costs
/// nothing to copy.
///
/// The masks (one bit per value of a port's low 6 bits, and of its next 6 bits) reject almost
/// every other port in a few instructions, with no memory access. A port that passes both is
/// looked up in the entry list, which is interned: one immutable allocation per distinct list
/// of ports for the life of the process, shared by every decoder that uses that list (a
/// process sees a handful of configurations, so this is bounded).
@frozen
public struct TunnelPortTable: @unchecked Sendable {   // the entries are immutable once interned
    public static let capacity = 32
    @usableFromInline let low: UInt64
    @usableFromInline let high: UInt64
    /// `count` of them
    @usableFromInline let entries: UnsafePointer<TunnelPort>
    public let count: Int

    public init(_ list: [TunnelPort]) {
        precondition(list.count <= Self.capacity, "at most \(Self.capacity) tunnel ports (the caller validates)")
        var lo: UInt64 = 0, hi: UInt64 = 0
        for t in list {
            lo |= 1 << UInt64(t.port & 63)
            hi |= 1 << UInt64((t.port >> 6) & 63)
        }
        low = lo
        high = hi
        count = list.count
        entries = TunnelPortTable.intern(list)
    }

    /// One immutable copy of each distinct entry list, never freed.
    static let interned = Mutex<[[TunnelPort]: UnsafePointer<TunnelPort>]>([:])

    static func intern(_ entries: [TunnelPort]) -> UnsafePointer<TunnelPort> {
        interned.withLock { table in
            if let p = table[entries] { return p }
            let p = UnsafeMutablePointer<TunnelPort>.allocate(capacity: max(1, entries.count))
            p.initialize(from: entries, count: entries.count)
            table[entries] = UnsafePointer(p)
            return UnsafePointer(p)
        }
    }

    public var list: [TunnelPort] { Array(UnsafeBufferPointer(start: entries, count: count)) }

    @inlinable @inline(__always)
    func mayMatch(_ port: UInt16) -> Bool {
        (low >> UInt64(port & 63)) & (high >> UInt64((port >> 6) & 63)) & 1 != 0
    }

    /// The tunnel on a UDP port pair (destination port first), or `.none`.
    @inlinable @inline(__always)
    func kind(_ sport: UInt16, _ dport: UInt16) -> EncapKind {
        if !mayMatch(dport) && !mayMatch(sport) { return .none }
        return TunnelPortTable.lookup(entries, count, sport, dport)
    }

    @usableFromInline @inline(never)
    static func lookup(_ e: UnsafePointer<TunnelPort>, _ n: Int, _ sport: UInt16, _ dport: UInt16) -> EncapKind {
        var i = 0
        while i < n {
            if e[i].port == dport { return e[i].kind }
            i &+= 1
        }
        i = 0
        while i < n {
            if e[i].port == sport { return e[i].kind }
            i &+= 1
        }
        return .none
    }
}

/// What a walk needs from the decoder: a plain value.
@usableFromInline
struct WalkConfig: Sendable {
    @usableFromInline let keepEncapsulation: Bool
    @usableFromInline let maxDepth: Int
    @usableFromInline let teredoAnyPort: Bool
}

@usableFromInline
struct WalkParams: Sendable {
    @usableFromInline let config: WalkConfig
    @usableFromInline let ports: TunnelPortTable

    @inline(__always)
    func udpTunnel(_ sport: UInt16, _ dport: UInt16) -> EncapKind { ports.kind(sport, dport) }
}

/// Decodes frames: finds the innermost flow, removes tunnels, and says what to deliver.
///
/// `decode` reads only inside the buffer it is given; every header is length-checked before
/// it is read, nesting is bounded by `maxDepth` and every loop by a fixed budget, so no input
/// can make it read out of bounds, allocate, or spin. A `Decoder` is a plain value (no
/// references), so the data path can copy or borrow it for free.
public struct Decoder: Sendable {
    @usableFromInline let params: WalkParams
    public let tuple: TupleMode
    public let hashVLAN: Bool
    public let hashVNI: Bool
    public let seeds: HashSeeds
    /// The tuple mode for keys with ports (all the fast path finds), as masks on the ports and
    /// the protocol, and `hashVNI` as a mask on the VNI: no branch on the mode per packet.
    @usableFromInline let portMask: UInt64
    @usableFromInline let protoMask: UInt64
    @usableFromInline let vniMask: UInt32

    public init(_ config: DecodeConfig = DecodeConfig()) {
        params = WalkParams(config: WalkConfig(keepEncapsulation: config.keepEncapsulation, maxDepth: config.maxDepth,
                                               teredoAnyPort: config.teredoAnyPort),
                            ports: TunnelPortTable(config.tunnelPorts))
        tuple = config.tuple
        hashVLAN = config.hashVLAN
        hashVNI = config.hashVNI
        seeds = config.seeds
        portMask = config.tuple == .five ? 0xFFFF : 0
        protoMask = config.tuple == .two ? 0 : 0xFF
        vniMask = config.hashVNI ? .max : 0
    }

    /// The configuration this decoder was made with.
    public var config: DecodeConfig {
        var c = DecodeConfig(tunnelPorts: params.ports.list, maxDepth: params.config.maxDepth,
                             keepEncapsulation: params.config.keepEncapsulation, tuple: tuple, hashVLAN: hashVLAN,
                             hashVNI: hashVNI, seeds: seeds)
        c.teredoAnyPort = params.config.teredoAnyPort
        return c
    }

    public var keepEncapsulation: Bool { params.config.keepEncapsulation }

    /// Decodes one frame of the given link type. `subframe` selects an 802.11 A-MSDU subframe
    /// (the result's `nextSubframe` says whether there is another one).
    public func decode(_ frame: UnsafeRawBufferPointer, link: LinkType, subframe: Int = 0) -> Decoded {
        var d = Decoded()
        withUnsafeMutablePointer(to: &d) { decode(frame, link: link, subframe: subframe, into: $0) }
        return d
    }

    /// Decodes into `result`, which must point to an initialized `Decoded`; it is overwritten.
    /// The data path decodes into one preallocated value this way, so nothing large is copied.
    @inlinable @inline(__always)
    public func decode(_ frame: UnsafeRawBufferPointer, link: LinkType, subframe: Int = 0, into result: UnsafeMutablePointer<Decoded>) {
        if link == .ethernet && fast(frame, into: result) { return }
        slow(frame, link: link, subframe: subframe, into: result)
    }

    /// The general walk, without the fast path (FastPathTests compares the two).
    @_spi(Testing)
    public func walk(_ frame: UnsafeRawBufferPointer, link: LinkType, subframe: Int = 0, into result: UnsafeMutablePointer<Decoded>) {
        slow(frame, link: link, subframe: subframe, into: result)
    }

    @usableFromInline @inline(never)
    func slow(_ frame: UnsafeRawBufferPointer, link: LinkType, subframe: Int, into result: UnsafeMutablePointer<Decoded>) {
        result.pointee = Decoded()
        var w = Walk(frame: frame, decoder: params, subframe: subframe, into: result)
        w.run(link: link)
    }

    /// Decodes a datagram rebuilt from IP fragments: `packet` starts with an IP header. The
    /// tunnels and VLAN of `context` (the decode of its first fragment) are carried over.
    public func decodeReassembled(_ packet: UnsafeRawBufferPointer, context: Decoded) -> Decoded {
        var result = Decoded()
        withUnsafeMutablePointer(to: &result) { rp in
            var w = Walk(frame: packet, decoder: params, subframe: 0, into: rp)
            w.d.depth = context.depth
            w.d.encap = context.encap
            w.d.encapMask = context.encapMask
            w.d.outer = context.outer
            w.d.vni = context.vni
            w.d.vlan = context.vlan
            w.d.hasVLAN = context.hasVLAN
            w.d.start = 0
            w.d.end = packet.count
            w.end = packet.count
            w.d.synthType = packet.count > 0 && packet.u8(0) >> 4 == 6 ? 0x86DD : 0x0800
            w.loop(.ip)
        }
        return result
    }

    /// The flow hash of a flow key under this decoder's tuple mode and seed, with the innermost
    /// VNI and the outermost VLAN mixed in when the options ask for them.
    @inlinable @inline(__always)
    public func flowHash(_ key: FlowKey, vni: UInt32, vlan: UInt16, tagged: Bool) -> UInt64 {
        var extra: UInt32 = 0
        if hashVNI { extra = vni }
        if hashVLAN && tagged { extra = extra &* 0x9E37_79B1 &+ UInt32(vlan) &+ 1 }
        return FlowHash.hash(key, mode: tuple, extra: extra, seeds: seeds)
    }

    /// The flow hash of a decoded packet.
    @inlinable @inline(__always)
    public func flowHash(_ d: Decoded) -> UInt64 { flowHash(d.key, vni: d.vni, vlan: d.vlan, tagged: d.hasVLAN) }

    /// The same for what the fast path found.
    @inlinable @inline(__always)
    public func flowHash(_ f: FastFrame) -> UInt64 { flowHash(f.key, vni: f.vni, vlan: f.vlan, tagged: f.tagged) }

    /// The same, for what the fast path wrote into memory: its keys always have ports, which
    /// lets the tuple mode be applied with masks (`FlowHash.hash(ports:...)`, equal to
    /// `flowHash(f.pointee)`).
    @inlinable @inline(__always)
    public func flowHash(_ f: UnsafePointer<FastFrame>) -> UInt64 {
        var extra = f.pointee.vni & vniMask
        if hashVLAN && f.pointee.tagged { extra = extra &* 0x9E37_79B1 &+ UInt32(f.pointee.vlan) &+ 1 }
        return FlowHash.hash(ports: f.pointee.key, portMask: portMask, protoMask: protoMask, extra: extra, seeds: seeds)
    }

    /// The same, for a value the data path decoded in place.
    @inlinable @inline(__always)
    public func flowHash(_ d: UnsafePointer<Decoded>) -> UInt64 {
        flowHash(d.pointee.key, vni: d.pointee.vni, vlan: d.pointee.vlan, tagged: d.pointee.hasVLAN)
    }
}

/// The next header the walk expects.
@usableFromInline
enum Next {
    case ethernet
    case etherType(UInt16)
    case ip          // by the version nibble
    case ipv4
    case ipv6
    case wifi
    case done
}

/// What an 802.2 LLC header holds.
@usableFromInline
enum SNAP {
    case etherType(UInt16, payload: Int)
    case other
    case truncated
}

/// One decode in progress: a cursor over the frame and the result being built.
@usableFromInline
struct Walk {
    let f: UnsafeRawBufferPointer
    let dec: WalkParams
    let subframe: Int
    let dp: UnsafeMutablePointer<Decoded>
    var d: Decoded {
        unsafeAddress { UnsafePointer(dp) }
        nonmutating unsafeMutableAddress { dp }
    }
    /// current header offset, and the end of the current layer (never beyond f.count)
    var off = 0
    var end: Int
    /// steps left; each loop turn uses one, so no frame can make the walk spin. Sized from
    /// `maxDepth` (see `stepsPerLevel`) so that only layers that add no tunnel level (MPLS
    /// pseudowires, which the depth does not count) can exhaust it: that stop is counted as
    /// `too_many_layers`, never silent.
    var budget: Int
    /// the most recent IP header's addresses (the outer flow when a tunnel starts)
    var ipSrcHi: UInt64 = 0, ipSrcLo: UInt64 = 0, ipDstHi: UInt64 = 0, ipDstLo: UInt64 = 0
    var ipIsV6 = false
    /// tags seen on the current Ethernet header
    var tags = 0
    /// where the current Ethernet header starts (its addresses, for an 802.3 frame's conversion)
    var ethAt = 0

    init(frame: UnsafeRawBufferPointer, decoder: WalkParams, subframe: Int, into result: UnsafeMutablePointer<Decoded>) {
        f = frame
        dp = result
        dec = decoder
        self.subframe = subframe
        end = frame.count
        budget = Walk.stepsPerLevel * (decoder.config.maxDepth + 2)
        d.end = frame.count
    }

    /// The most loop turns one tunnel level can take: an Ethernet header, 8 tags, an MPLS
    /// stack, PPPoE, an IP header and the tunnel header (each at most one turn) fit well inside.
    static let stepsPerLevel = 24

    mutating func run(link: LinkType) {
        switch link {
        case .ethernet: loop(.ethernet)
        case .raw, .ipv4, .ipv6:
            d.synthType = f.count > 0 && f.u8(0) >> 4 == 6 ? 0x86DD : 0x0800
            loop(.ip)
        case .null, .loop: loop(nullHeader())
        case .linuxSLL: loop(sll())
        case .linuxSLL2: loop(sll2())
        case .ieee80211: loop(.wifi)
        case .radiotap: loop(radiotap())
        case .ppp, .pppHDLC: loop(pppLink(hdlc: link == .pppHDLC))
        case .nflog: loop(nflog())
        case .fddi: loop(fddi())
        }
    }

    mutating func loop(_ first: Next) {
        var next = first
        while budget > 0 {
            budget -= 1
            switch next {
            case .ethernet: next = ethernet()
            case .etherType(let t): next = etherType(t)
            case .ip: next = ipByVersion()
            case .ipv4: next = ipv4()
            case .ipv6: next = ipv6()
            case .wifi: next = wifi()
            case .done: return
            }
        }
        if case .done = next { return }
        if d.error == .none { d.error = .tooManyLayers }
    }

    @inline(__always)
    mutating func fail(_ e: ParseError) -> Next {
        d.error = e
        return .done
    }

    // MARK: Ethernet and what rides directly on it

    mutating func ethernet() -> Next {
        guard end - off >= 14 else { return fail(.truncatedLink) }
        setLinkKey(dst: off, src: off + 6)
        tags = 0
        ethAt = off
        let t = f.be16(off + 12)
        if t == 0x8903 {            // Cisco FabricPath: a 16-byte header, then the Ethernet frame
            guard end - off >= 16 + 14 else { return fail(.truncatedLink) }
            off += 16
            deliverLayer2Payload(at: off)
            return .ethernet
        }
        off += 14
        return etherType(t)
    }

    mutating func etherType(_ t: UInt16) -> Next {
        switch t {
        case 0x0800: return .ipv4
        case 0x86DD: return .ipv6
        case 0x8100, 0x88A8, 0x9100, 0x9200:
            tags += 1
            guard tags <= 8 else { return fail(.tooManyTags) }
            guard end - off >= 4 else { return fail(.truncatedLink) }
            if !d.hasVLAN { d.vlan = f.be16(off) & 0x0FFF; d.hasVLAN = true }   // the outermost VLAN
            let inner = f.be16(off + 2)
            off += 4
            return .etherType(inner)
        case 0x8926:    // VN-Tag: 4 bytes of tag, then the EtherType
            tags += 1
            guard tags <= 8 else { return fail(.tooManyTags) }
            guard end - off >= 6 else { return fail(.truncatedLink) }
            let inner = f.be16(off + 4)
            off += 6
            return .etherType(inner)
        case 0x8847, 0x8848: return mpls()
        case 0x8864: return pppoe()
        case 0x88E7:    // 802.1ah PBB: a 4-byte I-TAG, then the customer's Ethernet frame
            guard end - off >= 4 + 14 else { return fail(.truncatedLink) }
            off += 4
            deliverLayer2Payload(at: off)
            return .ethernet
        case 0x0806, 0x8035: return arp()     // ARP, RARP
        default:
            if t <= 1500 { return llc(length: Int(t)) }
            d.nonIP = true                    // 1501-1535 are undefined, the rest unknown
            return .done
        }
    }

    /// PBB and FabricPath carry a whole customer Ethernet frame: that frame is delivered (the
    /// backbone's header removed, as a tunnel's would be), unless `--decap keep`.
    mutating func deliverLayer2Payload(at p: Int) {
        guard !dec.config.keepEncapsulation else { return }
        setDelivery(start: p, end: end, synth: 0)
    }

    /// An 802.3 length field: the frame's data ends there (what follows is padding), and is
    /// 802.2 LLC; SNAP with an EtherType continues, anything else (Novell raw 802.3 starts
    /// FF FF, other LLC SAPs) is a non-IP frame.
    mutating func llc(length: Int) -> Next {
        if end - off > length { end = off + length }
        switch snap(off) {
        case .etherType(let t, let payload):
            // delivered as Ethernet II with the SNAP EtherType (tags, if any, keep the frame as it is)
            if tags == 0 && !dec.config.keepEncapsulation { setDelivery(start: payload, end: end, synth: t, dst: ethAt, src: ethAt + 6) }
            off = payload
            return .etherType(t)
        case .truncated:
            d.nonIP = true
            return fail(.truncatedLink)
        case .other:
            d.nonIP = true
            return .done
        }
    }

    /// Reads 802.2 LLC at `p`: SNAP (DSAP and SSAP AA) with OUI 00-00-00 (RFC 1042) or
    /// 00-00-F8 (802.1H) carries an EtherType. The LLC header is 3 bytes, 4 when its control
    /// field is not an unnumbered PDU.
    func snap(_ p: Int) -> SNAP {
        guard end - p >= 2 else { return .truncated }
        guard f.u8(p) == 0xAA, f.u8(p + 1) == 0xAA else { return .other }
        guard end - p >= 3 else { return .truncated }
        let h = f.u8(p + 2) & 3 == 3 ? 3 : 4
        guard end - p >= h + 5 else { return .truncated }
        let oui = UInt32(f.u8(p + h)) << 16 | UInt32(f.be16(p + h + 1))
        let t = f.be16(p + h + 3)
        guard oui == 0 || oui == 0xF8, t >= 0x0600 else { return .other }
        return .etherType(t, payload: p + h + 5)
    }

    mutating func mpls() -> Next {
        var labels = 0
        while true {
            guard end - off >= 4 else { return fail(.truncatedLink) }
            let entry = f.be32(off)
            off += 4
            labels += 1
            if entry & 0x100 != 0 { break }          // bottom of stack
            guard labels < 16 else { return fail(.tooManyTags) }
        }
        guard end - off >= 1 else { return fail(.truncatedLink) }
        switch f.u8(off) >> 4 {
        case 4: return .ipv4
        case 6: return .ipv6
        case 0:                                      // pseudowire control word, then Ethernet
            off += 4
            return .ethernet
        default:
            d.nonIP = true
            return .done
        }
    }

    mutating func pppoe() -> Next {
        guard end - off >= 8 else { return fail(.truncatedLink) }
        let len = Int(f.be16(off + 4))
        let proto = f.be16(off + 6)
        let payloadEnd = off + 6 + len
        if payloadEnd < end && len >= 2 { end = payloadEnd }
        off += 8
        return ppp(proto)
    }

    /// A PPP protocol number: IPv4 and IPv6 continue, anything else is a non-IP frame.
    mutating func ppp(_ proto: UInt16) -> Next {
        switch proto {
        case 0x0021: return .ipv4
        case 0x0057: return .ipv6
        default:
            d.nonIP = true
            return .done
        }
    }

    mutating func arp() -> Next {
        // Ethernet/IPv4 ARP: hash on the two protocol addresses, so request and reply agree.
        guard end - off >= 28, f.be16(off) == 1, f.be16(off + 2) == 0x0800 else {
            d.nonIP = true
            return .done
        }
        var k = FlowKey()
        k.srcLo = FlowKey.v4Mapped(f.be32(off + 14))
        k.dstLo = FlowKey.v4Mapped(f.be32(off + 24))
        k.proto = 0
        k.kind = .addresses
        d.key = k
        d.nonIP = true
        return .done
    }

    /// Sets what is delivered: frame[start..<end], behind a synthesized Ethernet header of type
    /// `synth` (0: none) with MACs from the given offsets. With `--decap keep` only the
    /// outermost link layer is converted; tunnels stay.
    mutating func setDelivery(start: Int, end: Int? = nil, synth: UInt16, dst: Int = -1, src: Int = -1) {
        guard !dec.config.keepEncapsulation || d.depth == 0 else { return }
        d.start = start
        if let end { d.end = end }
        d.synthType = synth
        d.synthDst = dst
        d.synthSrc = src
    }

    mutating func setLinkKey(dst: Int, src: Int) {
        var k = FlowKey()
        k.srcHi = 1 << 63
        k.dstHi = 1 << 63
        k.srcLo = f.mac(src)
        k.dstLo = f.mac(dst)
        k.kind = .link
        d.key = k
    }

    // MARK: Tunnels

    /// Records that a tunnel of `kind` ends here and its payload is frame[innerStart..<innerEnd].
    /// Returns false (and marks the error) when the tunnel is nested too deep.
    mutating func enterTunnel(_ kind: EncapKind, innerStart: Int, innerEnd: Int, synth: UInt16,
                              outerProto: UInt8, sport: UInt16 = 0, dport: UInt16 = 0, id: UInt32? = nil) -> Bool {
        guard Int(d.depth) < dec.config.maxDepth else {
            d.error = .tunnelTooDeep
            return false
        }
        if d.depth == 0 {
            d.encap = kind
            d.outer.srcHi = ipSrcHi; d.outer.srcLo = ipSrcLo
            d.outer.dstHi = ipDstHi; d.outer.dstLo = ipDstLo
            d.outer.isIPv6 = ipIsV6
            d.outer.proto = outerProto
            d.outer.sport = sport
            d.outer.dport = dport
        }
        d.depth &+= 1
        d.encapMask |= 1 << UInt32(kind.rawValue)
        if let id { d.vni = id }
        if !dec.config.keepEncapsulation {
            d.start = innerStart
            d.end = innerEnd
            d.synthType = synth
            d.synthDst = -1
            d.synthSrc = -1
        }
        off = innerStart
        end = innerEnd
        return true
    }
}
