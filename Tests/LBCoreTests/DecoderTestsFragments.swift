import LBCore
import LBGen
import Testing

// IP fragments (what the dispatcher's fragment table needs from the decoder), datagrams rebuilt
// from them, and ICMP errors, which hash like the packet they quote.

/// Reassembles IP fragments (in any order) into the datagram they came from: the first
/// fragment's header (without an IPv6 fragment header), then the payloads by offset.
func reassemble(_ fragments: [[UInt8]], decoder: Decoder = Decoder()) -> [UInt8] {
    var header: [UInt8] = []
    var pieces: [(Int, [UInt8])] = []
    for f in fragments {
        let d = decodeFrame(f, link: .raw, decoder: decoder)
        let fi = d.fragment
        pieces.append((fi.offset, Array(f[fi.payloadStart..<fi.payloadEnd])))
        if fi.offset == 0 {
            if fi.isIPv6 {
                // drop the fragment header: the byte that named it now names what it carried
                let fragAt = fi.payloadStart - 8
                var h = Array(f[0..<fragAt])
                var nhAt = 6, at = 40
                while at < fragAt { nhAt = at; at += (Int(f[at + 1]) + 1) * 8 }
                h[nhAt] = fi.proto
                header = h
            } else {
                header = Array(f[0..<fi.payloadStart])
                header[6] = 0; header[7] = 0
            }
        }
    }
    var payload: [UInt8] = []
    for (_, p) in pieces.sorted(by: { $0.0 < $1.0 }) { payload += p }
    var out = header + payload
    if out[0] >> 4 == 4 {
        out[2] = UInt8(out.count >> 8); out[3] = UInt8(out.count & 0xFF)
        let ihl = Int(out[0] & 0x0F) * 4
        out[10] = 0; out[11] = 0
        let c = Checksum.internet(Array(out[0..<ihl]))
        out[10] = UInt8(c >> 8); out[11] = UInt8(c & 0xFF)
    } else {
        out[4] = UInt8((out.count - 40) >> 8); out[5] = UInt8((out.count - 40) & 0xFF)
    }
    return out
}

@Suite("Decoder: IPv4 and IPv6 fragments")
struct DecoderFragmentTests {
    let datagram4 = build(.ipv4(src: Addr.c4, dst: Addr.s4, id: 77), .udp(sport: 1111, dport: 2222), .filler(3000))

    @Test func ipv4Fragments() throws {
        let frags = Fragmenter.ipv4(datagram4, size: 1480).map { build(.ethernet(), .ip($0)) }
        try #require(frags.count == 3)
        let ds = frags.map { decodeFrame($0) }
        for (i, d) in ds.enumerated() {
            #expect(d.isFragment && d.error == .none && d.depth == 0 && d.l3 == 14 && d.start == 0)
            #expect(d.fragment.id == 77 && d.fragment.proto == 17 && !d.fragment.isIPv6 && !d.fragment.tunnel)
            #expect(d.fragment.offset == 1480 * i)
            #expect(d.fragment.more == (i < 2))
            #expect(d.fragment.payloadStart == 34 && d.fragment.payloadEnd == frags[i].count)
        }
        #expect(ds[0].key == flowKey(Addr.c4, 1111, Addr.s4, 2222, proto: 17))
        #expect(ds[1].key == flowKey(Addr.c4, 0, Addr.s4, 0, proto: 17, kind: .addresses))
        #expect(ds[2].key == ds[1].key)
    }

    @Test func fragmentsInAnyOrderAndSize() {
        for order in [FragmentOrder.inOrder, .reversed, .lastFirst, .shuffled(seed: 3), .custom([2, 0, 1, 0])] {
            let frags = Fragmenter.ipv4(datagram4, sizes: [8, 1000, 600], order: order)
            let ds = frags.map { decodeFrame($0, link: .raw) }
            #expect(Set(ds.map(\.fragment.id)) == [77])
            #expect(Set(ds.map { FlowTuple($0.key).withoutPorts }).count == 1)
            for d in ds where d.fragment.offset == 0 { #expect(d.key.kind == .ports) }
            for d in ds where d.fragment.offset != 0 { #expect(d.key.kind == .addresses) }
            if case .custom = order { #expect(frags.count == 4) } else {
                #expect(frags.count == 6)
                #expect(reassemble(frags) == datagram4)
            }
        }
    }

    @Test func optionsAreCopiedByTheirCopyBit() {
        let dg = build(.ipv4(src: Addr.c4, dst: Addr.s4, id: 5, options: [0x94, 4, 0, 0, 0x07, 7, 4, 0, 0, 0, 0, 0]),
                       .udp(sport: 1, dport: 2), .filler(100))
        let frags = Fragmenter.ipv4(dg, size: 64)
        #expect(frags[0][0] == 0x48 && frags[1][0] == 0x46)  // record route (no copy bit) only in the first
        let ds = frags.map { decodeFrame($0, link: .raw) }
        #expect(ds[0].fragment.payloadStart == 32 && ds[1].fragment.payloadStart == 24)
        #expect(ds[1].fragment.offset == 64)
        #expect(reassemble(frags).count == dg.count)
    }

    @Test func firstFragmentTooShortForPorts() {
        let f = build(.ethernet(), .ipv4(src: Addr.c4, dst: Addr.s4, proto: 6, mf: true), .payload([0x04, 0xD2]))
        let d = decodeFrame(f)
        #expect(d.isFragment && d.fragment.offset == 0 && d.key.kind == .addresses && d.error == .none)
    }

    @Test func firstFragmentsOfTCPCarryPortsSCTPAddresses() {
        let tcp = build(.ipv4(src: Addr.c4, dst: Addr.s4, id: 1), .tcp(sport: 5, dport: 6), .filler(100))
        let sctp = build(.ipv4(src: Addr.c4, dst: Addr.s4, id: 1), .sctp(sport: 7, dport: 8), .filler(100))
        #expect(decodeFrame(Fragmenter.ipv4(tcp, size: 64)[0], link: .raw).key == flowKey(Addr.c4, 5, Addr.s4, 6, proto: 6))
        #expect(decodeFrame(Fragmenter.ipv4(sctp, size: 64)[0], link: .raw).key == flowKey(Addr.c4, 0, Addr.s4, 0, proto: 132, kind: .addresses))
    }

    @Test func firstFragmentOfATunnelIsMarked() {
        let vx = build([.ipv4(src: Addr.o4, dst: Addr.t4, id: 9), .udp(sport: 40000, dport: 4789), .vxlan(vni: 1), .ethernet()]
                       + inner4 + [.filler(2000)])
        let frags = Fragmenter.ipv4(vx, size: 1480).map { build(.ethernet(), .ip($0)) }
        let first = decodeFrame(frags[0]), second = decodeFrame(frags[1])
        #expect(first.isFragment && first.fragment.tunnel && first.depth == 0)
        #expect(first.key == flowKey(Addr.o4, 40000, Addr.t4, 4789, proto: 17))   // not decapsulated
        #expect(!second.fragment.tunnel && second.key.kind == .addresses)
        for carried: [Layer] in [[.gre()] + inner4, inner4, inner6] {
            let dg = build([.ipv4(src: Addr.o4, dst: Addr.t4, id: 3)] + carried + [.filler(200)])
            let d = decodeFrame(Fragmenter.ipv4(dg, size: 64)[0], link: .raw)
            #expect(d.fragment.tunnel && d.depth == 0)
        }
        // an ordinary UDP first fragment is not a tunnel
        #expect(!decodeFrame(Fragmenter.ipv4(datagram4, size: 64)[0], link: .raw).fragment.tunnel)
    }

    @Test func reassembledTunnelIsDecapsulated() {
        let vx = build([.ipv4(src: Addr.o4, dst: Addr.t4, id: 9), .udp(sport: 40000, dport: 4789), .vxlan(vni: 5), .ethernet()]
                       + inner4 + [.filler(2000)])
        let frags = Fragmenter.ipv4(vx, size: 1480, order: .reversed).map { build(.ethernet(), .vlan(id: 42), .ip($0)) }
        let dec = Decoder()
        let context = frags.map { decodeFrame($0, decoder: dec) }.first { $0.fragment.offset == 0 }!
        #expect(context.vlan == 42)
        let packet = reassemble(frags.map { Array($0[18...]) })
        #expect(packet == vx)
        let d = packet.withUnsafeBytes { dec.decodeReassembled($0, context: context) }
        #expect(d.key == inner4Key && d.depth == 1 && d.encap == .vxlan && d.vni == 5)
        #expect(d.vlan == 42 && d.hasVLAN && !d.isFragment && d.error == .none)
        #expect(d.start == 36 && d.synthType == 0 && d.end == packet.count)
        #expect(d.outer.dport == 4789 && d.outer.srcLo == FlowKey.v4Mapped(Addr.o4.value))
    }

    @Test func reassembledPlainDatagram() {
        let frags = Fragmenter.ipv4(datagram4, size: 1480)
        let context = decodeFrame(build(.ethernet(), .ip(frags[0])))
        let packet = reassemble(frags)
        let d = packet.withUnsafeBytes { Decoder().decodeReassembled($0, context: context) }
        #expect(d.key == flowKey(Addr.c4, 1111, Addr.s4, 2222, proto: 17))
        #expect(d.start == 0 && d.end == packet.count && d.synthType == 0x0800 && d.depth == 0 && d.l3 == 0)
        let p6 = build(inner6)
        let d6 = p6.withUnsafeBytes { Decoder().decodeReassembled($0, context: Decoded()) }
        #expect(d6.key == inner6Key && d6.synthType == 0x86DD)
    }

    @Test func reassembledInsideATunnelKeepsTheTunnel() {
        // GRE around an inner datagram that was fragmented before it entered the tunnel
        let innerDG = build([.ipv4(src: Addr.c4, dst: Addr.s4, id: 12), .udp(sport: 1, dport: 2), .filler(300)])
        let frags = Fragmenter.ipv4(innerDG, size: 256).map { build(outer4 + [.gre(key: 7), .ip($0)]) }
        let ds = frags.map { decodeFrame($0) }
        #expect(ds.allSatisfy { $0.depth == 1 && $0.isFragment && $0.encap == .gre && $0.vni == 7 })
        #expect(ds[0].fragment.payloadStart == 34 + 8 + 20 && ds[0].l3 == 42)
        let packet = reassemble(frags.map { Array($0[42...]) })
        let d = packet.withUnsafeBytes { Decoder().decodeReassembled($0, context: ds[0]) }
        #expect(d.key == flowKey(Addr.c4, 1, Addr.s4, 2, proto: 17) && d.depth == 1 && d.encap == .gre && d.vni == 7)
    }

    @Test func ipv6Fragments() throws {
        let dg = build(.ipv6(src: Addr.c6, dst: Addr.s6, ext: [.hopByHop(), .destination()]), .udp(sport: 1111, dport: 2222), .filler(3000))
        let frags = Fragmenter.ipv6(dg, size: 1232, id: 0xABCDEF).map { build(.ethernet(), .ip($0)) }
        try #require(frags.count == 3)
        let ds = frags.map { decodeFrame($0) }
        for (i, d) in ds.enumerated() {
            #expect(d.isFragment && d.error == .none && d.l3 == 14)
            #expect(d.fragment.isIPv6 && d.fragment.id == 0xABCDEF && d.fragment.proto == 60)
            #expect(d.fragment.offset == 1232 * i && d.fragment.more == (i < 2))
            #expect(d.fragment.payloadStart == 14 + 40 + 8 + 8)
        }
        // the destination options header is in the fragmentable part, but the first fragment
        // holds every header up to UDP (RFC 8200): its key is the whole flow
        #expect(ds[0].key == flowKey(Addr.c6, 1111, Addr.s6, 2222, proto: 17))
        #expect(ds[1].key == flowKey(Addr.c6, 0, Addr.s6, 0, proto: 60, kind: .addresses))
        #expect(hashOf(ds[0].key) == hashOf(decodeFrame(build(.ethernet(), .ip(dg))).key))
        #expect(reassemble(frags.map { Array($0[14...]) }) == dg)
    }

    @Test func ipv6FirstFragmentPorts() {
        let dg = build(.ipv6(src: Addr.c6, dst: Addr.s6), .udp(sport: 40000, dport: 4789), .vxlan(vni: 1), .ethernet(), .filler(2000))
        let frags = Fragmenter.ipv6(dg, size: 1232, id: 5, order: .reversed)
        let first = decodeFrame(frags[1], link: .raw), second = decodeFrame(frags[0], link: .raw)
        #expect(first.fragment.offset == 0 && first.fragment.tunnel && first.depth == 0)
        #expect(first.key == flowKey(Addr.c6, 40000, Addr.s6, 4789, proto: 17))
        #expect(second.key == flowKey(Addr.c6, 0, Addr.s6, 0, proto: 17, kind: .addresses) && !second.fragment.tunnel)
        #expect(reassemble(frags) == dg)
    }

    @Test func ipv6FragmentHeaderTruncated() {
        let f = build(.ethernet(), .ipv6(src: Addr.c6, dst: Addr.s6, ext: [.fragment(offset: 8, more: true, id: 1)]), .filler(8))
        #expect(decodeFrame(Array(f.prefix(14 + 40 + 7))).error == .truncatedIPv6)
    }

    @Test func ipv6AtomicFragmentIsAWholeDatagram() {
        // RFC 6946: a fragment header with offset 0 and M = 0 is not a fragment
        let f = build([.ethernet(), .ipv6(src: Addr.c6, dst: Addr.s6, ext: [.fragment(offset: 0, more: false, id: 9)]),
                       .udp(sport: 40000, dport: 4789), .vxlan(vni: 3), .ethernet()] + inner4)
        let d = decodeFrame(f)
        #expect(!d.isFragment)
        #expect(d.key == inner4Key && d.encap == .vxlan && d.depth == 1)
    }

    @Test func fragmentsInsideVXLAN() {
        let frags = Fragmenter.ipv4(datagram4, size: 1480).map {
            build(outer4 + [.udp(sport: 40000, dport: 4789), .vxlan(vni: 1), .ethernet(), .ip($0)])
        }
        for (i, f) in frags.enumerated() {
            let d = decodeFrame(f)
            #expect(d.isFragment && d.depth == 1 && d.start == 50 && d.l3 == 64)
            #expect(d.fragment.offset == 1480 * i && d.fragment.payloadStart == 84 && d.fragment.payloadEnd == f.count)
        }
    }
}

@Suite("Decoder: ICMP errors hash like the packet they quote")
struct DecoderICMPTests {
    let udpFlow: [Layer] = [.ipv4(src: Addr.c4, dst: Addr.s4), .udp(sport: 5353, dport: 53), .filler(30)]
    let udpKey = flowKey(Addr.c4, 5353, Addr.s4, 53, proto: 17)

    @Test(arguments: [UInt8(3), 4, 5, 11, 12])
    func icmpErrors(type: UInt8) {
        let f = build([.ethernet(), .ipv4(src: "198.51.100.9", dst: Addr.c4), .icmp(type: type, code: 1, quoteLimit: 28)] + udpFlow)
        let d = decodeFrame(f)
        #expect(d.key == udpKey && d.error == .none && d.l3 == 14)
        #expect(hashOf(d.key) == hashOf(udpKey) && hashOf(d.key) == hashOf(reversed(udpKey)))
    }

    @Test func wholeQuoteAndTCP() {
        let f = build([.ethernet(), .ipv4(src: Addr.s4, dst: Addr.c4), .icmpUnreachable(code: 1)] + inner4)
        #expect(decodeFrame(f).key == inner4Key)
    }

    @Test func quoteWithOptions() {
        let f = build(.ethernet(), .ipv4(src: Addr.s4, dst: Addr.c4), .icmpUnreachable(quoteLimit: 32),
                      .ipv4(src: Addr.c4, dst: Addr.s4, options: [0x94, 4, 0, 0]), .udp(sport: 5353, dport: 53))
        #expect(decodeFrame(f).key == udpKey)
    }

    @Test func shortQuotes() {
        let noPorts = decodeFrame(build([.ethernet(), .ipv4(src: Addr.s4, dst: Addr.c4), .icmpUnreachable(quoteLimit: 22)] + udpFlow))
        #expect(noPorts.key == flowKey(Addr.c4, 0, Addr.s4, 0, proto: 17, kind: .addresses) && noPorts.error == .none)
        let bad = decodeFrame(build([.ethernet(), .ipv4(src: Addr.s4, dst: Addr.c4), .icmpUnreachable(quoteLimit: 12)] + udpFlow))
        #expect(bad.error == .badICMPQuote)
        #expect(bad.key == flowKey(Addr.s4, 0, Addr.c4, 0, proto: 1, kind: .addresses))   // the ICMP packet's own flow
        let notIP = decodeFrame(build(.ethernet(), .ipv4(src: Addr.s4, dst: Addr.c4), .icmpUnreachable(), .filler(40)))
        #expect(notIP.error == .badICMPQuote)
        var badIHL = build([.ethernet(), .ipv4(src: Addr.s4, dst: Addr.c4), .icmpUnreachable()] + udpFlow)
        badIHL[42] = 0x4F                                 // quoted header of 60 bytes, longer than the quote
        #expect(decodeFrame(Array(badIHL.prefix(42 + 50))).error == .badICMPQuote)
    }

    @Test func quotedNonFirstFragmentHasNoPorts() {
        let f = build(.ethernet(), .ipv4(src: Addr.s4, dst: Addr.c4), .icmp(type: 11, code: 1),
                      .ipv4(src: Addr.c4, dst: Addr.s4, proto: 17, fragmentOffset: 1480), .filler(8))
        #expect(decodeFrame(f).key == flowKey(Addr.c4, 0, Addr.s4, 0, proto: 17, kind: .addresses))
    }

    @Test func echoIsNotAnError() {
        let d = decodeFrame(build(.ethernet(), .ipv4(src: Addr.c4, dst: Addr.s4), .icmpEcho(id: 1, seq: 1), .payload(build(udpFlow))))
        #expect(d.key == flowKey(Addr.c4, 0, Addr.s4, 0, proto: 1, kind: .addresses))
    }

    @Test(arguments: [UInt8(1), 2, 3, 4])
    func icmp6Errors(type: UInt8) {
        let f = build([.ethernet(), .ipv6(src: "2001:db8:99::1", dst: Addr.c6), .icmp6(type: type, code: 0)] + inner6)
        let d = decodeFrame(f)
        #expect(d.key == inner6Key && d.error == .none)
        #expect(hashOf(d.key) == hashOf(reversed(inner6Key)))
    }

    /// The quoted packet's extension headers are walked, so the error still hashes like its flow.
    @Test func icmp6ErrorQuotingExtensionHeaders() {
        let quoted: [Layer] = [.ipv6(IPv6Header(src: Addr.c6, dst: Addr.s6, ext: [.hopByHop(), .destination()])),
                               .udp(sport: 5353, dport: 53), .filler(20)]
        let f = build([.ethernet(), .ipv6(src: "2001:db8:99::1", dst: Addr.c6), .icmp6(type: 1, code: 0)] + quoted)
        #expect(decodeFrame(f).key == inner6Key)
    }

    @Test func icmp6BadQuote() {
        let f = build([.ethernet(), .ipv6(src: Addr.s6, dst: Addr.c6), .icmp6(type: 1)] + inner4)
        let d = decodeFrame(f)
        #expect(d.error == .badICMPQuote && d.key == flowKey(Addr.s6, 0, Addr.c6, 0, proto: 58, kind: .addresses))
        let cut = decodeFrame(build([.ethernet(), .ipv6(src: Addr.s6, dst: Addr.c6), .icmp6(type: 1, quoteLimit: 39)] + inner6))
        #expect(cut.error == .badICMPQuote)
        let info = decodeFrame(build([.ethernet(), .ipv6(src: Addr.s6, dst: Addr.c6), .icmp6(type: 135)] + inner6))
        #expect(info.key.proto == 58 && info.error == .none)
    }

    @Test func icmpErrorInsideATunnel() {
        let f = build(outer4 + [.udp(sport: 40000, dport: 4789), .vxlan(vni: 1), .ethernet(), .ipv4(src: Addr.s4, dst: Addr.c4),
                                .icmpUnreachable(quoteLimit: 28)] + udpFlow)
        let d = decodeFrame(f)
        #expect(d.key == udpKey && d.depth == 1 && d.l3 == 64)
    }
}
