import CLBRing
import LBCore
import LBRing
import LBSys

extension Dispatcher {
    /// Writes one packet into one ring of every group. `bytes` is the frame `d` was decoded
    /// from; what is delivered is `d`'s range, behind a synthesized Ethernet header if `d`
    /// asks for one, truncated to the slot size.
    @inline(__always)
    mutating func deliver(_ bytes: UnsafeRawBufferPointer, _ dp: UnsafePointer<Decoded>, hash: UInt64, ts: UInt64, wire: Int,
                          extraFlags: UInt32, input: UInt32) {
        var flags = extraFlags
        let depth = dp.pointee.depth, synth = dp.pointee.synthType, start = dp.pointee.start
        if depth > 0 { flags |= keep ? LB_F_KEPT_ENCAP | LB_F_TUNNEL_INFO : LB_F_DECAPSULATED | LB_F_TUNNEL_INFO }
        if synth != 0 { flags |= LB_F_SYNTH_ETHERNET }
        if dp.pointee.error != .none { flags |= LB_F_PARSE_ERROR }
        if dp.pointee.isFragment { flags |= LB_F_FRAGMENT }
        if dp.pointee.hasVLAN { flags |= LB_F_VLAN }
        if dp.pointee.nonIP { flags |= LB_F_NON_IP }
        let prefix = synth != 0 ? 14 : 0
        var caplen = dp.pointee.end &- start &+ prefix
        if caplen > maxCaplen {
            caplen = maxCaplen
            flags |= LB_F_TRUNCATED
            counters.add(.truncated)
        }
        var l3: UInt16 = 0xFFFF
        let l3At = dp.pointee.l3
        if l3At >= start {
            let o = l3At &- start &+ prefix
            if o < caplen { l3 = UInt16(truncatingIfNeeded: o) }
        }
        let skip = shuntActive ? shuntMask(dp.pointer(to: \.key)!, extra: hashExtra(vni: dp.pointee.vni, vlan: dp.pointee.vlan, tagged: dp.pointee.hasVLAN),
                                           frame: bytes, l3: l3At, bytes: max(wire, caplen), hash: hash) : 0
        if skip != 0 && skip == allGroups { return }
        let packet = Packet(bytes: bytes.baseAddress.map { $0 + start }, prefix: prefix, caplen: caplen,
                            wire: UInt32(clamping: max(wire, caplen)), tunnel: depth > 0 ? 64 : 0, ts: ts, hash: hash,
                            flags: flags, l3: l3, encap: dp.pointee.encap.rawValue, depth: depth, vni: dp.pointee.vni,
                            vlan: dp.pointee.vlan, input: input, synthType: synth, synthDst: dp.pointee.synthDst,
                            synthSrc: dp.pointee.synthSrc)
        if policyActive {
            deliverPolicy(packet, bytes, dp, outer: dp.pointer(to: \.outer)!, skip: skip)
            return
        }
        deliverPacket(packet, bytes, outer: dp.pointer(to: \.outer)!, skip: skip)
    }

    /// What is delivered of a frame the fast path classified (into `note.frame`), decided
    /// before any ring is chosen: its descriptor (in `note`, all but `data_off`) and its
    /// counts. No `Decoded` is written or read.
    @inline(__always)
    func describeFast(_ fp: UnsafePointer<Frame>, _ ffp: UnsafePointer<FastFrame>, hash: UInt64,
                      into note: UnsafeMutablePointer<FastNote>) {
        let frame = fp.pointee.bytes
        let tagged = ffp.pointee.tagged, vxlan = ffp.pointee.vxlan, start = ffp.pointee.start, end = ffp.pointee.end
        var flags: UInt32 = tagged ? LB_F_VLAN : 0
        if vxlan {
            flags |= keep ? LB_F_KEPT_ENCAP | LB_F_TUNNEL_INFO : LB_F_DECAPSULATED | LB_F_TUNNEL_INFO
            counters.add(encap: .vxlan)
        }
        var caplen = end &- start
        let count = frame.count
        // never less than caplen, which truncation only lowers
        let wire = end == count ? caplen &+ max(0, fp.pointee.wireLength &- count) : caplen
        if caplen > maxCaplen {
            caplen = maxCaplen
            flags |= LB_F_TRUNCATED
            counters.add(.truncated)
        }
        let o = ffp.pointee.l3 &- start
        let l3: UInt16 = o < caplen ? UInt16(truncatingIfNeeded: o) : 0xFFFF
        note.pointee.desc = lb_desc(ts: fp.pointee.timestampNanos, caplen: caplen,
                                    wirelen: UInt32(truncatingIfNeeded: min(wire, Int(UInt32.max))), hash: hash, flags: flags,
                                    l3: l3, encap: vxlan ? EncapKind.vxlan.rawValue : 0, depth: vxlan ? 1 : 0, vni: ffp.pointee.vni,
                                    vlan: ffp.pointee.vlan, tunnelLength: vxlan ? 64 : 0, input: fp.pointee.input)
        note.pointee.bytes = frame.baseAddress.unsafelyUnwrapped + start   // classify took at least 42 bytes
    }

    /// Writes a frame the fast path described into one ring of every group. One group (the
    /// common case) takes a path without the loop, which kept more values alive than there
    /// are registers.
    @inline(always)
    mutating func deliverFast(_ note: UnsafePointer<FastNote>, _ src: UnsafeRawPointer) {
        let desc = note.pointer(to: \.desc)!
        let hash = desc.pointee.flow_hash
        if policyActive {
            deliverFastPolicy(note, src)
            return
        }
        if shuntActive {
            deliverFastShunting(note, src)
            return
        }
        if groupCount == 1 {
            writeFast(ring: tables[0].ring(for: hash), note, src)
        } else {
            for g in 0..<groupCount { writeFast(ring: tables[g].ring(for: hash), note, src) }
        }
    }

    @inline(always)
    mutating func writeFast(ring: Int, _ note: UnsafePointer<FastNote>, _ src: UnsafeRawPointer) {
        writeFast(ring: ring, desc: note.pointer(to: \.desc)!, outer: note.pointer(to: \.frame.outer)!, src)
    }

    /// Writes a frame the fast path described (`desc`, all but `data_off`) into `ring`.
    @inline(always)
    mutating func writeFast(ring: Int, desc: UnsafePointer<lb_desc>, outer: UnsafePointer<TunnelEndpoints>, _ src: UnsafeRawPointer) {
        let caplen = Int(truncatingIfNeeded: desc.pointee.caplen), tunnel = Int(truncatingIfNeeded: desc.pointee.tunnel_len)
        guard isAttached(ring) else {
            drop(ring: ring, .droppedNoConsumer)
            return
        }
        guard let record = producers[ring].reserveRecord(bytes: tunnel &+ caplen) ?? waitForRoom(ring: ring, bytes: tunnel &+ caplen)
        else { return }
        if tunnel != 0 { record.writeTunnelInfo(outer, encap: desc.pointee.encap, vni: desc.pointee.vni) }
        record.writePacket(from: src, count: caplen, at: tunnel)
        record.describe(copying: desc)
        producers[ring].commit()
        countForwarded(ring: ring, bytes: caplen)
    }

    /// Whether ring `ring` has a consumer (SharedState.isAttached, without going through the
    /// shared state object each time).
    @inline(__always)
    func isAttached(_ ring: Int) -> Bool { attached[ring].load(ordering: .relaxed) != 0 }

    /// Counts a packet written into `ring` (Counters.add(ring:), through a pointer held here).
    @inline(__always)
    func countForwarded(ring: Int, bytes: Int) {
        let c = ringCounters + ring &* Counters.ringStride
        let f = c + Counters.R.forwarded.rawValue, b = c + Counters.R.forwardedBytes.rawValue
        f.pointee.store(f.pointee.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
        b.pointee.store(b.pointee.load(ordering: .relaxed) &+ UInt64(truncatingIfNeeded: bytes), ordering: .relaxed)
    }

    /// Writes the packet into one ring of every group.
    @inline(always)
    mutating func deliverPacket(_ packet: Packet, _ frame: UnsafeRawBufferPointer, outer: UnsafePointer<TunnelEndpoints>, skip: UInt64) {
        for g in 0..<groupCount where skip & (1 << UInt64(g & 63)) == 0 {
            write(ring: tables[g].ring(for: packet.hash), packet, frame, outer: outer)
        }
    }

    /// What the fast path decided for one frame of a batch (`handleBatch`'s first pass).
    struct FastNote {
        /// the descriptor, all but `data_off`
        var desc = lb_desc()
        /// the first byte to deliver; nil: the frame goes the general way
        var bytes: UnsafeRawPointer? = nil
        /// what the fast path found (written by `Decoder.classify(_:into:)`)
        var frame = FastFrame()
        /// groups (bit g) that shunt it; shunted in all of them: not delivered at all
        var skip: UInt64 = 0
        var shunted = false
    }

    /// What goes into every group's ring, computed once per packet.
    struct Packet {
        let bytes: UnsafeRawPointer?
        let prefix: Int
        let caplen: Int
        let wire: UInt32
        let tunnel: Int
        let ts: UInt64
        let hash: UInt64
        let flags: UInt32
        let l3: UInt16
        let encap: UInt8
        let depth: UInt8
        let vni: UInt32
        let vlan: UInt16
        let input: UInt32
        /// the synthesized Ethernet header (when prefix is 14): EtherType, MAC offsets in the frame
        let synthType: UInt16
        let synthDst: Int
        let synthSrc: Int
    }

    /// Writes the packet into `ring`, its first `limit` bytes at most (a group's slice, at
    /// least 14).
    @inline(always)
    mutating func write(ring: Int, _ p: Packet, _ frame: UnsafeRawBufferPointer, outer: UnsafePointer<TunnelEndpoints>,
                        limit: Int = .max) {
        guard isAttached(ring) else {
            drop(ring: ring, .droppedNoConsumer)
            return
        }
        var caplen = p.caplen, flags = p.flags, l3 = p.l3
        if limit < caplen {
            caplen = limit
            flags |= LB_F_SLICED
            if Int(l3) >= caplen { l3 = 0xFFFF }
            counters.add(ring: ring, .sliced)
        }
        var slot = producers[ring].reserveRecord(bytes: p.tunnel &+ caplen)
        if slot == nil {
            slot = waitForRoom(ring: ring, bytes: p.tunnel &+ caplen)
            if slot == nil { return }
        }
        let record = slot!
        if p.tunnel != 0 { record.writeTunnelInfo(outer, encap: p.encap, vni: p.vni) }
        if p.prefix != 0 {
            record.writeEthernetHeader(type: p.synthType, dst: p.synthDst, src: p.synthSrc, from: frame, tunnelLength: p.tunnel)
        }
        if let src = p.bytes { record.writePacket(from: src, count: caplen &- p.prefix, at: p.tunnel &+ p.prefix) }
        record.describe(ts: p.ts, caplen: caplen, wirelen: p.wire, hash: p.hash, flags: flags, l3: l3, encap: p.encap,
                        depth: p.depth, vni: p.vni, vlan: p.vlan, tunnelLength: p.tunnel, input: p.input)
        producers[ring].commit()
        countForwarded(ring: ring, bytes: caplen)
    }

    /// Counts a packet dropped for `ring`, in lb's stats and in the ring's lane header (where
    /// consumers read their own loss).
    @inline(__always)
    mutating func drop(ring: Int, _ reason: Counters.R) {
        counters.add(ring: ring, reason)
        producers[ring].countDrop()
    }

    /// The ring is full. A live source drops; a capture replay waits for the consumer, unless
    /// it is gone or has made no progress for the stall timeout.
    @inline(never)
    mutating func waitForRoom(ring: Int, bytes: Int) -> RecordWriter? {
        guard backpressure, !shared.isStalled(ring) else {
            drop(ring: ring, shared.isStalled(ring) ? .droppedStalled : .droppedFull)
            return nil
        }
        publishAll()                     // the consumer must see everything before we wait on it
        var lastTail = producers[ring].consumedIndex
        var since = Sys.monoNanos()
        while true {
            if shared.stopRequested {
                drop(ring: ring, .droppedFull)
                return nil
            }
            if !shared.isAttached(ring) {
                drop(ring: ring, .droppedNoConsumer)
                return nil
            }
            producers[ring].waitForSpace(timeoutNanos: 1_000_000)
            if let slot = producers[ring].reserveRecord(bytes: bytes) { return slot }
            let now = Sys.monoNanos()
            let tail = producers[ring].consumedIndex
            if tail != lastTail {
                lastTail = tail
                since = now
            } else if now &- since > stallTimeout {
                shared.stalled[ring].store(1, ordering: .relaxed)
                drop(ring: ring, .droppedStalled)
                return nil
            }
        }
    }
}
