import CLBRing
import LBCore
import LBRing
import LBSys

extension Dispatcher {
    /// Writes one packet into one ring of every group. `bytes` is the frame `d` was decoded
    /// from; what is delivered is `d`'s range, behind a synthesized Ethernet header if `d`
    /// asks for one, truncated to the slot size.
    @inline(__always)
    mutating func deliver(_ bytes: UnsafeRawBufferPointer, _ d: Decoded, hash: UInt64, ts: UInt64, wire: Int,
                          extraFlags: UInt32, input: UInt32) {
        var flags = extraFlags
        if d.depth > 0 { flags |= keep ? LB_F_KEPT_ENCAP | LB_F_TUNNEL_INFO : LB_F_DECAPSULATED | LB_F_TUNNEL_INFO }
        if d.synthType != 0 { flags |= LB_F_SYNTH_ETHERNET }
        if d.error != .none { flags |= LB_F_PARSE_ERROR }
        if d.isFragment { flags |= LB_F_FRAGMENT }
        if d.hasVLAN { flags |= LB_F_VLAN }
        if d.nonIP { flags |= LB_F_NON_IP }
        let prefix = d.synthType != 0 ? 14 : 0
        var caplen = d.end - d.start + prefix
        if caplen > maxCaplen {
            caplen = maxCaplen
            flags |= LB_F_TRUNCATED
            counters.add(.truncated)
        }
        let tunnel = d.depth > 0 ? 64 : 0
        for g in 0..<groupCount {
            let ring = tables[g].ring(for: hash)
            write(ring: ring, bytes, d, hash: hash, ts: ts, wire: wire, flags: flags, prefix: prefix,
                  caplen: caplen, tunnel: tunnel, input: input)
        }
    }

    @inline(__always)
    mutating func write(ring: Int, _ bytes: UnsafeRawBufferPointer, _ d: Decoded, hash: UInt64, ts: UInt64, wire: Int,
                        flags: UInt32, prefix: Int, caplen: Int, tunnel: Int, input: UInt32) {
        guard shared.isAttached(ring) else {
            counters.add(ring: ring, .droppedNoConsumer)
            return
        }
        var slot = producers[ring].reserve(bytes: tunnel + caplen)
        if slot == nil {
            slot = waitForRoom(ring: ring, bytes: tunnel + caplen)
            if slot == nil { return }
        }
        let (desc, offset) = slot!
        let record = producers[ring].bytes(at: offset)
        if tunnel != 0 { writeTunnelInfo(record, d) }
        let packet = record + tunnel
        if prefix != 0 { EthernetHeader.write(to: packet, frame: bytes, decoded: d) }
        let body = caplen - prefix
        if body > 0 { (packet + prefix).copyMemory(from: bytes.baseAddress! + d.start, byteCount: body) }
        var l3: UInt16 = 0xFFFF
        if let o = d.deliveredL3, o < caplen { l3 = UInt16(o) }
        desc.pointee = lb_desc(ts_ns: ts, data_off: offset &+ UInt64(tunnel), caplen: UInt32(caplen),
                               wirelen: UInt32(clamping: max(wire, caplen)), flow_hash: hash, flags: flags, l3_off: l3,
                               encap: d.encap.rawValue, depth: d.depth, vni: d.vni, vlan: d.vlan,
                               tunnel_len: UInt16(tunnel), input: input, reserved: (0, 0, 0))
        producers[ring].commit()
        counters.add(ring: ring, .forwarded)
        counters.add(ring: ring, .forwardedBytes, UInt64(caplen))
    }

    /// The ring is full. A live source drops; a capture replay waits for the consumer, unless
    /// it is gone or has made no progress for the stall timeout.
    @inline(never)
    mutating func waitForRoom(ring: Int, bytes: Int) -> (desc: UnsafeMutablePointer<lb_desc>, offset: UInt64)? {
        guard backpressure, !shared.isStalled(ring) else {
            counters.add(ring: ring, shared.isStalled(ring) ? .droppedStalled : .droppedFull)
            return nil
        }
        publishAll()                     // the consumer must see everything before we wait on it
        var lastTail = producers[ring].consumedIndex
        var since = Sys.monoNanos()
        while true {
            if shared.stopRequested {
                counters.add(ring: ring, .droppedFull)
                return nil
            }
            if !shared.isAttached(ring) {
                counters.add(ring: ring, .droppedNoConsumer)
                return nil
            }
            producers[ring].waitForSpace(timeoutNanos: 1_000_000)
            if let slot = producers[ring].reserve(bytes: bytes) { return slot }
            let now = Sys.monoNanos()
            let tail = producers[ring].consumedIndex
            if tail != lastTail {
                lastTail = tail
                since = now
            } else if now &- since > stallTimeout {
                shared.stalled[ring].store(1, ordering: .relaxed)
                counters.add(ring: ring, .droppedStalled)
                return nil
            }
        }
    }

    @inline(__always)
    func writeTunnelInfo(_ p: UnsafeMutableRawPointer, _ d: Decoded) {
        let o = d.outer
        p.initializeMemory(as: UInt64.self, repeating: 0, count: 8)
        p.storeBytes(of: o.isIPv6 ? 6 : 4, toByteOffset: 0, as: UInt8.self)
        p.storeBytes(of: o.proto, toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: d.encap.rawValue, toByteOffset: 2, as: UInt8.self)
        p.storeBytes(of: o.sport, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: o.dport, toByteOffset: 6, as: UInt16.self)
        if o.isIPv6 {
            p.storeBytes(of: o.srcHi.bigEndian, toByteOffset: 8, as: UInt64.self)
            p.storeBytes(of: o.srcLo.bigEndian, toByteOffset: 16, as: UInt64.self)
            p.storeBytes(of: o.dstHi.bigEndian, toByteOffset: 24, as: UInt64.self)
            p.storeBytes(of: o.dstLo.bigEndian, toByteOffset: 32, as: UInt64.self)
        } else {
            p.storeBytes(of: UInt32(truncatingIfNeeded: o.srcLo).bigEndian, toByteOffset: 8, as: UInt32.self)
            p.storeBytes(of: UInt32(truncatingIfNeeded: o.dstLo).bigEndian, toByteOffset: 24, as: UInt32.self)
        }
        p.storeBytes(of: d.vni, toByteOffset: 40, as: UInt32.self)
    }
}
