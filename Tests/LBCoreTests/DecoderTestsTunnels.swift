import LBCore
import LBGen
import Testing

// Every tunnel lb removes: what is delivered (the inner Ethernet frame, or the inner IP packet
// behind a synthesized Ethernet header), the inner flow, and the metadata; the malformed
// variants, which are delivered as their outer flow and counted under a reason; nesting and
// `--decap keep`.

/// Outer Ethernet + IPv4 (34 bytes) from Addr.o4 to Addr.t4.
let outer4: [Layer] = [.ethernet(), .ipv4(src: Addr.o4, dst: Addr.t4)]
let outer6: [Layer] = [.ethernet(), .ipv6(src: Addr.o6, dst: Addr.t6)]

/// Checks a decapsulated packet: no error, the inner flow, the delivered bytes.
func expectDecap(_ d: Decoded, _ f: [UInt8], encap: EncapKind, key: FlowKey, start: Int, synth: UInt16,
                 inner: [UInt8], vni: UInt32 = 0, depth: UInt8 = 1, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(d.error == .none, "error \(d.error)", sourceLocation: sourceLocation)
    #expect(d.key == key, sourceLocation: sourceLocation)
    #expect(d.encap == encap && d.depth == depth, "encap \(d.encap) depth \(d.depth)", sourceLocation: sourceLocation)
    #expect(d.encapMask & 1 << UInt32(encap.rawValue) != 0, sourceLocation: sourceLocation)
    #expect(d.start == start && d.synthType == synth, "start \(d.start) synth \(d.synthType)", sourceLocation: sourceLocation)
    #expect(d.vni == vni, "vni \(d.vni)", sourceLocation: sourceLocation)
    #expect(!d.nonIP && !d.isFragment, sourceLocation: sourceLocation)
    let expected = (synth != 0 ? zeroEthernet(synth) : []) + inner
    #expect(deliveredBytes(f, d) == expected, sourceLocation: sourceLocation)
    #expect(d.deliveredL3 != nil, sourceLocation: sourceLocation)
}

/// Checks a packet whose tunnel header was rejected: delivered whole as its outer flow.
func expectOuter(_ d: Decoded, _ f: [UInt8], error: ParseError, key: FlowKey, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(d.error == error, "error \(d.error)", sourceLocation: sourceLocation)
    #expect(d.key == key, sourceLocation: sourceLocation)
    #expect(d.depth == 0 && d.encap == .none && d.encapMask == 0, sourceLocation: sourceLocation)
    #expect(d.start == 0 && d.end == f.count && d.synthType == 0, sourceLocation: sourceLocation)
    #expect(d.l3 == 14, sourceLocation: sourceLocation)
}

let innerEth4 = build([.ethernet()] + inner4)
let innerEth6 = build([.ethernet()] + inner6)

@Suite("Decoder: VXLAN and GENEVE")
struct DecoderVXLANGeneveTests {
    @Test func vxlan() {
        let f = build(outer4 + [.udp(sport: 40000, dport: 4789), .vxlan(vni: 77)] + [.ethernet()] + inner4)
        let d = decodeFrame(f)
        expectDecap(d, f, encap: .vxlan, key: inner4Key, start: 50, synth: 0, inner: innerEth4, vni: 77)
        #expect(d.end == f.count && d.l3 == 64 && d.deliveredL3 == 14)
        #expect(d.encapMask == 1 << 1)
        #expect(d.outer.srcLo == FlowKey.v4Mapped(Addr.o4.value) && d.outer.dstLo == FlowKey.v4Mapped(Addr.t4.value))
        #expect(d.outer.proto == 17 && d.outer.sport == 40000 && d.outer.dport == 4789 && !d.outer.isIPv6)
    }

    @Test func vxlanFromTheTunnelPort() {
        // matched on the source port when the destination port is not a tunnel port
        let f = build(outer4 + [.udp(sport: 4789, dport: 40000), .vxlan(vni: 1), .ethernet()] + inner6)
        expectDecap(decodeFrame(f), f, encap: .vxlan, key: inner6Key, start: 50, synth: 0, inner: innerEth6, vni: 1)
    }

    @Test func vxlanOverIPv6() {
        let f = build(outer6 + [.udp(sport: 40000, dport: 4789), .vxlan(vni: 0xFFFFFF), .ethernet()] + inner4)
        let d = decodeFrame(f)
        expectDecap(d, f, encap: .vxlan, key: inner4Key, start: 14 + 40 + 16, synth: 0, inner: innerEth4, vni: 0xFFFFFF)
        #expect(d.outer.isIPv6 && d.outer.srcHi == Addr.o6.hi && d.outer.dstLo == Addr.t6.lo)
    }

    @Test func outerPaddingIsNotDelivered() {
        let f = build(outer4 + [.udp(sport: 40000, dport: 4789), .vxlan(vni: 7), .ethernet()] + inner4) + [0, 0, 0, 0, 0, 0]
        let d = decodeFrame(f)
        expectDecap(d, f, encap: .vxlan, key: inner4Key, start: 50, synth: 0, inner: innerEth4, vni: 7)
        #expect(d.end == f.count - 6)
    }

    @Test func udpLengthBoundsTheTunnel() {
        // a UDP length shorter than the IP payload: the bytes after it are not the tunnel's
        var f = build(outer4 + [.udp(sport: 40000, dport: 4789), .vxlan(vni: 7), .ethernet()] + inner4)
        f += [9, 9, 9, 9]
        f[16] = UInt8((f.count - 14) >> 8); f[17] = UInt8((f.count - 14) & 0xFF)    // IPv4 total covers the extra bytes
        let d = decodeFrame(f)
        #expect(d.key == inner4Key && d.end == f.count - 4)
    }

    @Test func vxlanWithoutTheIFlagIsItsOuterFlow() {
        let f = build(outer4 + [.udp(sport: 40000, dport: 4789), .vxlan(vni: 77, flags: 0)] + [.ethernet()] + inner4)
        expectOuter(decodeFrame(f), f, error: .vxlanBadFlags, key: flowKey(Addr.o4, 40000, Addr.t4, 4789, proto: 17))
    }

    @Test func vxlanTruncated() {
        let f = build(outer4 + [.udp(sport: 40000, dport: 4789), .payload([8, 0, 0, 0])])
        expectOuter(decodeFrame(f), f, error: .vxlanTruncated, key: flowKey(Addr.o4, 40000, Addr.t4, 4789, proto: 17))
    }

    @Test func vxlanWithTruncatedInnerFrame() {
        let f = build(outer4 + [.udp(sport: 40000, dport: 4789), .vxlan(vni: 77), .payload([1, 2, 3, 4, 5])])
        let d = decodeFrame(f)
        #expect(d.error == .truncatedLink)
        #expect(d.depth == 1 && d.start == 50)            // the tunnel was removed
        #expect(d.key == flowKey(Addr.o4, 40000, Addr.t4, 4789, proto: 17))   // the deepest flow read
        #expect(d.deliveredL3 == nil)
    }

    @Test func vxlanCarryingARP() {
        let f = build(outer4 + [.udp(sport: 40000, dport: 4789), .vxlan(vni: 77), .ethernet(dst: .broadcast),
                                .arp(senderIP: Addr.c4, targetIP: Addr.s4)])
        let d = decodeFrame(f)
        #expect(d.depth == 1 && d.nonIP && d.key == flowKey(Addr.c4, 0, Addr.s4, 0, proto: 0, kind: .addresses))
        #expect(d.deliveredL3 == nil)                     // l3 is the outer header, not delivered
    }

    @Test func tunnelPortsAreConfigurable() {
        let std = build(outer4 + [.udp(sport: 40000, dport: 4789), .vxlan(vni: 1), .ethernet()] + inner4)
        let linux = build(outer4 + [.udp(sport: 40000, dport: 8472), .vxlan(vni: 1), .ethernet()] + inner4)
        let only8472 = Decoder(DecodeConfig(tunnelPorts: [TunnelPort(8472, .vxlan)]))
        #expect(decodeFrame(linux, decoder: only8472).key == inner4Key)
        #expect(decodeFrame(std, decoder: only8472).depth == 0)
        #expect(decodeFrame(linux).depth == 0)
        let none = decodeFrame(std, config: DecodeConfig(tunnelPorts: []))
        #expect(none.depth == 0 && none.key == flowKey(Addr.o4, 40000, Addr.t4, 4789, proto: 17))
        // a port registered as another tunnel kind decodes as that kind
        let gen = build(outer4 + [.udp(sport: 40000, dport: 4789), .geneve(vni: 5), .ethernet()] + inner4)
        let d = decodeFrame(gen, config: DecodeConfig(tunnelPorts: [TunnelPort(4789, .geneve)]))
        #expect(d.encap == .geneve && d.key == inner4Key)
    }

    @Test func geneveWithOptions() {
        let opts = [GeneveOption(), GeneveOption(optionClass: 0x0108, type: 1, data: [1, 2, 3, 4, 5, 6, 7, 8])]
        let f = build(outer4 + [.udp(sport: 40000, dport: 6081), .geneve(vni: 0x123456, options: opts), .ethernet()] + inner4)
        #expect(f[42] & 0x3F == 5)                         // 20 bytes of options
        let d = decodeFrame(f)
        expectDecap(d, f, encap: .geneve, key: inner4Key, start: 50 + 20, synth: 0, inner: innerEth4, vni: 0x123456)
        #expect(d.encapMask == 1 << 2 && d.outer.dport == 6081)
    }

    @Test func geneveCarryingIP() {
        let f4 = build(outer4 + [.udp(sport: 40000, dport: 6081), .geneve(vni: 9)] + inner4)
        expectDecap(decodeFrame(f4), f4, encap: .geneve, key: inner4Key, start: 50, synth: 0x0800, inner: build(inner4), vni: 9)
        let f6 = build(outer4 + [.udp(sport: 40000, dport: 6081), .geneve(vni: 9, options: [GeneveOption()])] + inner6)
        expectDecap(decodeFrame(f6), f6, encap: .geneve, key: inner6Key, start: 58, synth: 0x86DD, inner: build(inner6), vni: 9)
    }

    @Test func geneveAroundVXLAN() {
        // AWS Gateway Load Balancer: GENEVE around the VXLAN of a traffic mirror
        let vx = build([.ipv4(src: "172.31.0.5", dst: "172.31.0.10"), .udp(sport: 50000, dport: 4789), .vxlan(vni: 42), .ethernet()] + inner4)
        let f = build(outer4 + [.udp(sport: 40000, dport: 6081), .geneve(vni: 7, proto: 0x0800), .payload(vx)])
        let d = decodeFrame(f)
        expectDecap(d, f, encap: .geneve, key: inner4Key, start: 50 + 20 + 8 + 8, synth: 0, inner: innerEth4, vni: 42, depth: 2)
        #expect(d.encapMask == 1 << 1 | 1 << 2)
        #expect(d.outer.dport == 6081 && d.outer.srcLo == FlowKey.v4Mapped(Addr.o4.value))   // the outermost tunnel
    }

    @Test func theOutermostVLANIsKept() {
        let f = build([.ethernet(), .vlan(id: 10), .ipv4(src: Addr.o4, dst: Addr.t4), .udp(sport: 1, dport: 4789), .vxlan(vni: 1),
                       .ethernet(), .vlan(id: 20)] + inner4)
        let d = decodeFrame(f)
        #expect(d.key == inner4Key && d.hasVLAN && d.vlan == 10)
        let innerOnly = decodeFrame(build(outer4 + [.udp(sport: 1, dport: 4789), .vxlan(vni: 1), .ethernet(), .vlan(id: 20)] + inner4))
        #expect(innerOnly.hasVLAN && innerOnly.vlan == 20)
    }

    @Test func geneveBadVersion() {
        let f = build(outer4 + [.udp(sport: 40000, dport: 6081), .geneve(vni: 1, version: 1), .ethernet()] + inner4)
        expectOuter(decodeFrame(f), f, error: .geneveBadVersion, key: flowKey(Addr.o4, 40000, Addr.t4, 6081, proto: 17))
    }

    @Test func geneveOptionsMustFillTheOptionArea() {
        let outerKey = flowKey(Addr.o4, 40000, Addr.t4, 6081, proto: 17)
        // one option of 12 bytes in an option area that says 8
        var f = build(outer4 + [.udp(sport: 40000, dport: 6081), .geneve(vni: 1, options: [GeneveOption(data: [1, 2, 3, 4, 5, 6, 7, 8])]), .ethernet()] + inner4)
        f[42] = 2
        expectOuter(decodeFrame(f), f, error: .geneveBadOptions, key: outerKey)
        // an option area longer than the packet
        var g = build(outer4 + [.udp(sport: 40000, dport: 6081), .geneve(vni: 1), .payload([0, 0, 0, 0])])
        g[42] = 0x3F
        expectOuter(decodeFrame(g), g, error: .geneveBadOptions, key: outerKey)
        // an option whose own length runs past the option area
        var h = build(outer4 + [.udp(sport: 40000, dport: 6081), .geneve(vni: 1, options: [GeneveOption()]), .ethernet()] + inner4)
        h[50 + 3] = 0x1F
        expectOuter(decodeFrame(h), h, error: .geneveBadOptions, key: outerKey)
    }

    @Test func geneveBadProtocol() {
        let f = build(outer4 + [.udp(sport: 40000, dport: 6081), .geneve(vni: 1, proto: 0x1234), .filler(40)])
        expectOuter(decodeFrame(f), f, error: .geneveBadProtocol, key: flowKey(Addr.o4, 40000, Addr.t4, 6081, proto: 17))
    }

    @Test func geneveTruncated() {
        let f = build(outer4 + [.udp(sport: 40000, dport: 6081), .payload([0, 0, 0x65, 0x58, 0, 0, 1])])
        expectOuter(decodeFrame(f), f, error: .geneveTruncated, key: flowKey(Addr.o4, 40000, Addr.t4, 6081, proto: 17))
    }
}

@Suite("Decoder: GRE, ERSPAN, PPTP, Aruba")
struct DecoderGRETests {
    static let combinations: [(Bool, Bool, Bool)] = [
        (false, false, false), (true, false, false), (false, true, false), (false, false, true),
        (true, true, false), (true, false, true), (false, true, true), (true, true, true),
    ]

    @Test(arguments: combinations)
    func everyFlagCombinationAndProtocol(c: Bool, k: Bool, s: Bool) {
        let h = 4 + (c ? 4 : 0) + (k ? 4 : 0) + (s ? 4 : 0)
        let gre = Layer.gre(checksum: c, key: k ? 0xABCD : nil, seq: s ? 7 : nil)
        let vni: UInt32 = k ? 0xABCD : 0
        let ip4 = build(outer4 + [gre] + inner4)
        expectDecap(decodeFrame(ip4), ip4, encap: .gre, key: inner4Key, start: 34 + h, synth: 0x0800, inner: build(inner4), vni: vni)
        let ip6 = build(outer4 + [gre] + inner6)
        expectDecap(decodeFrame(ip6), ip6, encap: .gre, key: inner6Key, start: 34 + h, synth: 0x86DD, inner: build(inner6), vni: vni)
        let teb = build(outer4 + [gre, .ethernet()] + inner4)
        expectDecap(decodeFrame(teb), teb, encap: .gre, key: inner4Key, start: 34 + h, synth: 0, inner: innerEth4, vni: vni)
        let mpls = build(outer4 + [gre, .mpls(labels: [16, 17])] + inner4)
        let dm = decodeFrame(mpls)
        expectDecap(dm, mpls, encap: .gre, key: inner4Key, start: 34 + h, synth: 0x8847,
                    inner: build([.mpls(labels: [16, 17])] + inner4), vni: vni)
        #expect(dm.l3 == 34 + h + 8)
    }

    @Test func greOuterFlowMetadata() {
        let f = build(outer6 + [.gre(key: 1)] + inner4)
        let d = decodeFrame(f)
        #expect(d.key == inner4Key && d.encap == .gre)
        #expect(d.outer.proto == 47 && d.outer.isIPv6 && d.outer.sport == 0 && d.outer.dport == 0)
        #expect(d.encapMask == 1 << 3)
    }

    @Test func greInGRE() {
        let f = build(outer4 + [.gre(key: 1), .ipv4(src: "172.16.0.1", dst: "172.16.0.2"), .gre(key: 2)] + inner4)
        let d = decodeFrame(f)
        expectDecap(d, f, encap: .gre, key: inner4Key, start: 34 + 8 + 20 + 8, synth: 0x0800, inner: build(inner4), vni: 2, depth: 2)
    }

    let greOuterKey = flowKey(Addr.o4, 0, Addr.t4, 0, proto: 47, kind: .addresses)

    /// Raw bytes as the GRE header of an IPv4 packet.
    func greRaw(_ bytes: [UInt8]) -> [Layer] { [.ethernet(), .ipv4(src: Addr.o4, dst: Addr.t4, proto: 47), .payload(bytes)] }

    @Test func greVersionTwo() {
        let f = build(outer4 + [.gre(version: 2)] + inner4)
        expectOuter(decodeFrame(f), f, error: .greBadVersion, key: greOuterKey)
    }

    @Test func greVersionOneThatIsNotPPTP() {
        let wrongProto = build(outer4 + [.gre(key: 1, version: 1)] + inner4)
        expectOuter(decodeFrame(wrongProto), wrongProto, error: .greBadVersion, key: greOuterKey)
        let noKey = build(outer4 + [.gre(version: 1, proto: 0x880B), .ppp()] + inner4)
        expectOuter(decodeFrame(noKey), noKey, error: .greBadVersion, key: greOuterKey)
    }

    @Test func greRouting() {
        let f = build(outer4 + [.gre(routing: true)] + inner4)
        expectOuter(decodeFrame(f), f, error: .greRouting, key: greOuterKey)
    }

    @Test func greUnknownProtocol() {
        let f = build(outer4 + [.gre(proto: 0x1234), .filler(30)])
        expectOuter(decodeFrame(f), f, error: .greUnknownProtocol, key: greOuterKey)
    }

    @Test func greTruncated() {
        let three = build(greRaw([0, 0, 8]))
        expectOuter(decodeFrame(three), three, error: .greTruncated, key: greOuterKey)
        let keyCut = build(greRaw([0x20, 0, 8, 0, 0, 0]))
        expectOuter(decodeFrame(keyCut), keyCut, error: .greTruncated, key: greOuterKey)
        let seqCut = build(greRaw([0x90, 0, 8, 0, 0, 0, 0, 0, 0, 0]))   // C and S: 12 bytes needed
        expectOuter(decodeFrame(seqCut), seqCut, error: .greTruncated, key: greOuterKey)
    }

    @Test func erspanTypeI() {
        let f = build(outer4 + [.gre(), .erspan1, .ethernet()] + inner4)
        let d = decodeFrame(f)
        expectDecap(d, f, encap: .erspan, key: inner4Key, start: 38, synth: 0, inner: innerEth4)
        #expect(d.encapMask == 1 << 4 && d.outer.proto == 47)
    }

    @Test func erspanTypeII() {
        let f = build(outer4 + [.gre(seq: 1), .erspan2(session: 99, vlan: 12), .ethernet()] + inner4)
        expectDecap(decodeFrame(f), f, encap: .erspan, key: inner4Key, start: 34 + 8 + 8, synth: 0, inner: innerEth4, vni: 99)
    }

    @Test func erspanTypeIIBadHeader() {
        var f = build(outer4 + [.gre(seq: 1), .erspan2(session: 99), .ethernet()] + inner4)
        f[42] = 0x20                                     // version 2 under 0x88BE
        expectOuter(decodeFrame(f), f, error: .erspanBadHeader, key: greOuterKey)
        let cut = build(outer4 + [.gre(seq: 1, proto: 0x88BE), .payload([0x10, 0, 0, 1])])
        expectOuter(decodeFrame(cut), cut, error: .erspanBadHeader, key: greOuterKey)
    }

    @Test(arguments: [false, true])
    func erspanTypeIII(platform: Bool) {
        let h = 12 + (platform ? 8 : 0)
        let f = build(outer4 + [.gre(seq: 1), .erspan3(session: 0x3FF, hardwareID: 0x3F, platform: platform), .ethernet()] + inner4)
        expectDecap(decodeFrame(f), f, encap: .erspan, key: inner4Key, start: 42 + h, synth: 0, inner: innerEth4, vni: 0x3FF)
    }

    @Test func erspanTypeIIICarryingIP() {
        let f4 = build(outer4 + [.gre(seq: 1), .erspan3(session: 5)] + inner4)
        expectDecap(decodeFrame(f4), f4, encap: .erspan, key: inner4Key, start: 54, synth: 0x0800, inner: build(inner4), vni: 5)
        let f6 = build(outer4 + [.gre(seq: 1), .erspan3(session: 5, platform: true)] + inner6)
        expectDecap(decodeFrame(f6), f6, encap: .erspan, key: inner6Key, start: 62, synth: 0x86DD, inner: build(inner6), vni: 5)
    }

    @Test func erspanTypeIIIBadHeader() {
        let badType = build(outer4 + [.gre(seq: 1), .erspan3(session: 5, frameType: 5), .ethernet()] + inner4)
        expectOuter(decodeFrame(badType), badType, error: .erspanBadHeader, key: greOuterKey)
        var badVersion = build(outer4 + [.gre(seq: 1), .erspan3(session: 5), .ethernet()] + inner4)
        badVersion[42] = 0x10
        expectOuter(decodeFrame(badVersion), badVersion, error: .erspanBadHeader, key: greOuterKey)
        let cut = build(outer4 + [.gre(seq: 1, proto: 0x22EB), .payload([0x20, 0, 0, 5, 0, 0, 0, 0])])
        expectOuter(decodeFrame(cut), cut, error: .erspanBadHeader, key: greOuterKey)
        let platformCut = Array(build(outer4 + [.gre(seq: 1), .erspan3(session: 5, platform: true)]).prefix(42 + 16))
        expectOuter(decodeFrame(platformCut), platformCut, error: .erspanBadHeader, key: greOuterKey)
    }

    @Test func pptp() {
        let f = build(outer4 + [.pptp(callID: 3, seq: 1, ack: 2), .ppp()] + inner4)
        let d = decodeFrame(f)
        expectDecap(d, f, encap: .pptp, key: inner4Key, start: 34 + 16 + 4, synth: 0x0800, inner: build(inner4), vni: 3)
        #expect(d.encapMask == 1 << 9)
        let f6 = build(outer4 + [.pptp(callID: 4, seq: 1), .ppp()] + inner6)
        expectDecap(decodeFrame(f6), f6, encap: .pptp, key: inner6Key, start: 34 + 12 + 4, synth: 0x86DD, inner: build(inner6), vni: 4)
    }

    @Test func pptpCompressedHeaders() {
        let noAC = build(outer4 + [.pptp(callID: 3, seq: 1), .ppp(addressControl: false, compressed: true)] + inner4)
        expectDecap(decodeFrame(noAC), noAC, encap: .pptp, key: inner4Key, start: 34 + 12 + 1, synth: 0x0800, inner: build(inner4), vni: 3)
        let ac = build(outer4 + [.pptp(callID: 3), .ppp(compressed: true)] + inner4)
        expectDecap(decodeFrame(ac), ac, encap: .pptp, key: inner4Key, start: 34 + 8 + 3, synth: 0x0800, inner: build(inner4), vni: 3)
        let noAC2 = build(outer4 + [.pptp(callID: 3), .ppp(addressControl: false)] + inner6)
        expectDecap(decodeFrame(noAC2), noAC2, encap: .pptp, key: inner6Key, start: 34 + 8 + 2, synth: 0x86DD, inner: build(inner6), vni: 3)
    }

    @Test func pptpWithoutIPIsItsOuterFlow() {
        let ackOnly = build(outer4 + [.pptp(callID: 3, ack: 9)])
        expectOuter(decodeFrame(ackOnly), ackOnly, error: .none, key: greOuterKey)
        let lcp = build(outer4 + [.pptp(callID: 3, seq: 1), .ppp(proto: 0xC021), .filler(10)])
        expectOuter(decodeFrame(lcp), lcp, error: .none, key: greOuterKey)
        let cut = build(greRaw([0x30, 0x81, 0x88, 0x0B, 0, 0, 0]))
        expectOuter(decodeFrame(cut), cut, error: .greTruncated, key: greOuterKey)
    }

    @Test func arubaAMSDU() throws {
        let f = build(outer4 + [.gre(proto: 0x8240), .wifiData(),
                                .amsdu([AMSDUSubframe(da: .b, sa: .a, packet: build(inner4)), AMSDUSubframe(da: .a, sa: .b, packet: build(inner6))])])
        let d0 = decodeFrame(f)
        let sub0 = 34 + 4 + 26
        #expect(d0.error == .none && d0.key == inner4Key && d0.encap == .aruba && d0.depth == 1)
        #expect(d0.encapMask == 1 << 10)
        #expect(d0.start == sub0 + 14 + 8 && d0.synthType == 0x0800 && d0.synthDst == sub0 && d0.synthSrc == sub0 + 6)
        #expect(deliveredBytes(f, d0) == innerEth4)
        #expect(d0.nextSubframe == 1)
        let d1 = decodeFrame(f, subframe: 1)
        #expect(d1.key == inner6Key && d1.encap == .aruba && d1.nextSubframe == 0)
        #expect(deliveredBytes(f, d1) == build([.ethernet(dst: .a, src: .b)] + inner6))
    }

    @Test(arguments: [UInt16(0x8200), 0x8210, 0x82F0, 0x8300, 0x8350])
    func arubaProtocolRange(proto: UInt16) {
        let f = build(outer4 + [.gre(proto: proto), .wifiData(sa: .a, da: .b), .llcSnap()] + inner4)
        let d = decodeFrame(f)
        #expect(d.encap == .aruba && d.key == inner4Key)
        #expect(d.start == 34 + 4 + 26 + 8 && d.synthType == 0x0800)
        #expect(deliveredBytes(f, d) == innerEth4)
    }

    @Test func greInUDP() {
        let f = build(outer4 + [.udp(sport: 40000, dport: 4754), .gre()] + inner4)
        let d = decodeFrame(f)
        expectDecap(d, f, encap: .greUDP, key: inner4Key, start: 34 + 8 + 4, synth: 0x0800, inner: build(inner4))
        #expect(d.outer.proto == 17 && d.outer.sport == 40000 && d.outer.dport == 4754 && d.encapMask == 1 << 11)
        let teb = build(outer4 + [.udp(sport: 40000, dport: 4754), .gre(key: 8), .ethernet()] + inner6)
        expectDecap(decodeFrame(teb), teb, encap: .greUDP, key: inner6Key, start: 34 + 8 + 8, synth: 0, inner: innerEth6, vni: 8)
        let bad = build(outer4 + [.udp(sport: 40000, dport: 4754), .gre(version: 3)] + inner4)
        expectOuter(decodeFrame(bad), bad, error: .greBadVersion, key: flowKey(Addr.o4, 40000, Addr.t4, 4754, proto: 17))
    }
}

@Suite("Decoder: IP-in-IP, GTP-U, Teredo, AYIYA")
struct DecoderIPTunnelTests {
    @Test func ipInIP() {
        let f44 = build(outer4 + inner4)
        let d = decodeFrame(f44)
        expectDecap(d, f44, encap: .ipip, key: inner4Key, start: 34, synth: 0x0800, inner: build(inner4))
        #expect(d.outer.proto == 4 && d.encapMask == 1 << 5 && d.l3 == 34)
        let f64 = build(outer4 + inner6)
        let d64 = decodeFrame(f64)
        expectDecap(d64, f64, encap: .ipip, key: inner6Key, start: 34, synth: 0x86DD, inner: build(inner6))
        #expect(d64.outer.proto == 41)
        let f46 = build(outer6 + inner4)
        let d46 = decodeFrame(f46)
        expectDecap(d46, f46, encap: .ipip, key: inner4Key, start: 54, synth: 0x0800, inner: build(inner4))
        #expect(d46.outer.isIPv6 && d46.outer.proto == 4)
        let f66 = build(outer6 + inner6)
        expectDecap(decodeFrame(f66), f66, encap: .ipip, key: inner6Key, start: 54, synth: 0x86DD, inner: build(inner6))
    }

    @Test func ipInIPWithABrokenInnerHeader() {
        var f = build(outer4 + inner4)
        f[34] = 0x60                                      // protocol 4 announces IPv4, the header says 6
        let d = decodeFrame(f)
        #expect(d.error == .badIPv4Header && d.depth == 1)
        #expect(d.key == flowKey(Addr.o4, 0, Addr.t4, 0, proto: 4, kind: .addresses))
        #expect(d.deliveredL3 == nil)
    }

    let gtpPorts: [Layer] = [.udp(sport: 2152, dport: 2152)]

    @Test func gtpu() {
        let f = build(outer4 + gtpPorts + [.gtpu(teid: 0x1234_5678)] + inner4)
        let d = decodeFrame(f)
        expectDecap(d, f, encap: .gtpu, key: inner4Key, start: 50, synth: 0x0800, inner: build(inner4), vni: 0x1234_5678)
        #expect(d.encapMask == 1 << 6)
        let f6 = build(outer4 + gtpPorts + [.gtpu(teid: 1)] + inner6)
        expectDecap(decodeFrame(f6), f6, encap: .gtpu, key: inner6Key, start: 50, synth: 0x86DD, inner: build(inner6), vni: 1)
    }

    @Test func gtpuOptionalFields() {
        for layer in [Layer.gtpu(teid: 1, seq: 9), .gtpu(teid: 1, npdu: 3), .gtpu(teid: 1, seq: 1, npdu: 2)] {
            let f = build(outer4 + gtpPorts + [layer] + inner4)
            expectDecap(decodeFrame(f), f, encap: .gtpu, key: inner4Key, start: 54, synth: 0x0800, inner: build(inner4), vni: 1)
        }
        let ext = build(outer4 + gtpPorts + [.gtpu(teid: 1, extensions: [GTPExtension(), GTPExtension(type: 0x40, content: [1, 2, 3, 4, 5, 6])])] + inner6)
        expectDecap(decodeFrame(ext), ext, encap: .gtpu, key: inner6Key, start: 54 + 4 + 8, synth: 0x86DD, inner: build(inner6), vni: 1)
    }

    @Test func gtpuLengthBoundsThePayload() {
        var f = build(outer4 + gtpPorts + [.gtpu(teid: 1)] + inner4) + [7, 7, 7, 7]
        f[16] = UInt8((f.count - 14) >> 8); f[17] = UInt8((f.count - 14) & 0xFF)   // IPv4 total
        f[38] = UInt8((f.count - 34) >> 8); f[39] = UInt8((f.count - 34) & 0xFF)   // UDP length
        let d = decodeFrame(f)
        #expect(d.key == inner4Key && d.end == f.count - 4)
    }

    @Test func gtpSignallingIsPlainUDP() {
        let echo = build(outer4 + gtpPorts + [.gtpu(teid: 0, messageType: 1), .filler(4)])
        expectOuter(decodeFrame(echo), echo, error: .none, key: flowKey(Addr.o4, 2152, Addr.t4, 2152, proto: 17))
        let empty = build(outer4 + gtpPorts + [.gtpu(teid: 5)])
        expectOuter(decodeFrame(empty), empty, error: .none, key: flowKey(Addr.o4, 2152, Addr.t4, 2152, proto: 17))
    }

    @Test func gtpBadHeader() {
        let key = flowKey(Addr.o4, 2152, Addr.t4, 2152, proto: 17)
        var v2 = build(outer4 + gtpPorts + [.gtpu(teid: 1)] + inner4)
        v2[42] = 0x48                                     // version 2
        expectOuter(decodeFrame(v2), v2, error: .gtpBadHeader, key: key)
        var prime = build(outer4 + gtpPorts + [.gtpu(teid: 1)] + inner4)
        prime[42] = 0x20                                  // GTP' (PT = 0)
        expectOuter(decodeFrame(prime), prime, error: .gtpBadHeader, key: key)
        var zeroExt = build(outer4 + gtpPorts + [.gtpu(teid: 1, extensions: [GTPExtension()])] + inner4)
        zeroExt[54] = 0                                   // extension length 0
        expectOuter(decodeFrame(zeroExt), zeroExt, error: .gtpBadHeader, key: key)
        var longExt = build(outer4 + gtpPorts + [.gtpu(teid: 1, extensions: [GTPExtension()])] + inner4)
        longExt[54] = 200                                 // extension past the end
        expectOuter(decodeFrame(longExt), longExt, error: .gtpBadHeader, key: key)
        let short = build(outer4 + gtpPorts + [.payload([0x30, 0xFF, 0, 0])])
        expectOuter(decodeFrame(short), short, error: .gtpBadHeader, key: key)
        let optCut = build(outer4 + gtpPorts + [.payload([0x32, 0xFF, 0, 2, 0, 0, 0, 1, 0, 0])])
        expectOuter(decodeFrame(optCut), optCut, error: .gtpBadHeader, key: key)
    }

    @Test func gtpEndlessExtensionChain() {
        // a chain of more than 15 extension headers is refused
        let ext: [GTPExtension] = Array(repeating: GTPExtension(type: 0x40, content: [0, 0]), count: 17)
        let f = build(outer4 + gtpPorts + [.gtpu(teid: 1, extensions: ext)] + inner4)
        #expect(decodeFrame(f).error == .gtpBadHeader)
        let ok = build(outer4 + gtpPorts + [.gtpu(teid: 1, extensions: Array(ext.prefix(15)))] + inner4)
        #expect(decodeFrame(ok).key == inner4Key)
    }

    @Test func gtpBadPayload() {
        let f = build(outer4 + gtpPorts + [.gtpu(teid: 1), .payload([0x55, 0, 0, 0])])
        expectOuter(decodeFrame(f), f, error: .gtpBadPayload, key: flowKey(Addr.o4, 2152, Addr.t4, 2152, proto: 17))
    }

    let teredoPorts: [Layer] = [.udp(sport: 3544, dport: 50000)]

    @Test func teredo() {
        let f = build(outer4 + teredoPorts + [.teredo()] + inner6)
        let d = decodeFrame(f)
        expectDecap(d, f, encap: .teredo, key: inner6Key, start: 42, synth: 0x86DD, inner: build(inner6))
        #expect(d.encapMask == 1 << 7)
        let origin = build(outer4 + teredoPorts + [.teredo(origin: TeredoOrigin(port: 3000, address: "198.51.100.1"))] + inner6)
        expectDecap(decodeFrame(origin), origin, encap: .teredo, key: inner6Key, start: 50, synth: 0x86DD, inner: build(inner6))
        let auth = build(outer4 + teredoPorts + [.teredo(auth: TeredoAuth(clientID: [1, 2], authValue: [3, 4, 5, 6]),
                                                          origin: TeredoOrigin(port: 1, address: "198.51.100.1"))] + inner6)
        expectDecap(decodeFrame(auth), auth, encap: .teredo, key: inner6Key, start: 42 + 19 + 8, synth: 0x86DD, inner: build(inner6))
    }

    @Test func teredoBubble() {
        let f = build(outer4 + teredoPorts + [.teredo(), .ipv6(src: Addr.c6, dst: Addr.s6)])
        let d = decodeFrame(f)
        #expect(d.encap == .teredo && d.key == flowKey(Addr.c6, 0, Addr.s6, 0, proto: 59, kind: .addresses))
    }

    @Test func notTeredoIsPlainUDP() {
        let key = flowKey(Addr.o4, 3544, Addr.t4, 50000, proto: 17)
        let random = build(outer4 + teredoPorts + [.filler(60)])
        expectOuter(decodeFrame(random), random, error: .none, key: key)
        // an IPv6 packet that does not fill the datagram
        let extra = build(outer4 + teredoPorts + [.teredo(), .payload(build(inner6) + [0])])
        expectOuter(decodeFrame(extra), extra, error: .none, key: key)
        // an authentication header longer than the datagram
        let auth = build(outer4 + teredoPorts + [.payload([0, 1, 200, 200])])
        expectOuter(decodeFrame(auth), auth, error: .none, key: key)
    }

    /// Teredo between a client and a relay uses ephemeral ports on both sides: lb finds it
    /// by shape (one IPv6 packet filling the datagram, a 2001:0::/32 address), as Zeek does.
    @Test func teredoOnAnyPortByShape() {
        let teredoClient: IPv6 = "2001:0:4137:9e50:8000:f12a:b9c8:2815"
        let inner: [Layer] = [.ipv6(src: teredoClient, dst: Addr.s6), .tcp(sport: 1286, dport: 80), .filler(10)]
        let ports: [Layer] = [.udp(sport: 3797, dport: 32900)]
        let f = build(outer4 + ports + [.teredo()] + inner)
        let d = decodeFrame(f)
        #expect(d.encap == .teredo && d.depth == 1)
        #expect(d.key == flowKey(teredoClient, 1286, Addr.s6, 80, proto: 6))
        // The same shape without a Teredo address is ordinary UDP.
        let plain = build(outer4 + ports + [.teredo()] + inner6)
        #expect(decodeFrame(plain).depth == 0)
        // And it can be switched off.
        var c = DecodeConfig()
        c.teredoAnyPort = false
        let off = f.withUnsafeBytes { Decoder(c).decode($0, link: .ethernet) }
        #expect(off.depth == 0)
    }

    let ayiyaPorts: [Layer] = [.udp(sport: 5072, dport: 5072)]

    @Test func ayiya() {
        let f = build(outer4 + ayiyaPorts + [.ayiya()] + inner6)
        let d = decodeFrame(f)
        expectDecap(d, f, encap: .ayiya, key: inner6Key, start: 42 + 44, synth: 0x86DD, inner: build(inner6))
        #expect(d.encapMask == 1 << 8)
        let f4 = build(outer4 + ayiyaPorts + [.ayiya(identity: [1, 2, 3, 4], signature: [])] + inner4)
        expectDecap(decodeFrame(f4), f4, encap: .ayiya, key: inner4Key, start: 42 + 12, synth: 0x0800, inner: build(inner4))
    }

    @Test func ayiyaOtherOpcodesArePlainUDP() {
        let f = build(outer4 + ayiyaPorts + [.ayiya(opcode: 0)] + inner6)
        expectOuter(decodeFrame(f), f, error: .none, key: flowKey(Addr.o4, 5072, Addr.t4, 5072, proto: 17))
    }

    @Test func ayiyaBadHeader() {
        let key = flowKey(Addr.o4, 5072, Addr.t4, 5072, proto: 17)
        let udpInside = build(outer4 + ayiyaPorts + [.ayiya(nextHeader: 17), .udp(sport: 1, dport: 2)])
        expectOuter(decodeFrame(udpInside), udpInside, error: .ayiyaBadHeader, key: key)
        let cut = Array(build(outer4 + ayiyaPorts + [.ayiya()] + inner6).prefix(42 + 30))
        expectOuter(decodeFrame(cut), cut, error: .ayiyaBadHeader, key: key)
        let short = build(outer4 + ayiyaPorts + [.payload([0x41, 0x52, 0x11, 41])])
        expectOuter(decodeFrame(short), short, error: .ayiyaBadHeader, key: key)
    }
}

@Suite("Decoder: nesting and --decap keep")
struct DecoderNestingTests {
    /// n IPv4-in-IPv4 headers around the inner packet.
    func nested(_ n: Int) -> [UInt8] {
        build([.ethernet()] + (0..<n).map { i in Layer.ipv4(src: IPv4(0xC000_0200 | UInt32(i)), dst: Addr.t4) } + inner4)
    }

    @Test func defaultDepthIsEight() {
        let eight = decodeFrame(nested(8))                  // 8 tunnels around the innermost header
        #expect(eight.error == .none && eight.depth == 8 && eight.key == inner4Key)
        let nine = decodeFrame(nested(9))
        #expect(nine.error == .tunnelTooDeep && nine.depth == 8)
        // delivered at depth 8: the packet that starts with the 9th outer header, hashed on it
        #expect(nine.start == 14 + 8 * 20 && nine.synthType == 0x0800)
        #expect(nine.key == flowKey("192.0.2.8", 0, Addr.t4, 0, proto: 4, kind: .addresses))
    }

    @Test func configuredDepth() {
        let vx = { (inner: [Layer]) -> [Layer] in [.ipv4(src: Addr.o4, dst: Addr.t4), .udp(sport: 1, dport: 4789), .vxlan(vni: 1), .ethernet()] + inner }
        let f = build([.ethernet()] + vx(vx(vx(inner4))))
        let d2 = decodeFrame(f, config: DecodeConfig(maxDepth: 2))
        #expect(d2.error == .tunnelTooDeep && d2.depth == 2)
        #expect(d2.start == 2 * 50 && d2.key == flowKey(Addr.o4, 1, Addr.t4, 4789, proto: 17))
        let d3 = decodeFrame(f, config: DecodeConfig(maxDepth: 3))
        #expect(d3.error == .none && d3.depth == 3 && d3.key == inner4Key)
        let d0 = decodeFrame(f, config: DecodeConfig(maxDepth: 0))
        expectOuter(d0, f, error: .tunnelTooDeep, key: flowKey(Addr.o4, 1, Addr.t4, 4789, proto: 17))
    }

    /// n VXLAN layers, each inner Ethernet header with `tags` VLAN tags, around inner4.
    func vxlanTagged(_ n: Int, tags: Int) -> [UInt8] {
        let vlans = Array(repeating: Layer.vlan(id: 7), count: tags)
        var layers: [Layer] = [.ethernet()] + vlans
        for _ in 0..<n {
            layers += [.ipv4(src: Addr.o4, dst: Addr.t4), .udp(sport: 1, dport: 4789), .vxlan(vni: 1), .ethernet()] + vlans
        }
        return build(layers + inner4)
    }

    /// The documented limits are the real ones: any nesting within --max-depth (up to its
    /// largest value, 32), with 8 tags on every Ethernet header, decodes to the innermost flow;
    /// one level more stops at the limit, counted as tunnel_too_deep.
    @Test(arguments: [1, 7, 8, 16, 32])
    func deepTaggedNestingWithinTheLimit(depth: Int) {
        let within = decodeFrame(vxlanTagged(depth, tags: 8), config: DecodeConfig(maxDepth: depth))
        #expect(within.error == .none && Int(within.depth) == depth && within.key == inner4Key, "\(within.error.name) at \(within.depth)")
        let deeper = decodeFrame(vxlanTagged(depth + 1, tags: 8), config: DecodeConfig(maxDepth: depth))
        #expect(deeper.error == .tunnelTooDeep && Int(deeper.depth) == depth, "\(deeper.error.name) at \(deeper.depth)")
        let muchDeeper = decodeFrame(vxlanTagged(depth + 20, tags: 8), config: DecodeConfig(maxDepth: depth))
        #expect(muchDeeper.error == .tunnelTooDeep && Int(muchDeeper.depth) == depth)
    }

    @Test func keepDeliversTheWholeFrame() {
        let keep = DecodeConfig(keepEncapsulation: true)
        let vx = build(outer4 + [.udp(sport: 40000, dport: 4789), .vxlan(vni: 77), .ethernet()] + inner4)
        let d = decodeFrame(vx, config: keep)
        #expect(d.key == inner4Key && d.depth == 1 && d.encap == .vxlan && d.vni == 77)
        #expect(d.start == 0 && d.end == vx.count && d.synthType == 0)
        #expect(d.l3 == 64 && d.deliveredL3 == 64)
        let gre = build(outer4 + [.gre(key: 3)] + inner6)
        let dg = decodeFrame(gre, config: keep)
        #expect(dg.key == inner6Key && dg.start == 0 && dg.synthType == 0 && deliveredBytes(gre, dg) == gre)
        let trimmed = decodeFrame(vx + [0, 0, 0], config: keep)
        #expect(trimmed.end == vx.count + 3)             // the original frame, padding and all
    }

    @Test func keepStillConvertsTheLinkLayer() {
        let f = build([.sll()] + outer4.dropFirst() + inner4)
        let d = decodeFrame(f, link: .linuxSLL, config: DecodeConfig(keepEncapsulation: true))
        #expect(d.key == inner4Key && d.depth == 1)
        #expect(d.start == 16 && d.synthType == 0x0800 && d.synthSrc == 6)
        let raw = build([.ipv4(src: Addr.o4, dst: Addr.t4)] + inner6)
        let dr = decodeFrame(raw, link: .raw, config: DecodeConfig(keepEncapsulation: true))
        #expect(dr.key == inner6Key && dr.start == 0 && dr.synthType == 0x0800)
    }

    @Test func keepWithAMSDUDeliversTheFrameOnce() {
        let f = build(outer4 + [.gre(proto: 0x8200), .wifiData(),
                                .amsdu([AMSDUSubframe(packet: build(inner4)), AMSDUSubframe(packet: build(inner6))])])
        let d = decodeFrame(f, config: DecodeConfig(keepEncapsulation: true))
        #expect(d.key == inner4Key && d.start == 0 && d.end == f.count && d.nextSubframe == 0)
    }

    @Test func keepOnTheOutermostWifiStillSplitsSubframes() {
        let f = build(.wifiData(), .amsdu([AMSDUSubframe(packet: build(inner4)), AMSDUSubframe(packet: build(inner6))]))
        let d = decodeFrame(f, link: .ieee80211, config: DecodeConfig(keepEncapsulation: true))
        #expect(d.key == inner4Key && d.nextSubframe == 1 && d.synthType == 0x0800)
    }
}
