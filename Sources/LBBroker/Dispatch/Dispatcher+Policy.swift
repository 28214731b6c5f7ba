import CLBRing
import CPcap
import LBCore
import LBRing

// Per-group policy on the data path (docs/policy.md): a group's filter (libpcap's bpf_filter on
// the packet as the group receives it), its slice length, and the tenant tag every group gets.
// With none of them (`policyActive` false) the only cost is that flag.

/// What the policy code keeps per data-path thread, made once at start.
struct PolicyState {
    /// per group: the filter's instructions (nil: none; the `PacketFilter`s stay alive in
    /// `owners`), and the slice length (Int.max: whole)
    let programs: UnsafeMutablePointer<UnsafePointer<bpf_insn>?>
    let slices: UnsafeMutablePointer<Int>
    /// groups (bit g) with a filter
    let filtered: UInt64
    /// where a packet is put together when it is not contiguous in the frame (a synthesized
    /// Ethernet header, a tenant tag)
    let scratch: UnsafeMutableRawPointer
    static let scratchSize = 65535 + 64
    /// the filter verdicts of first fragments, by flow hash, for the fragments that follow
    /// (direct-mapped; a fragment whose first is not found is filtered on its own bytes)
    let verdicts: UnsafeMutablePointer<FragmentVerdict>
    static let verdictSlots = 4096
    /// tenant tag: 0 off, 1 innermost tunnel id, 2 outer VLAN
    let tenant: UInt8
    let tenantMap: UnsafeMutablePointer<TenantTag.MapEntry>
    let tenantMapCount: Int
    /// the tunnel id (+1) that first got each VLAN id, to count collisions
    let vlanOwner: UnsafeMutablePointer<UInt32>
    let owners: [PacketFilter?]

    struct FragmentVerdict { var hash: UInt64 = 0; var mask: UInt64 = 0; var used = false }

    init(groups: Int, policies: [GroupPolicy], tenant: TenantTag?) {
        programs = .allocate(capacity: max(groups, 1))
        slices = .allocate(capacity: max(groups, 1))
        var filtered: UInt64 = 0
        var owners: [PacketFilter?] = []
        for g in 0..<groups {
            let p = g < policies.count ? policies[g] : GroupPolicy()
            owners.append(p.filter)
            (programs + g).initialize(to: p.filter.map { UnsafePointer($0.program.bf_insns!) })
            (slices + g).initialize(to: p.slice > 0 ? max(p.slice, 14) : .max)
            if p.filter != nil && g < 64 { filtered |= 1 << UInt64(g) }
        }
        self.owners = owners
        self.filtered = filtered
        scratch = .allocate(byteCount: Self.scratchSize, alignment: 64)
        verdicts = .allocate(capacity: Self.verdictSlots)
        verdicts.initialize(repeating: FragmentVerdict(), count: Self.verdictSlots)
        self.tenant = tenant == nil ? 0 : tenant!.source == .vni ? 1 : 2
        let table = tenant?.table() ?? []
        tenantMap = .allocate(capacity: max(table.count, 1))
        for (i, e) in table.enumerated() { (tenantMap + i).initialize(to: e) }
        tenantMapCount = table.count
        vlanOwner = .allocate(capacity: 4096)
        vlanOwner.initialize(repeating: 0, count: 4096)
    }

    func free(groups: Int) {
        programs.deallocate()
        slices.deallocate()
        scratch.deallocate()
        verdicts.deallocate()
        tenantMap.deallocate()
        vlanOwner.deallocate()
    }
}

extension Dispatcher {
    /// The groups (bit g) whose filter rejects the packet `bytes[0..<caplen]`, counted for
    /// the ring each would have reached. A fragment follows its flow: the first fragment's
    /// verdict is kept by flow hash for the others (which have no ports to filter on).
    @inline(never)
    mutating func filterMask(_ bytes: UnsafeRawPointer, caplen: Int, wire: Int, hash: UInt64, fragment: Int, skip: UInt64) -> UInt64 {
        let ps = policy
        if fragment > 0 {
            let slot = ps.verdicts + Int(truncatingIfNeeded: hash & UInt64(PolicyState.verdictSlots - 1))
            if slot.pointee.used && slot.pointee.hash == hash {
                let mask = slot.pointee.mask & ~skip
                countFiltered(mask, hash: hash)
                return mask
            }
        }
        var mask: UInt64 = 0
        var left = ps.filtered & ~skip
        let p = bytes.assumingMemoryBound(to: UInt8.self)
        let len = UInt32(truncatingIfNeeded: caplen), wlen = UInt32(truncatingIfNeeded: max(wire, caplen))
        while left != 0 {
            let g = left.trailingZeroBitCount
            left &= left &- 1
            if bpf_filter(ps.programs[g], p, wlen, len) == 0 { mask |= 1 << UInt64(g) }
        }
        if fragment == 0 {
            let s = ps.verdicts + Int(truncatingIfNeeded: hash & UInt64(PolicyState.verdictSlots - 1))
            s.pointee = .init(hash: hash, mask: mask, used: true)
        }
        countFiltered(mask, hash: hash)
        return mask
    }

    @inline(__always)
    func countFiltered(_ mask: UInt64, hash: UInt64) {
        var m = mask
        while m != 0 {
            let g = m.trailingZeroBitCount
            m &= m &- 1
            counters.add(ring: tables[g].ring(for: hash), .filtered)
        }
    }

    /// The tenant tag's VLAN id for a decapsulated packet (nil: none), counting folds and
    /// collisions (two tunnel ids given one VLAN id, as this thread has seen them).
    @inline(__always)
    func tenantVLAN(_ dp: UnsafePointer<Decoded>) -> UInt16? {
        tenantVLAN(tunneled: dp.pointee.depth > 0, vni: dp.pointee.vni, hasVLAN: dp.pointee.hasVLAN, vlan: dp.pointee.vlan)
    }

    /// The same from the parts (the fast path has no `Decoded`): whether the packet came in a
    /// tunnel, its innermost tunnel id, its outer VLAN.
    @inline(__always)
    func tenantVLAN(tunneled: Bool, vni: UInt32, hasVLAN: Bool, vlan: UInt16) -> UInt16? {
        guard let id = tenantID(tunneled: tunneled, vni: vni, hasVLAN: hasVLAN, vlan: vlan) else { return nil }
        let ps = policy
        counters.add(.tenantTagged)
        if ps.tenant == 2 { return UInt16(truncatingIfNeeded: id) }
        let t = TenantTag.vlan(for: id, in: ps.tenantMap, count: ps.tenantMapCount)
        if t.folded { counters.add(.tenantFolded) }
        let owner = ps.vlanOwner + Int(t.vlan & 0x0FFF)
        if owner.pointee == 0 {
            owner.pointee = id &+ 1
        } else if owner.pointee != id &+ 1 {
            counters.add(.tenantCollisions)
        }
        return t.vlan
    }

    /// The tenant as --tenant-tag names it (nil: none): the innermost tunnel id, or with
    /// `vlan` the outer VLAN, of a packet that came in a tunnel and is decapsulated (--decap
    /// keep keeps the outer headers). The tag and the dedup digest (tenantSalt) both take it.
    @inline(__always)
    func tenantID(tunneled: Bool, vni: UInt32, hasVLAN: Bool, vlan: UInt16) -> UInt32? {
        let ps = policy
        guard ps.tenant != 0, tunneled, !keep else { return nil }
        if ps.tenant == 2 { return hasVLAN ? UInt32(vlan) : nil }
        return vni
    }

    /// The general path's delivery under a policy: the packet is put together (tag, synthesized
    /// header) when it must be, filtered per group, and written cut to each group's slice.
    @inline(never)
    mutating func deliverPolicy(_ p: Packet, _ frame: UnsafeRawBufferPointer, _ dp: UnsafePointer<Decoded>,
                                outer: UnsafePointer<TunnelEndpoints>, skip: UInt64) {
        let ps = policy
        var q = p
        let tag = tenantVLAN(dp)
        if tag != nil || (p.prefix != 0 && ps.filtered != 0) {
            // [MACs][tag][the rest], from the synthesized header or the frame
            let out = ps.scratch
            var body = p.caplen                           // bytes of the untagged packet written
            if p.prefix != 0 {
                EthernetHeader.write(to: out, frame: frame, type: p.synthType, dst: p.synthDst, src: p.synthSrc)
                if let src = p.bytes { out.advanced(by: 14).copyMemory(from: src, byteCount: p.caplen &- 14) }
            } else if let src = p.bytes {
                out.copyMemory(from: src, byteCount: p.caplen)
            } else {
                body = 0
            }
            var caplen = body, wire = Int(p.wire), l3 = p.l3, flags = p.flags, vlan = p.vlan
            if let tag, body >= 12 {
                let rest = out + 12
                (rest + 4).copyMemory(from: rest, byteCount: min(body &- 12, PolicyState.scratchSize &- 16))
                Self.writeTag(tag, at: rest)
                caplen = taggedLengths(body: body, wire: &wire, l3: &l3, flags: &flags)
                vlan = tag
            }
            q = Packet(bytes: UnsafeRawPointer(out), prefix: 0, caplen: caplen, wire: UInt32(clamping: wire), tunnel: p.tunnel,
                       ts: p.ts, hash: p.hash, flags: flags, l3: l3, encap: p.encap, depth: p.depth, vni: p.vni, vlan: vlan,
                       input: p.input, synthType: 0, synthDst: -1, synthSrc: -1)
        }
        var mask = skip
        if ps.filtered != 0, let b = q.bytes, q.prefix == 0 {
            let fragment = dp.pointee.isFragment ? (dp.pointee.fragment.offset == 0 ? 0 : 1) : -1
            mask |= filterMask(b, caplen: q.caplen, wire: Int(q.wire), hash: q.hash, fragment: fragment, skip: skip)
        }
        for g in 0..<groupCount where g >= 64 || mask & (1 << UInt64(g)) == 0 {
            write(ring: tables[g].ring(for: q.hash), q, frame, outer: outer, limit: ps.slices[g])
        }
    }

    /// The fast path's delivery under a policy: the frame's bytes are contiguous, so filters
    /// run on them in place; a VXLAN packet that gets a tenant tag is put together tagged in
    /// the scratch area first (`fastTagged`).
    @inline(never)
    mutating func deliverFastPolicy(_ note: UnsafePointer<FastNote>, _ frameBytes: UnsafeRawPointer) {
        if let tag = tenantVLAN(tunneled: note.pointee.frame.vxlan, vni: note.pointee.frame.vni, hasVLAN: note.pointee.frame.tagged,
                                vlan: note.pointee.frame.vlan) {
            var tagged = fastTagged(note.pointee.desc, frameBytes, tag: tag)
            deliverFastPolicy(note, desc: &tagged, src: UnsafeRawPointer(policy.scratch))
            return
        }
        deliverFastPolicy(note, desc: note.pointer(to: \.desc)!, src: frameBytes)
    }

    /// A fast-path VXLAN packet with its tenant tag: [MACs][802.1Q tag][the rest] written into
    /// the scratch area, and its descriptor (as the general path's `deliverPolicy` makes it).
    @inline(__always)
    func fastTagged(_ desc: lb_desc, _ src: UnsafeRawPointer, tag: UInt16) -> lb_desc {
        let out = policy.scratch
        let body = Int(desc.caplen)                  // an inner Ethernet frame: at least 14 bytes
        out.copyMemory(from: src, byteCount: 12)
        Self.writeTag(tag, at: out + 12)
        (out + 16).copyMemory(from: src + 12, byteCount: body &- 12)
        var d = desc
        var wire = Int(d.wirelen)
        d.caplen = UInt32(truncatingIfNeeded: taggedLengths(body: body, wire: &wire, l3: &d.l3_off, flags: &d.flags))
        d.wirelen = UInt32(clamping: wire)
        d.vlan = tag
        return d
    }

    /// The 802.1Q tag with a tenant's VLAN id, 4 bytes at `at`.
    @inline(__always)
    static func writeTag(_ tag: UInt16, at: UnsafeMutableRawPointer) {
        at.storeBytes(of: UInt16(0x8100).bigEndian, as: UInt16.self)
        (at + 2).storeBytes(of: (tag & 0x0FFF).bigEndian, as: UInt16.self)
    }

    /// A packet's lengths and flags once its tenant tag is in (both paths): 4 bytes more on
    /// the wire and before the IP header, LB_F_VLAN | LB_F_TENANT_TAG; returns its caplen
    /// (`body` + 4), cut to the slot size and counted as truncated when it is longer.
    @inline(__always)
    func taggedLengths(body: Int, wire: inout Int, l3: inout UInt16, flags: inout UInt32) -> Int {
        var caplen = body &+ 4
        wire &+= 4
        if l3 != 0xFFFF { l3 &+= 4 }
        flags |= LB_F_VLAN | LB_F_TENANT_TAG
        if caplen > maxCaplen {
            caplen = maxCaplen
            if flags & LB_F_TRUNCATED == 0 { counters.add(.truncated) }
            flags |= LB_F_TRUNCATED
        }
        if l3 != 0xFFFF && Int(l3) >= caplen { l3 = 0xFFFF }
        return caplen
    }

    /// Filters, slices and writes a fast-path packet (`src`, described by `desc`).
    @inline(__always)
    mutating func deliverFastPolicy(_ note: UnsafePointer<FastNote>, desc: UnsafePointer<lb_desc>, src: UnsafeRawPointer) {
        let ps = policy
        let hash = desc.pointee.flow_hash
        var mask = shuntActive ? note.pointee.skip : 0
        if ps.filtered != 0 {
            mask |= filterMask(src, caplen: Int(desc.pointee.caplen), wire: Int(desc.pointee.wirelen), hash: hash, fragment: -1, skip: mask)
        }
        let outer = note.pointer(to: \.frame.outer)!
        for g in 0..<groupCount where g >= 64 || mask & (1 << UInt64(g)) == 0 {
            let ring = tables[g].ring(for: hash)
            let slice = ps.slices[g]
            if slice < Int(desc.pointee.caplen) {
                var d = desc.pointee
                d.caplen = UInt32(truncatingIfNeeded: slice)
                d.flags |= LB_F_SLICED
                if Int(d.l3_off) >= slice { d.l3_off = 0xFFFF }
                counters.add(ring: ring, .sliced)
                withUnsafePointer(to: &d) { writeFast(ring: ring, desc: $0, outer: outer, src) }
            } else {
                writeFast(ring: ring, desc: desc, outer: outer, src)
            }
        }
    }
}
