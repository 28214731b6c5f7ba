import LBCore

// Deduplication on the data path (--dedup WINDOW, docs/dedup.md): between the two passes over
// a batch (Dispatcher.handleBatch), every frame the first pass did not already take out
// (shunted in every group) is digested (PacketDigest) and looked up in the table all
// data-path threads share (DedupTable). A duplicate is marked like a frame shunted in every
// group, `bytes` nil and `shunted` set, so the second pass skips it: no group, no ring sees
// it. With dedup off (no table) the data path pays one load and branch per batch (a nil check
// of a constant: no reference is taken, nothing retained).

extension Dispatcher {
    /// Marks and counts the duplicates among the first n frames of the batch: first every
    /// frame's digest (kept on the stack, 8 bytes a frame) and a prefetch of its bucket, then
    /// the table's verdicts, so that the buckets' cache misses overlap.
    @inline(never)
    mutating func dedupBatch(_ n: Int, _ decoder: Decoder) {
        guard let table = shared.dedup else { return }
        let key = table.key
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: n) { digests in
            for i in 0..<n {
                digests[i] = digest(i, decoder, key)
                if digests[i] != 0 { table.prefetch(digest: digests[i]) }
            }
            var dropped: UInt64 = 0
            for i in 0..<n where digests[i] != 0 {
                if table.isDuplicate(digest: digests[i], timestampNanos: frames[i].timestampNanos) {
                    let note = fastNotes + i
                    note.pointee.bytes = nil
                    note.pointee.shunted = true
                    dropped &+= 1
                }
            }
            if dropped != 0 { counters.add(.deduplicated, dropped) }
        }
    }

    /// Frame i's digest, or 0: not deduplicated (shunted in every group already, no bytes, an
    /// A-MSDU frame). A digest that is 0 becomes 1.
    @inline(__always)
    mutating func digest(_ i: Int, _ decoder: Decoder, _ key: PacketDigestKey) -> UInt64 {
        let note = fastNotes + i
        if note.pointee.shunted { return 0 }
        let fp = UnsafePointer(frames + i)
        guard let base = fp.pointee.bytes.baseAddress else { return 0 }
        let d: UInt64
        if note.pointee.bytes != nil {
            // the fast path found the innermost IP header; its length bounds the digest
            d = PacketDigest.ip(base, l3: note.pointee.frame.l3, end: note.pointee.frame.end, key: key)
                &+ tenantSalt(tunneled: note.pointee.frame.vxlan, vni: note.pointee.frame.vni, hasVLAN: note.pointee.frame.tagged,
                              vlan: note.pointee.frame.vlan)
        } else {
            guard let s = slowDigest(fp, base, decoder, key) else { return 0 }
            d = s
        }
        return d == 0 ? 1 : d
    }

    /// The digest of a frame the fast path did not take: decoded the general way (into the
    /// scratch `Decoded`; the second pass decodes it again). nil: not deduplicated (an 802.11
    /// A-MSDU frame of several subframes, each delivered on its own).
    @inline(never)
    mutating func slowDigest(_ fp: UnsafePointer<Frame>, _ base: UnsafeRawPointer, _ decoder: Decoder, _ key: PacketDigestKey) -> UInt64? {
        let bytes = fp.pointee.bytes, linkType = fp.pointee.linkType
        if linkType != lastLinkRaw {
            lastLinkRaw = linkType
            lastLink = LinkType(linktype: linkType)
        }
        // a link type lb cannot decode: delivered whole, digested whole
        guard let link = lastLink else { return PacketDigest.bytes(base, from: 0, count: bytes.count, seed: UInt64(linkType), key: key) }
        decoder.decode(bytes, link: link, subframe: 0, into: scratch)
        let d = UnsafePointer(scratch)
        if d.pointee.nextSubframe != 0 { return nil }
        let l3 = d.pointee.l3, start = d.pointee.start, end = min(d.pointee.end, bytes.count)
        if l3 >= 0 { return PacketDigest.ip(base, l3: l3, end: end, key: key) &+ tenantSalt(d) }
        // no IP layer: the delivered bytes, after the MAC addresses and VLAN tags when they
        // start with an Ethernet header (else after the synthesized one's EtherType)
        let synth = d.pointee.synthType
        guard synth == 0 else { return PacketDigest.bytes(base, from: start, count: max(0, end &- start), seed: UInt64(synth), key: key) }
        var from = start &+ 12
        while end &- from >= 6 {
            switch bytes.be16Unchecked(from) {
            case 0x8100, 0x88A8, 0x9100, 0x9200: from &+= 4
            default: return PacketDigest.bytes(base, from: from, count: end &- from, seed: 0, key: key)
            }
        }
        return PacketDigest.bytes(base, from: min(from, end), count: max(0, end &- from), seed: 0, key: key)
    }

    /// With --tenant-tag, the tenant is part of what a packet is: equal inner packets of two
    /// tenants (overlapping address spaces) are both delivered, each with its tag. 0 without.
    @inline(__always)
    func tenantSalt(_ d: UnsafePointer<Decoded>) -> UInt64 {
        tenantSalt(tunneled: d.pointee.depth > 0, vni: d.pointee.vni, hasVLAN: d.pointee.hasVLAN, vlan: d.pointee.vlan)
    }

    @inline(__always)
    func tenantSalt(tunneled: Bool, vni: UInt32, hasVLAN: Bool, vlan: UInt16) -> UInt64 {
        guard let id = tenantID(tunneled: tunneled, vni: vni, hasVLAN: hasVLAN, vlan: vlan) else { return 0 }
        return (UInt64(id) &+ 1) &* 0x9E37_79B9_7F4A_7C15
    }
}

extension UnsafeRawBufferPointer {
    /// A big-endian 16-bit value at `offset` (the caller checked the length).
    @inline(__always)
    fileprivate func be16Unchecked(_ offset: Int) -> UInt16 {
        UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }
}
