import CLBRing
import LBCore
import LBRing

// Shunting on the data path: a packet whose flow a group's table holds (in the packet's
// direction) is not written into that group's ring, and counted for the ring it would have
// reached. With no entry in any table (`shuntActive` false) the only cost is that flag.
// Groups beyond the 64th cannot be shunted (the per-packet mask has 64 bits).

extension Dispatcher {
    /// Bits of every group that a mask can name.
    @inline(__always)
    var allGroups: UInt64 {
        groupCount >= 64 ? (groupCount == 64 ? .max : 0) : (1 << UInt64(groupCount)) &- 1
    }

    /// The value the hash mixes in besides the flow (`Decoder.flowHash`): the innermost VNI and
    /// the outermost VLAN when the options ask for them. Shunt entries are keyed the same way.
    @inline(__always)
    func hashExtra(vni: UInt32, vlan: UInt16, tagged: Bool) -> UInt32 {
        var extra: UInt32 = 0
        if hashVNI { extra = vni }
        if hashVLAN && tagged { extra = extra &* 0x9E37_79B1 &+ UInt32(vlan) &+ 1 }
        return extra
    }

    /// The groups (bit g) whose table shunts this packet (`hash`: its flow hash, the tables'
    /// index); counts it for each. Through the tables' pointer: the first pass over a batch
    /// calls it, and it changes nothing of the dispatcher itself (`mutating` only so that self
    /// is passed by reference: see Dispatcher.swift, "Calls on self").
    @inline(never)
    mutating func shuntMask(_ key: UnsafePointer<FlowKey>, extra: UInt32, frame: UnsafeRawBufferPointer, l3: Int, bytes: Int,
                   hash: UInt64) -> UInt64 {
        guard let t = shuntTables, key.pointee.kind == .ports || key.pointee.kind == .addresses else { return 0 }
        let now = lastTimestamp
        var mask: UInt64 = 0
        var control: Bool? = nil, ipBytes = 0
        for g in 0..<min(groupCount, 64) {
            guard let m = t[g].match(key.pointee, extra: extra, hash: hash, now: now), m.stops else { continue }
            if control == nil {
                control = Self.isTCPControl(frame, l3: l3, proto: key.pointee.proto)
                ipBytes = Self.ipLength(frame, l3: l3)
            }
            if control == true { return 0 }          // SYN, FIN, RST: always delivered
            t[g].count(m, ipBytes: ipBytes, now: now)
            mask |= 1 << UInt64(g)
            let ring = tables[g].ring(for: hash)
            counters.add(ring: ring, .shunted)
            counters.add(ring: ring, .shuntedBytes, UInt64(truncatingIfNeeded: bytes))
        }
        return mask
    }

    /// The first pass's shunt check for a fast-path frame.
    @inline(__always)
    mutating func shuntMaskFast(_ fp: UnsafePointer<Frame>, _ ff: UnsafePointer<FastFrame>, hash: UInt64) -> UInt64 {
        let frame = fp.pointee.bytes
        let wire = ff.pointee.end == frame.count ? ff.pointee.end &- ff.pointee.start &+ max(0, fp.pointee.wireLength &- frame.count)
                                                 : ff.pointee.end &- ff.pointee.start
        return shuntMask(ff.pointer(to: \.key)!, extra: hashExtra(vni: ff.pointee.vni, vlan: ff.pointee.vlan, tagged: ff.pointee.tagged),
                         frame: frame, l3: ff.pointee.l3, bytes: wire, hash: hash)
    }

    /// A fast-path frame while some table holds entries: the groups that do not shunt it
    /// (`note.skip`, found in the first pass) get it.
    @inline(never)
    mutating func deliverFastShunting(_ note: UnsafePointer<FastNote>, _ src: UnsafeRawPointer) {
        let desc = note.pointer(to: \.desc)!
        let skip = note.pointee.skip
        for g in 0..<groupCount where g >= 64 || skip & (1 << UInt64(g)) == 0 {
            writeFast(ring: tables[g].ring(for: desc.pointee.flow_hash), note, src)
        }
    }

    /// The IP packet's length from its header (what Zeek counts as IP bytes), 0 without one.
    static func ipLength(_ f: UnsafeRawBufferPointer, l3: Int) -> Int {
        guard l3 >= 0, f.count - l3 >= 20 else { return 0 }
        switch f[l3] >> 4 {
        case 4: return Int(f[l3 + 2]) << 8 | Int(f[l3 + 3])
        case 6: return f.count - l3 >= 40 ? 40 + (Int(f[l3 + 4]) << 8 | Int(f[l3 + 5])) : 0
        default: return 0
        }
    }

    /// A TCP segment with SYN, FIN or RST: always delivered, so the analyzer sees how a shunted
    /// connection ends. Read from the innermost IP header (IPv6: only without extension headers).
    static func isTCPControl(_ f: UnsafeRawBufferPointer, l3: Int, proto: UInt8) -> Bool {
        guard proto == 6, l3 >= 0, f.count - l3 >= 20 else { return false }
        let v = f[l3] >> 4
        var l4 = 0
        if v == 4 {
            l4 = l3 + Int(f[l3] & 0x0F) * 4
        } else if v == 6 && f.count - l3 >= 40 && f[l3 + 6] == 6 {
            l4 = l3 + 40
        } else {
            return false
        }
        guard f.count - l4 >= 14 else { return false }
        return f[l4 + 13] & 0x07 != 0          // FIN 0x01, SYN 0x02, RST 0x04
    }

    /// Applies the control thread's requests (between batches).
    @inline(never)
    mutating func applyShuntCommands(_ ch: ShuntChannel) {
        while let c = ch.nextCommand() {
            guard c.group >= 0 && c.group < min(groupCount, 64) else {
                _ = ch.reply(.init(kind: .notFound, group: c.group, token: c.token, entry: .none, reason: .removed, total: 0))
                continue
            }
            let t = tablesForShunting()
            switch c.op {
            case .add:
                let kind: ShuntChannel.ReplyKind
                switch t[c.group].add(c.rule, now: lastTimestamp) {
                case .added: kind = .added
                case .updated: kind = .updated
                case .full: kind = .full
                }
                _ = ch.reply(.init(kind: kind, group: c.group, token: c.token, entry: .none, reason: .removed, total: t[c.group].count))
            case .remove:
                if let e = t[c.group].remove(c.rule) {
                    _ = ch.reply(.init(kind: .removed, group: c.group, token: c.token, entry: e, reason: .removed, total: 0))
                } else {
                    _ = ch.reply(.init(kind: .notFound, group: c.group, token: c.token, entry: .none, reason: .removed, total: 0))
                }
            case .credit:
                t[c.group].credit(c.rule, packets: c.packets, bytes: c.bytes, now: lastTimestamp)
                continue                                   // no reply
            case .list:
                let all = t[c.group].list()
                for e in all { _ = ch.reply(.init(kind: .listEntry, group: c.group, token: c.token, entry: e, reason: .removed, total: 0)) }
                _ = ch.reply(.init(kind: .listEnd, group: c.group, token: c.token, entry: .none, reason: .removed, total: all.count))
            }
        }
        reportShunts(ch)
    }

    /// Ends entries past their timeouts (a bounded sweep per batch) and reports them.
    @inline(never)
    mutating func expireShunts() {
        guard let t = shuntTables, let ch = shuntChannel else { return }
        for g in 0..<min(groupCount, 64) where !t[g].isEmpty { t[g].expire(now: lastTimestamp) }
        reportShunts(ch)
    }

    /// Sends the ended entries to the control thread, mirrors the counters, updates `shuntActive`.
    mutating func reportShunts(_ ch: ShuntChannel) {
        guard let t = shuntTables else { return }
        var active = false
        for g in 0..<min(groupCount, 64) {
            for e in t[g].takeEnded() {
                _ = ch.reply(.init(kind: .ended, group: g, token: 0, entry: e.entry, reason: e.reason, total: 0))
                writeShuntEnd(e, group: g)
            }
            ch.mirror(group: g, t[g].counters)
            active = active || !t[g].isEmpty
        }
        shuntActive = active
    }

    /// The end of the input: every entry ends (reason `end`) and is reported, before the
    /// consumers see the end of the stream, so a worker can count what it never saw.
    mutating func finishShunts() {
        guard let t = shuntTables, let ch = shuntChannel else { return }
        for g in 0..<min(groupCount, 64) {
            while t[g].endSome(reason: .end, max: 1024) > 0 { reportShunts(ch) }
        }
        reportShunts(ch)
    }

    /// Writes an entry's end report (struct lb_shunt_end) into the ring its flow hashes to in
    /// group g, when that ring's consumer asked for reports.
    mutating func writeShuntEnd(_ e: ShuntTable.Ended, group g: Int) {
        let r = e.entry.rule
        var k = FlowKey()
        k.srcHi = r.a.hi; k.srcLo = r.a.lo; k.sport = r.a.port
        k.dstHi = r.b.hi; k.dstLo = r.b.lo; k.dport = r.b.port
        k.proto = r.proto
        k.kind = r.proto == 6 || r.proto == 17 ? .ports : .addresses
        let d = decoder.pointee
        let hash = FlowHash.hash(k, mode: d.tuple, extra: r.extra, seeds: d.seeds)
        let ring = tables[g].ring(for: hash)
        guard shared.wantsShuntReports(ring), isAttached(ring) else { return }
        var report = lb_shunt_end()
        withUnsafeMutableBytes(of: &report.a) { Self.store128(r.a.hi, r.a.lo, into: $0) }
        withUnsafeMutableBytes(of: &report.b) { Self.store128(r.b.hi, r.b.lo, into: $0) }
        report.a_port = r.a.port
        report.b_port = r.b.port
        report.proto = r.proto
        report.directions = r.directions.rawValue
        report.reason = e.reason.rawValue
        report.extra = r.extra
        report.packets_ab = e.entry.packets.0
        report.ip_bytes_ab = e.entry.bytes.0
        report.packets_ba = e.entry.packets.1
        report.ip_bytes_ba = e.entry.bytes.1
        report.added_ns = e.entry.addedNanos
        report.last_ns = e.entry.lastNanos
        let size = MemoryLayout<lb_shunt_end>.size
        guard let record = producers[ring].reserveRecord(bytes: size) ?? waitForRoom(ring: ring, bytes: size) else { return }
        withUnsafeBytes(of: &report) { record.writePacket(from: $0.baseAddress!, count: size, at: 0) }
        record.describe(ts: e.entry.lastNanos, caplen: size, wirelen: UInt32(size), hash: hash, flags: LB_F_SHUNT_END, l3: 0xFFFF,
                        encap: 0, depth: 0, vni: 0, vlan: 0, tunnelLength: 0, input: 0)
        producers[ring].commit()
    }

    /// A 128-bit address as 16 bytes, most significant first.
    static func store128(_ hi: UInt64, _ lo: UInt64, into b: UnsafeMutableRawBufferPointer) {
        for i in 0..<8 {
            b[i] = UInt8(truncatingIfNeeded: hi >> UInt64(56 - 8 * i))
            b[8 + i] = UInt8(truncatingIfNeeded: lo >> UInt64(56 - 8 * i))
        }
    }

    mutating func tablesForShunting() -> UnsafeMutablePointer<ShuntTable> {
        if let t = shuntTables { return t }
        let t = UnsafeMutablePointer<ShuntTable>.allocate(capacity: groupCount)
        let d = decoder.pointee
        for g in 0..<groupCount { (t + g).initialize(to: ShuntTable(capacity: g < 64 ? shuntCapacity : 1, mode: d.tuple, seeds: d.seeds)) }
        shuntTables = t
        return t
    }
}
