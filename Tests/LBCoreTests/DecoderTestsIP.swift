import LBCore
import LBGen
import Testing

// IPv4 and IPv6 headers (options, extension headers, lengths, malformed variants) and the
// transport headers above them.

@Suite("Decoder: IPv4")
struct DecoderIPv4Tests {
    @Test func optionsAreSkipped() {
        let f = build(.ethernet(), .ipv4(src: Addr.c4, dst: Addr.s4, options: [0x94, 4, 0, 0, 0x07, 7, 4, 0, 0, 0, 0]),
                      .udp(sport: 1111, dport: 2222), .filler(10))
        #expect(f[14] == 0x48)                        // 12 bytes of options
        let d = decodeFrame(f)
        #expect(d.key == flowKey(Addr.c4, 1111, Addr.s4, 2222, proto: 17))
        #expect(d.l3 == 14 && d.error == .none)
    }

    @Test func totalLengthBoundsTheDatagram() {
        // a total length that ends inside the TCP header: the ports are still there
        var h = IPv4Header(src: Addr.c4, dst: Addr.s4)
        h.totalLength = 24
        let f = build(.ethernet(), .ipv4(h), .tcp(sport: 1, dport: 2))
        #expect(decodeFrame(f).key == flowKey(Addr.c4, 1, Addr.s4, 2, proto: 6))
        h.totalLength = 22
        let cut = decodeFrame(build(.ethernet(), .ipv4(h), .tcp(sport: 1, dport: 2)))
        #expect(cut.error == .truncatedL4)
        #expect(cut.key == flowKey(Addr.c4, 0, Addr.s4, 0, proto: 6, kind: .addresses))
    }

    @Test func zeroTotalLengthFromSegmentationOffload() {
        // TSO / Linux BIG TCP captures carry a total length of 0: the captured bytes count
        var f = build([.ethernet()] + inner4)
        f[16] = 0; f[17] = 0
        let d = decodeFrame(f)
        #expect(d.key == inner4Key && d.error == .none && d.l3 == 14)
    }

    @Test func snaplenCutDatagram() {
        // captured shorter than the total length: what is there is used
        let f = Array(build([.ethernet()] + inner4).prefix(14 + 20 + 4))
        let d = decodeFrame(f)
        #expect(d.key == inner4Key && d.error == .none && d.end == f.count)
    }

    @Test func badHeaders() {
        var ihl4 = build([.ethernet()] + inner4)
        ihl4[14] = 0x44
        #expect(decodeFrame(ihl4).error == .badIPv4Header)
        var shortTotal = build([.ethernet()] + inner4)
        shortTotal[16] = 0; shortTotal[17] = 19
        #expect(decodeFrame(shortTotal).error == .badIPv4Header)
        // EtherType IPv4 announcing an IPv6 packet
        let wrongVersion = build([.ethernet(type: 0x0800)] + inner6)
        let d = decodeFrame(wrongVersion)
        #expect(d.error == .badIPv4Header && d.l3 == -1 && d.key.kind == .link)
    }

    @Test func truncatedHeaders() {
        let f = build([.ethernet()] + inner4)
        #expect(decodeFrame(Array(f.prefix(14 + 19))).error == .truncatedIPv4)
        let withOptions = build(.ethernet(), .ipv4(src: Addr.c4, dst: Addr.s4, options: [1, 1, 1, 1, 1, 1, 1, 1]), .tcp(sport: 1, dport: 2))
        #expect(decodeFrame(Array(withOptions.prefix(14 + 26))).error == .truncatedIPv4)
    }

    @Test func otherProtocolsHashOnAddresses() {
        let d = decodeFrame(build(.ethernet(), .ipv4(src: Addr.c4, dst: Addr.s4, proto: 89), .filler(40)))
        #expect(d.key == flowKey(Addr.c4, 0, Addr.s4, 0, proto: 89, kind: .addresses) && d.error == .none)
        let esp = decodeFrame(build(.ethernet(), .ipv4(src: Addr.c4, dst: Addr.s4, proto: 50), .filler(40)))
        #expect(esp.key.proto == 50 && esp.key.kind == .addresses)
    }

    /// SCTP hashes on the addresses, as Zeek keys it: every port of an association on one worker.
    @Test func sctpOnAddresses() {
        let d = decodeFrame(build(.ethernet(), .ipv4(src: Addr.c4, dst: Addr.s4), .sctp(sport: 2905, dport: 2906), .filler(16)))
        #expect(d.key == flowKey(Addr.c4, 0, Addr.s4, 0, proto: 132, kind: .addresses))
    }

    @Test func truncatedTransport() {
        let tcp = build([.ethernet()] + inner4)
        let t3 = decodeFrame(Array(tcp.prefix(34 + 3)))
        #expect(t3.error == .truncatedL4 && t3.key == flowKey(Addr.c4, 0, Addr.s4, 0, proto: 6, kind: .addresses))
        let t4 = decodeFrame(Array(tcp.prefix(34 + 4)))
        #expect(t4.error == .none && t4.key == inner4Key)

        let udp = build(.ethernet(), .ipv4(src: Addr.c4, dst: Addr.s4), .udp(sport: 7, dport: 9), .filler(4))
        let u6 = decodeFrame(Array(udp.prefix(34 + 6)))
        #expect(u6.error == .truncatedL4 && u6.key == flowKey(Addr.c4, 7, Addr.s4, 9, proto: 17))
        let u3 = decodeFrame(Array(udp.prefix(34 + 3)))
        #expect(u3.error == .truncatedL4 && u3.key.kind == .addresses)

        let icmp = build(.ethernet(), .ipv4(src: Addr.c4, dst: Addr.s4), .icmpEcho(id: 1, seq: 1))
        #expect(decodeFrame(Array(icmp.prefix(34 + 7))).error == .truncatedL4)
    }

    @Test func icmpEchoHashesOnAddressesBothWays() {
        let req = decodeFrame(build(.ethernet(), .ipv4(src: Addr.c4, dst: Addr.s4), .icmpEcho(id: 9, seq: 1), .filler(56)))
        let rep = decodeFrame(build(.ethernet(), .ipv4(src: Addr.s4, dst: Addr.c4), .icmpEcho(id: 9, seq: 1, reply: true), .filler(56)))
        #expect(req.key == flowKey(Addr.c4, 0, Addr.s4, 0, proto: 1, kind: .addresses))
        #expect(hashOf(req.key) == hashOf(rep.key))
    }
}

@Suite("Decoder: IPv6")
struct DecoderIPv6Tests {
    @Test func plain() {
        let f = build([.ethernet()] + inner6)
        let d = decodeFrame(f)
        #expect(d.key == inner6Key && d.l3 == 14 && d.error == .none)
    }

    @Test func extensionHeadersAreWalked() {
        let f = build(.ethernet(), .ipv6(src: Addr.c6, dst: Addr.s6, ext: [
            .hopByHop(options: [5, 2, 0, 0]), .destination(options: Array(repeating: 0, count: 12)),
            .routing(addresses: [Addr.s6, Addr.c6]), .auth(icv: 12), .destination()]),
                      .tcp(sport: 40000, dport: 443), .filler(8))
        let d = decodeFrame(f)
        #expect(d.key == flowKey(Addr.c6, 40000, Addr.s6, 443, proto: 6))
        #expect(d.error == .none && d.l3 == 14 && !d.isFragment)
    }

    @Test func mobilityHIPAndShim6AreSkippedToo() {
        for nh: UInt8 in [135, 139, 140] {
            let ext: [UInt8] = [17, 0, 0, 0, 0, 0, 0, 0]   // next header UDP, 8 bytes
            let f = build(.ethernet(), .ipv6(src: Addr.c6, dst: Addr.s6, nextHeader: nh), .payload(ext),
                          .payload(build(.udp(sport: 1, dport: 2))))
            #expect(decodeFrame(f).key == flowKey(Addr.c6, 1, Addr.s6, 2, proto: 17))
        }
    }

    @Test func sixteenExtensionHeadersAreFineSeventeenAreTooMany() {
        let ok = decodeFrame(build(.ethernet(), .ipv6(src: Addr.c6, dst: Addr.s6, ext: Array(repeating: .destination(), count: 16)),
                                   .udp(sport: 1, dport: 2)))
        #expect(ok.error == .none && ok.key == flowKey(Addr.c6, 1, Addr.s6, 2, proto: 17))
        let bad = decodeFrame(build(.ethernet(), .ipv6(src: Addr.c6, dst: Addr.s6, ext: Array(repeating: .destination(), count: 17)),
                                    .udp(sport: 1, dport: 2)))
        #expect(bad.error == .tooManyExtensionHeaders)
        #expect(bad.key.kind == .addresses && bad.l3 == 14)
    }

    @Test func truncated() {
        let f = build([.ethernet()] + inner6)
        #expect(decodeFrame(Array(f.prefix(14 + 39))).error == .truncatedIPv6)
        let ext = build(.ethernet(), .ipv6(src: Addr.c6, dst: Addr.s6, ext: [.hopByHop(options: Array(repeating: 0, count: 14))]), .udp(sport: 1, dport: 2))
        #expect(decodeFrame(Array(ext.prefix(14 + 40 + 7))).error == .truncatedIPv6)    // the 8-byte minimum
        #expect(decodeFrame(Array(ext.prefix(14 + 40 + 12))).error == .truncatedIPv6)   // its own length (16)
        let ah = build(.ethernet(), .ipv6(src: Addr.c6, dst: Addr.s6, ext: [.auth(icv: 12)]), .udp(sport: 1, dport: 2))
        #expect(decodeFrame(Array(ah.prefix(14 + 40 + 20))).error == .truncatedIPv6)
    }

    @Test func wrongVersion() {
        let d = decodeFrame(build([.ethernet(type: 0x86DD)] + inner4 + [.filler(40)]))
        #expect(d.error == .badIPv6Header && d.l3 == -1)
    }

    @Test func payloadLengthBoundsTheDatagram() {
        var f = build(.ethernet(), .ipv6(src: Addr.c6, dst: Addr.s6, nextHeader: 6))
        f += build(.tcp(sport: 1, dport: 2))
        // payload length 3: the TCP ports lie beyond it
        f[18] = 0; f[19] = 3
        let d = decodeFrame(f)
        #expect(d.error == .truncatedL4 && d.key.kind == .addresses)
        // payload length 0 (jumbogram, or TSO capture): the captured bytes count
        f[19] = 0
        #expect(decodeFrame(f).key == flowKey(Addr.c6, 1, Addr.s6, 2, proto: 6))
    }

    @Test func noNextHeader() {
        let d = decodeFrame(build(.ethernet(), .ipv6(src: Addr.c6, dst: Addr.s6)))
        #expect(d.key == flowKey(Addr.c6, 0, Addr.s6, 0, proto: 59, kind: .addresses) && d.error == .none)
    }

    @Test func addressesKeepAll128Bits() {
        let a: IPv6 = "2001:db8:1:2:3:4:5:6", b: IPv6 = "2001:db8:1:2:ffff:eeee:dddd:cccc"
        let d = decodeFrame(build(.ethernet(), .ipv6(src: a, dst: b), .udp(sport: 1, dport: 2)))
        #expect(d.key.srcHi == a.hi && d.key.srcLo == a.lo && d.key.dstHi == b.hi && d.key.dstLo == b.lo)
        #expect(!d.key.isIPv4)
    }

    @Test func icmp6EchoHashesOnAddresses() {
        let req = decodeFrame(build(.ethernet(), .ipv6(src: Addr.c6, dst: Addr.s6), .icmp6Echo(id: 1, seq: 1)))
        let rep = decodeFrame(build(.ethernet(), .ipv6(src: Addr.s6, dst: Addr.c6), .icmp6Echo(id: 1, seq: 1, reply: true)))
        #expect(req.key == flowKey(Addr.c6, 0, Addr.s6, 0, proto: 58, kind: .addresses))
        #expect(hashOf(req.key) == hashOf(rep.key))
        let cut = decodeFrame(Array(build(.ethernet(), .ipv6(src: Addr.c6, dst: Addr.s6), .icmp6Echo(id: 1, seq: 1)).prefix(14 + 40 + 4)))
        #expect(cut.error == .truncatedL4)
    }
}
