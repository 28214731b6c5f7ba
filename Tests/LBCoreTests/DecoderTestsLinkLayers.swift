import LBCore
import LBGen
import Testing

// The link layers and layer-2 encapsulations of issue 15 (Zeek's packet analysis is the
// checklist): 802.1ah PBB, Cisco FabricPath, 802.3 with LLC/SNAP, RARP, PPP and Cisco HDLC
// (LINKTYPE 9 and 50), NFLOG (239) and FDDI (10). Each: the inner flow is found, what is
// delivered is right, both directions hash alike, every truncation is counted.

/// The same flow from the other side (server to client) for the inner layers used here.
let inner4Back: [Layer] = [.ipv4(src: Addr.s4, dst: Addr.c4), .tcp(sport: 80, dport: 1234, flags: .ack), .filler(7)]
let inner6Back: [Layer] = [.ipv6(src: Addr.s6, dst: Addr.c6), .udp(sport: 53, dport: 5353), .filler(40)]

/// Both directions of one flow land on the same hash, and the forward key is `key`.
func expectSymmetric(_ there: [UInt8], _ back: [UInt8], link: LinkType, key: FlowKey,
                     sourceLocation: SourceLocation = #_sourceLocation) {
    let dec = Decoder()
    let a = decodeFrame(there, link: link), b = decodeFrame(back, link: link)
    #expect(a.key == key, sourceLocation: sourceLocation)
    #expect(b.key == reversed(key), sourceLocation: sourceLocation)
    #expect(dec.flowHash(a) == dec.flowHash(b), sourceLocation: sourceLocation)
    #expect(a.error == .none && b.error == .none && !a.nonIP && !b.nonIP, sourceLocation: sourceLocation)
}

/// Every prefix of `f` shorter than `complete` (the end of the transport header) reports an
/// error, a prefix ending before `l3` a link-layer one (`linkErrors`), and no prefix crashes
/// or delivers bytes outside itself.
func expectTruncationsCounted(_ f: [UInt8], link: LinkType, l3: Int, complete: Int,
                              linkErrors: Set<ParseError> = [.truncatedLink],
                              sourceLocation: SourceLocation = #_sourceLocation) {
    for cut in 0..<f.count {
        let p = Array(f.prefix(cut))
        let d = decodeFrame(p, link: link)
        #expect(d.start >= 0 && d.start <= d.end && d.end <= cut, "cut \(cut)", sourceLocation: sourceLocation)
        if cut < l3 {
            #expect(linkErrors.contains(d.error), "cut \(cut): \(d.error.name)", sourceLocation: sourceLocation)
        } else if cut < complete {
            #expect(d.error != .none, "cut \(cut): no error", sourceLocation: sourceLocation)
        }
    }
}

@Suite("Decoder: PBB, FabricPath, 802.3 LLC/SNAP")
struct DecoderLayer2EncapTests {
    @Test func pbbWithBackboneAndCustomerTags() {
        let f = build([.ethernet(), .vlan(id: 100, tpid: 0x88A8), .pbb(isid: 0x12345), .ethernet(dst: .a, src: .b), .vlan(id: 7)] + inner4)
        let d = decodeFrame(f)
        #expect(d.key == inner4Key && d.error == .none)
        #expect(d.l3 == 14 + 4 + 4 + 14 + 4)
        // the customer frame is delivered (with its own tag), the backbone header removed
        #expect(d.start == 14 + 4 + 4 && d.end == f.count && d.synthType == 0 && d.depth == 0)
        #expect(d.hasVLAN && d.vlan == 100)       // the outermost (backbone) VLAN
        let back = build([.ethernet(dst: .a, src: .b), .vlan(id: 100, tpid: 0x88A8), .pbb(isid: 0x12345), .ethernet(), .vlan(id: 7)] + inner4Back)
        expectSymmetric(f, back, link: .ethernet, key: inner4Key)
        expectTruncationsCounted(f, link: .ethernet, l3: d.l3, complete: d.l3 + 24)
    }

    @Test func pbbCarryingATunnelIsDecapsulated() {
        let f = build([.ethernet(), .pbb(isid: 9), .ethernet()] + outer4.dropFirst() + [.udp(sport: 40000, dport: 4789), .vxlan(vni: 5), .ethernet()] + inner6)
        let d = decodeFrame(f)
        #expect(d.key == inner6Key && d.depth == 1 && d.encap == .vxlan && d.vni == 5)
        #expect(d.start == 14 + 4 + 14 + 20 + 8 + 8 && d.synthType == 0)
    }

    @Test func fabricPath() {
        let f = build([.fabricPath(), .ethernet()] + inner6)
        let d = decodeFrame(f)
        #expect(d.key == inner6Key && d.error == .none && d.l3 == 16 + 14)
        #expect(d.start == 16 && d.end == f.count && d.synthType == 0)      // the frame inside
        let tagged = decodeFrame(build([.fabricPath(), .ethernet(), .vlan(id: 30)] + inner4))
        #expect(tagged.key == inner4Key && tagged.vlan == 30 && tagged.l3 == 16 + 18)
        expectSymmetric(f, build([.fabricPath(dst: "02:fa:00:00:00:01", src: "02:fa:00:00:00:02"), .ethernet(dst: .a, src: .b)] + inner6Back),
                        link: .ethernet, key: inner6Key)
        expectTruncationsCounted(f, link: .ethernet, l3: 30, complete: 30 + 48)
        // only at the EtherType of an Ethernet header, as Zeek: after a VLAN tag it is unknown
        let afterTag = decodeFrame(build([.ethernet(), .vlan(id: 1, type: 0x8903), .filler(40)]))
        #expect(afterTag.nonIP && afterTag.error == .none)
    }

    @Test func fabricPathInsideVXLAN() {
        let f = build(outer4 + [.udp(sport: 40000, dport: 4789), .vxlan(vni: 42), .fabricPath(), .ethernet()] + inner4)
        let d = decodeFrame(f)
        #expect(d.key == inner4Key && d.depth == 1 && d.vni == 42)
        #expect(d.start == 14 + 20 + 8 + 8 + 16)     // the frame inside the FabricPath header inside VXLAN
    }

    @Test func ieee8023SnapAndTrailingPadding() {
        let f = build([.ieee8023(padding: 9), .llcSnap()] + inner4)
        let d = decodeFrame(f)
        #expect(d.key == inner4Key && d.error == .none && d.l3 == 22)
        // delivered as Ethernet II: the 802.3 addresses, the SNAP EtherType, the IP packet, no padding
        #expect(d.start == 22 && d.end == f.count - 9 && d.synthType == 0x0800 && d.synthDst == 0 && d.synthSrc == 6)
        expectSymmetric(f, build([.ieee8023(dst: .a, src: .b), .llcSnap()] + inner4Back), link: .ethernet, key: inner4Key)
        expectTruncationsCounted(f, link: .ethernet, l3: 22, complete: 22 + 24)
        // the length field ends the data: a length that stops inside the IPv4 header cuts it
        let short = build([.ieee8023(length: 8 + 10), .llcSnap()] + inner4)
        #expect(decodeFrame(short).error == .truncatedIPv4)
        // SNAP with a 4-byte LLC header (control not an unnumbered PDU), as Zeek reads it
        var ctl = build([.ieee8023(), .llcSnap()] + inner6)
        ctl.insert(0x00, at: 17)
        ctl[16] = 0x00
        ctl[12] = UInt8((ctl.count - 14) >> 8); ctl[13] = UInt8((ctl.count - 14) & 0xFF)
        let dc = decodeFrame(ctl)
        #expect(dc.key == inner6Key && dc.l3 == 23)
    }

    @Test func ieee8023WithoutAnEtherTypeIsNonIP() {
        let frames: [[UInt8]] = [
            build(.ieee8023(), .payload([0xFF, 0xFF, 0, 30, 0, 0x11]), .filler(24)),           // Novell raw 802.3
            build(.ieee8023(dst: "01:80:c2:00:00:00"), .llc(dsap: 0x42, ssap: 0x42), .filler(35)),   // STP
            build([.ieee8023(), .llcSnap(oui: 0x00000C, type: 0x2000), .filler(30)]),             // CDP: Cisco's OUI
            build([.ieee8023(), .llcSnap(oui: 0x00000C, type: 0x0800)] + inner4),                  // an OUI-specific PID
            build([.ethernet(type: 0x05DD), .filler(46)]),                                           // 1501-1535: undefined
        ]
        for f in frames {
            let d = decodeFrame(f)
            #expect(d.nonIP && d.error == .none && d.start == 0 && d.end == f.count && d.l3 == -1)
        }
        // 802.1H (OUI 00-00-F8) carries an EtherType like RFC 1042
        #expect(decodeFrame(build([.ieee8023(), .llcSnap(oui: 0xF8)] + inner4)).key == inner4Key)
        // an 802.3 frame too short for its LLC header
        let cut = decodeFrame(build(.ieee8023(), .payload([0xAA])))
        #expect(cut.nonIP && cut.error == .truncatedLink)
    }

    @Test func arpAndRARPAreNonIPHashedOnAddresses() {
        for type: UInt16 in [0x0806, 0x8035] {
            let req = decodeFrame(build(.ethernet(type: type), .arp(operation: 1, senderIP: Addr.c4, targetIP: Addr.s4)))
            let rep = decodeFrame(build(.ethernet(type: type), .arp(operation: 2, senderIP: Addr.s4, targetIP: Addr.c4)))
            #expect(req.nonIP && req.error == .none && req.key.kind == .addresses)
            #expect(Decoder().flowHash(req) == Decoder().flowHash(rep))
        }
        let snapARP = decodeFrame(build(.ieee8023(), .llcSnap(type: 0x0806), .arp(senderIP: Addr.c4, targetIP: Addr.s4)))
        #expect(snapARP.nonIP && snapARP.key.kind == .addresses)
    }
}

@Suite("Decoder: PPP, NFLOG and FDDI link types")
struct DecoderSerialLinkTests {
    @Test(arguments: [LinkType.ppp, .pppHDLC])
    func pppIPv4AndIPv6(link: LinkType) {
        let f = build([.ppp()] + inner4)
        let d = decodeFrame(f, link: link)
        #expect(d.key == inner4Key && d.error == .none && !d.nonIP)
        #expect(d.start == 4 && d.synthType == 0x0800 && d.synthDst == -1 && d.synthSrc == -1)
        #expect(deliveredBytes(f, d) == zeroEthernet(0x0800) + build(inner4))
        expectSymmetric(f, build([.ppp()] + inner4Back), link: link, key: inner4Key)
        expectTruncationsCounted(f, link: link, l3: 4, complete: 4 + 24)

        let v6 = build([.ppp()] + inner6)
        let d6 = decodeFrame(v6, link: link)
        #expect(d6.key == inner6Key && d6.synthType == 0x86DD && deliveredBytes(v6, d6) == zeroEthernet(0x86DD) + build(inner6))
    }

    @Test func pppWithoutAddressControlAndCompressed() {
        let plain = build([.ppp(addressControl: false)] + inner6)
        let d = decodeFrame(plain, link: .ppp)
        #expect(d.key == inner6Key && d.start == 2 && d.synthType == 0x86DD)
        let compressed = build([.ppp(addressControl: false, compressed: true)] + inner4)
        let c = decodeFrame(compressed, link: .ppp)
        #expect(c.key == inner4Key && c.start == 1 && c.synthType == 0x0800)
        expectTruncationsCounted(plain, link: .ppp, l3: 2, complete: 2 + 48)
    }

    @Test func pppMPLS() {
        let f = build([.ppp(), .mpls(labels: [16, 17])] + inner4)
        let d = decodeFrame(f, link: .ppp)
        #expect(d.key == inner4Key && d.error == .none && d.l3 == 4 + 8)
        #expect(d.start == 4 && d.synthType == 0x8847)    // delivered as Ethernet + MPLS
        expectTruncationsCounted(f, link: .ppp, l3: 12, complete: 12 + 24)
    }

    @Test(arguments: [UInt16(0xC021), 0x8021, 0x80FD, 0x0031])
    func pppControlIsNonIP(proto: UInt16) {
        let f = build(.ppp(proto: proto), .payload([1, 1, 0, 8, 5, 6, 0, 0]))
        let d = decodeFrame(f, link: .ppp)
        #expect(d.nonIP && d.error == .none && d.l3 == -1)
        #expect(d.start == 0 && d.end == f.count && d.synthType == opaqueEtherType)
    }

    @Test func ciscoHDLC() {
        let f = build([.ciscoHDLC()] + inner4)
        let d = decodeFrame(f, link: .pppHDLC)
        #expect(d.key == inner4Key && d.start == 4 && d.synthType == 0x0800)
        let keepalive = decodeFrame(build(.ciscoHDLC(address: 0x8F, type: 0x8035), .filler(18)), link: .pppHDLC)
        #expect(keepalive.nonIP && keepalive.error == .none && keepalive.synthType == opaqueEtherType)   // SLARP, not RARP
        // on LINKTYPE_PPP a first byte 0F is not Cisco HDLC
        #expect(decodeFrame(f, link: .ppp).key != inner4Key)
    }

    @Test func pppFragmentsStayFragments() {
        let dg = build(.ipv4(src: Addr.c4, dst: Addr.s4, id: 77), .udp(sport: 1, dport: 2), .filler(3000))
        let frags = Fragmenter.ipv4(dg, size: 1480)
        #expect(frags.count == 3)
        for (i, fr) in frags.enumerated() {
            let f = build(.ppp(), .ip(fr))
            let d = decodeFrame(f, link: .ppp)
            #expect(d.isFragment && d.fragment.id == 77 && d.fragment.offset == i * 1480)
            #expect(d.start == 4 && d.synthType == 0x0800 && d.fragment.payloadStart == 4 + 20)
        }
    }

    @Test func nflog() {
        let f = build([.nflog()] + inner4)
        let d = decodeFrame(f, link: .nflog)
        // header 4, packet-header TLV 8, prefix "lb\0" TLV 8, payload TLV header 4
        #expect(d.key == inner4Key && d.error == .none && d.start == 24 && d.l3 == 24)
        #expect(d.synthType == 0x0800 && deliveredBytes(f, d) == zeroEthernet(0x0800) + build(inner4))
        expectSymmetric(f, build([.nflog()] + inner4Back), link: .nflog, key: inner4Key)
        expectTruncationsCounted(f, link: .nflog, l3: 24, complete: 24 + 24, linkErrors: [.truncatedLink, .nflogNoPayload])

        let v6 = build([.nflog(prefix: "a longer prefix")] + inner6)
        #expect(v6[0] == 10)
        let d6 = decodeFrame(v6, link: .nflog)
        #expect(d6.key == inner6Key && d6.synthType == 0x86DD && deliveredBytes(v6, d6) == zeroEthernet(0x86DD) + build(inner6))
    }

    /// A big-endian host's capture: lb swaps the TLV headers as libpcap does.
    @Test func nflogFromABigEndianHost() {
        var f = build([.nflog()] + inner6)
        var p = 4
        while p + 4 <= f.count {
            let len = Int(f[p]) | Int(f[p + 1]) << 8
            f.swapAt(p, p + 1)
            f.swapAt(p + 2, p + 3)
            p += (len + 3) & ~3
        }
        let d = decodeFrame(f, link: .nflog)
        #expect(d.key == inner6Key && d.error == .none && d.start == 24 && d.synthType == 0x86DD)
        expectTruncationsCounted(f, link: .nflog, l3: 24, complete: 24 + 48, linkErrors: [.truncatedLink, .nflogNoPayload])
    }

    @Test func nflogPayloadEndsAtItsTLVLength() {
        // the payload TLV's padding is not part of the packet: IPv6 with payload length 0
        // (a jumbogram's) would otherwise take it
        let ip = build(.ipv6(src: Addr.c6, dst: Addr.s6), .udp(sport: 1, dport: 2), .filler(1))   // 49 bytes: 3 of padding
        let f = build(.nflog(), .ip(ip))
        #expect(f.count % 4 == 0)
        let d = decodeFrame(f, link: .nflog)
        #expect(d.end == f.count - 3)
    }

    @Test func nflogBadHeadersAndOtherFamilies() {
        let good = build([.nflog()] + inner4)
        var version = good; version[1] = 1
        #expect(decodeFrame(version, link: .nflog).error == .nflogBadHeader)
        var shortTLV = good; shortTLV[4] = 3; shortTLV[5] = 0           // a TLV shorter than its header
        #expect(decodeFrame(shortTLV, link: .nflog).error == .nflogBadHeader)
        var tooLong = good; tooLong[4] = 0; tooLong[5] = 8             // length 0x0800: runs past the end
        #expect(decodeFrame(tooLong, link: .nflog).error == .truncatedLink)
        var noPayload = good; noPayload[22] = 11                        // the payload TLV's type becomes 11
        let np = decodeFrame(noPayload, link: .nflog)
        #expect(np.error == .truncatedLink || np.error == .nflogNoPayload)
        #expect(decodeFrame(Array(good.prefix(20)), link: .nflog).error == .nflogNoPayload)
        for bad in [version, shortTLV, tooLong, noPayload] {
            let d = decodeFrame(bad, link: .nflog)
            #expect(d.nonIP && d.start == 0 && d.end == bad.count && d.synthType == opaqueEtherType)
        }
        let bridge = decodeFrame(build([.nflog(family: 7)] + inner4), link: .nflog)   // AF_BRIDGE
        #expect(bridge.nonIP && bridge.error == .none)
        // many small TLVs are bounded
        var many: [UInt8] = [2, 0, 0, 0]
        for _ in 0..<70 { many += [4, 0, 1, 0] }
        #expect(decodeFrame(many, link: .nflog).error == .nflogBadHeader)
    }

    @Test func fddi() {
        let f = build([.fddi(), .llcSnap()] + inner6)
        let d = decodeFrame(f, link: .fddi)
        #expect(d.key == inner6Key && d.error == .none && d.l3 == 21)
        #expect(d.start == 21 && d.synthType == 0x86DD && d.synthDst == 1 && d.synthSrc == 7)
        #expect(deliveredBytes(f, d) == MAC.b.bytes + MAC.a.bytes + [0x86, 0xDD] + build(inner6))
        expectSymmetric(f, build([.fddi(dst: .a, src: .b), .llcSnap()] + inner6Back), link: .fddi, key: inner6Key)
        expectTruncationsCounted(f, link: .fddi, l3: 21, complete: 21 + 48)
        let arp = decodeFrame(build(.fddi(), .llcSnap(type: 0x0806), .arp(senderIP: Addr.c4, targetIP: Addr.s4)), link: .fddi)
        #expect(arp.nonIP && arp.key.kind == .addresses && arp.synthType == 0x0806)
    }

    @Test func fddiWithoutIP() {
        let smt = build(.fddi(frameControl: 0x41), .filler(40))                    // station management
        let llc = build(.fddi(), .llc(dsap: 0x42, ssap: 0x42), .filler(40))
        for f in [smt, llc] {
            let d = decodeFrame(f, link: .fddi)
            #expect(d.nonIP && d.error == .none && d.start == 0 && d.synthType == opaqueEtherType)
        }
    }
}
