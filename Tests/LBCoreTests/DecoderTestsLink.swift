import LBCore
import LBGen
import Testing

// Link layers: Ethernet with tags, MPLS, PPPoE, LLC/SNAP, ARP; raw IP, Linux cooked, BSD
// loopback, 802.11 (with A-MSDU) and radiotap.

@Suite("Decoder: Ethernet and what rides on it")
struct DecoderLinkEthernetTests {
    @Test func plainTCP() {
        let f = build([.ethernet()] + inner4)
        let d = decodeFrame(f)
        #expect(d.key == inner4Key)
        #expect(d.start == 0 && d.end == f.count && d.synthType == 0)
        #expect(d.l3 == 14 && d.deliveredL3 == 14)
        #expect(d.depth == 0 && d.encap == .none && d.encapMask == 0 && d.vni == 0)
        #expect(d.error == .none && !d.nonIP && !d.hasVLAN && !d.isFragment && d.nextSubframe == 0)
        #expect(deliveredBytes(f, d) == f)
    }

    @Test func paddedShortFrameIsDeliveredWhole() {
        var f = build(.ethernet(), .ipv4(src: Addr.c4, dst: Addr.s4), .udp(sport: 1, dport: 2))
        f += Array(repeating: 0xEE, count: 60 - f.count)
        let d = decodeFrame(f)
        #expect(d.key == flowKey(Addr.c4, 1, Addr.s4, 2, proto: 17))
        #expect(d.end == 60 && d.error == .none)
    }

    @Test func qinqRecordsTheOuterVLAN() {
        let f = build([.ethernet(), .vlan(id: 10, tpid: 0x88A8), .vlan(id: 20)] + inner4)
        let d = decodeFrame(f)
        #expect(d.key == inner4Key)
        #expect(d.hasVLAN && d.vlan == 10)
        #expect(d.l3 == 22 && d.start == 0)
    }

    @Test(arguments: [UInt16(0x8100), 0x88A8, 0x9100, 0x9200])
    func everyTagEtherType(tpid: UInt16) {
        let d = decodeFrame(build([.ethernet(), .vlan(id: 4095, pcp: 7, tpid: tpid)] + inner6))
        #expect(d.key == inner6Key && d.vlan == 4095 && d.l3 == 18)
    }

    @Test func vnTagSandwich() {
        // as in zeek-corpus vntag_vlan_sandwich_clean.pcap: VLAN, VN-Tag, VLAN
        let f = build([.ethernet(), .vlan(id: 250), .vntag(dvif: 3, svif: 5), .vlan(id: 251)] + inner4)
        let d = decodeFrame(f)
        #expect(d.key == inner4Key)
        #expect(d.l3 == 14 + 4 + 6 + 4)
        #expect(d.vlan == 250)
    }

    @Test func vlanAfterVNTagIsTheVLAN() {
        let d = decodeFrame(build([.ethernet(), .vntag(), .vlan(id: 300)] + inner4))
        #expect(d.key == inner4Key && d.l3 == 24)
        #expect(d.hasVLAN && d.vlan == 300)
    }

    @Test func eightTagsAreFineNineAreTooMany() {
        let eight = build([.ethernet()] + (1...8).map { Layer.vlan(id: UInt16($0)) } + inner4)
        let d8 = decodeFrame(eight)
        #expect(d8.key == inner4Key && d8.error == .none && d8.vlan == 1)
        let nine = build([.ethernet()] + (1...9).map { Layer.vlan(id: UInt16($0)) } + inner4)
        let d9 = decodeFrame(nine)
        #expect(d9.error == .tooManyTags)
        #expect(d9.key.kind == .link && d9.l3 == -1)
        #expect(d9.start == 0 && d9.end == nine.count)
    }

    @Test func truncatedTag() {
        let f = Array(build(.ethernet(type: 0x8100), .payload([0, 5])))
        let d = decodeFrame(f)
        #expect(d.error == .truncatedLink)
        #expect(d.key.kind == .link)
    }

    @Test(arguments: [0, 1, 13])
    func truncatedEthernet(length: Int) {
        let f = Array(build([.ethernet()] + inner4).prefix(length))
        let d = decodeFrame(f)
        #expect(d.error == .truncatedLink)
        #expect(d.key.kind == .none && d.start == 0 && d.end == length && d.l3 == -1)
    }

    @Test func nonIPEtherTypeHashesOnMACs() {
        let f = build(.ethernet(dst: "01:80:c2:00:00:0e", src: "02:00:00:00:00:0a", type: 0x88CC), .filler(40))
        let d = decodeFrame(f)
        #expect(d.nonIP && d.error == .none && d.l3 == -1)
        #expect(d.key.kind == .link)
        #expect(d.key.srcHi == 1 << 63 && d.key.srcLo == 0x0200_0000_000A)
        #expect(d.key.dstLo == 0x0180_C200_000E)
        // the other direction hashes alike
        let back = decodeFrame(build(.ethernet(dst: "02:00:00:00:00:0a", src: "01:80:c2:00:00:0e", type: 0x88CC), .filler(40)))
        #expect(hashOf(back.key) == hashOf(d.key))
    }

    @Test func mplsLabelStack() {
        let f = build([.ethernet(), .mpls(labels: [100, 200, 300])] + inner4)
        let d = decodeFrame(f)
        #expect(d.key == inner4Key && d.l3 == 26 && d.start == 0 && d.end == f.count && d.error == .none)
        let d6 = decodeFrame(build([.ethernet(), .mpls(labels: [16])] + inner6))
        #expect(d6.key == inner6Key && d6.l3 == 18)
    }

    @Test func mplsUnicastAndMulticastEtherTypes() {
        let f = build([.ethernet(type: 0x8848), .mpls(labels: [100])] + inner4)
        #expect(decodeFrame(f).key == inner4Key)
    }

    @Test func mplsStackLimit() {
        let ok = decodeFrame(build([.ethernet(), .mpls(labels: Array(1...16))] + inner4))
        #expect(ok.key == inner4Key && ok.error == .none)
        let deep = decodeFrame(build([.ethernet(), .mpls(labels: Array(1...17))] + inner4))
        #expect(deep.error == .tooManyTags)
    }

    @Test func mplsWithoutBottomOfStack() {
        // labels that never set the S bit run into the end of the frame
        var f = build(.ethernet(type: 0x8847))
        f += [0x00, 0x06, 0x40, 0x40, 0x00, 0x06, 0x40, 0x40]
        #expect(decodeFrame(f).error == .truncatedLink)
    }

    @Test func ethernetOverMPLSWithControlWord() {
        let innerFrame = build([.ethernet(dst: "02:00:00:00:01:01", src: "02:00:00:00:01:02")] + inner4)
        let f = build(.ethernet(), .mpls(labels: [100], controlWord: true), .payload(innerFrame))
        let d = decodeFrame(f)
        #expect(d.key == inner4Key)
        #expect(d.l3 == 14 + 4 + 4 + 14)
        #expect(d.start == 0 && d.depth == 0)      // MPLS is not a tunnel lb removes
    }

    @Test func mplsNonIPPayload() {
        let d = decodeFrame(build(.ethernet(), .mpls(labels: [3]), .payload([0x55, 1, 2, 3])))
        #expect(d.nonIP && d.l3 == -1)
    }

    @Test func pppoeSession() {
        let f = build([.ethernet(), .pppoe(session: 0x1234)] + inner6)
        let d = decodeFrame(f)
        #expect(d.key == inner6Key && d.l3 == 22 && d.error == .none && d.start == 0)
        let d4 = decodeFrame(build([.ethernet(), .pppoe()] + inner4))
        #expect(d4.key == inner4Key)
    }

    @Test func pppoeLengthBoundsTheDatagram() {
        // a PPPoE length shorter than the frame: the UDP header beyond it is not read
        var h = IPv4Header(src: Addr.c4, dst: Addr.s4, proto: 17)
        h.totalLength = 28                            // claims the UDP header that follows
        var f = build(.ethernet(), .pppoe(), .ipv4(h))
        f += [0x12, 0x34, 0x00, 0x35, 0, 8, 0, 0]   // a UDP header outside the PPPoE payload
        let d = decodeFrame(f)
        #expect(d.key == flowKey(Addr.c4, 0, Addr.s4, 0, proto: 17, kind: .addresses))
        #expect(d.error == .truncatedL4)
    }

    @Test func pppoeControlProtocolIsNonIP() {
        let d = decodeFrame(build(.ethernet(), .pppoe(pppProtocol: 0xC021), .filler(10)))
        #expect(d.nonIP && d.key.kind == .link && d.error == .none)
    }

    @Test func pppoeTruncated() {
        let d = decodeFrame(build(.ethernet(type: 0x8864), .payload([0x11, 0, 0, 1])))
        #expect(d.error == .truncatedLink)
    }

    @Test func llcSnap() {
        let f = build([.ethernet(), .llcSnap()] + inner4)
        #expect(f[12] == 0 && Int(f[13]) == f.count - 14)           // an 802.3 length
        let d = decodeFrame(f)
        #expect(d.key == inner4Key && d.l3 == 22)
    }

    @Test func plainLLCIsNonIP() {
        // spanning tree: 802.3 length, LLC 42 42 03
        let d = decodeFrame(build(.ethernet(dst: "01:80:c2:00:00:00", type: 38), .payload([0x42, 0x42, 0x03] + Array(repeating: 0, count: 35))))
        #expect(d.nonIP && d.key.kind == .link && d.error == .none)
    }

    @Test func arpRequestAndReplyHashAlike() {
        let req = decodeFrame(build(.ethernet(dst: .broadcast), .arp(senderIP: Addr.c4, targetIP: Addr.s4)))
        #expect(req.nonIP && req.l3 == -1)
        #expect(req.key == flowKey(Addr.c4, 0, Addr.s4, 0, proto: 0, kind: .addresses))
        let rep = decodeFrame(build(.ethernet(dst: .a, src: .b),
                                    .arp(operation: 2, senderMAC: .b, senderIP: Addr.s4, targetMAC: .a, targetIP: Addr.c4)))
        #expect(hashOf(rep.key) == hashOf(req.key))
    }

    @Test func arpForOtherProtocolsHashesOnMACs() {
        var f = build(.ethernet(dst: .broadcast), .arp(senderIP: Addr.c4, targetIP: Addr.s4))
        f[14 + 3] = 0x01                              // protocol type 0x0801: not IPv4
        let d = decodeFrame(f)
        #expect(d.nonIP && d.key.kind == .link)
    }
}

@Suite("Decoder: other link types")
struct DecoderLinkTypeTests {
    @Test(arguments: [LinkType.raw, .ipv4, .ipv6])
    func rawIP(link: LinkType) {
        let p4 = build(inner4), p6 = build(inner6)
        let d4 = decodeFrame(p4, link: link)
        #expect(d4.key == inner4Key && d4.synthType == 0x0800 && d4.start == 0 && d4.end == p4.count && d4.l3 == 0)
        #expect(d4.deliveredL3 == 14 && d4.deliveredLength == p4.count + 14)
        #expect(deliveredBytes(p4, d4) == zeroEthernet(0x0800) + p4)
        let d6 = decodeFrame(p6, link: link)
        #expect(d6.key == inner6Key && d6.synthType == 0x86DD && d6.l3 == 0)
    }

    @Test func rawBadVersion() {
        var p = build(inner4)
        p[0] = 0x55
        let d = decodeFrame(p, link: .raw)
        #expect(d.error == .badIPVersion && d.nonIP && d.l3 == -1)
        let empty = decodeFrame([], link: .raw)
        #expect(empty.error == .truncatedIPv4 && empty.start == 0 && empty.end == 0)
    }

    @Test func linuxCookedV1() {
        let f = build([.sll(packetType: 4, address: "02:00:00:00:00:0a")] + inner4)
        let d = decodeFrame(f, link: .linuxSLL)
        #expect(d.key == inner4Key)
        #expect(d.start == 16 && d.synthType == 0x0800 && d.synthSrc == 6 && d.synthDst == -1 && d.l3 == 16)
        #expect(deliveredBytes(f, d) == [0, 0, 0, 0, 0, 0] + MAC.a.bytes + [0x08, 0x00] + build(inner4))
    }

    @Test func linuxCookedV2() {
        let f = build([.sll2(address: .b)] + inner6)
        let d = decodeFrame(f, link: .linuxSLL2)
        #expect(d.key == inner6Key)
        #expect(d.start == 20 && d.synthType == 0x86DD && d.synthSrc == 12 && d.l3 == 20)
        #expect(deliveredBytes(f, d) == [0, 0, 0, 0, 0, 0] + MAC.b.bytes + [0x86, 0xDD] + build(inner6))
    }

    @Test func cookedWithoutHardwareAddress() {
        let d = decodeFrame(build([.sll(addressLength: 0)] + inner4), link: .linuxSLL)
        #expect(d.key == inner4Key && d.synthSrc == -1)
        let d2 = decodeFrame(build([.sll2(addressLength: 0)] + inner4), link: .linuxSLL2)
        #expect(d2.key == inner4Key && d2.synthSrc == -1)
    }

    @Test func cookedVLAN() {
        let f = build([.sll(), .vlan(id: 77)] + inner4)
        let d = decodeFrame(f, link: .linuxSLL)
        #expect(d.key == inner4Key && d.vlan == 77 && d.synthType == 0x8100 && d.start == 16 && d.l3 == 20)
    }

    @Test func cookedNon8023IsOpaque() {
        let f = build(.sll(proto: 0x0004), .filler(30))
        let d = decodeFrame(f, link: .linuxSLL)
        #expect(d.nonIP && d.synthType == opaqueEtherType && d.start == 0 && d.end == f.count)
    }

    @Test(arguments: [14, 15, 19])
    func cookedTruncated(length: Int) {
        let sll = Array(build([.sll()] + inner4).prefix(length))
        let d = decodeFrame(sll, link: length < 16 ? .linuxSLL : .linuxSLL2)
        #expect(d.error == .truncatedLink)
    }

    @Test func bsdLoopback() {
        let f4 = build([.null()] + inner4)
        let d4 = decodeFrame(f4, link: .null)
        #expect(d4.key == inner4Key && d4.start == 4 && d4.synthType == 0x0800 && d4.l3 == 4)
        let f6 = build([.null()] + inner6)
        #expect(decodeFrame(f6, link: .null).synthType == 0x86DD)
        let loop = build([.null(networkOrder: true)] + inner6)
        let dl = decodeFrame(loop, link: .loop)
        #expect(dl.key == inner6Key && dl.synthType == 0x86DD && dl.start == 4)
        #expect(decodeFrame([2, 0, 0, 0], link: .null).error == .truncatedLink)
    }

    // MARK: 802.11

    @Test func wifiToDS() {
        let f = build([.wifiData(toDS: true, fromDS: false, sa: .a, da: .b), .llcSnap()] + inner4)
        let d = decodeFrame(f, link: .ieee80211)
        #expect(d.key == inner4Key)
        #expect(d.start == 24 + 2 + 8 && d.synthType == 0x0800 && d.l3 == 34)
        #expect(d.synthDst == 16 && d.synthSrc == 10)
        #expect(deliveredBytes(f, d) == build([.ethernet(dst: .b, src: .a)] + inner4))
    }

    @Test(arguments: [(false, false), (false, true), (true, true)])
    func wifiAddressPlacement(toDS: Bool, fromDS: Bool) {
        let f = build([.wifiData(toDS: toDS, fromDS: fromDS, qos: false, sa: .a, da: .b), .llcSnap()] + inner6)
        let d = decodeFrame(f, link: .ieee80211)
        let header = toDS && fromDS ? 30 : 24
        #expect(d.key == inner6Key && d.start == header + 8)
        #expect(deliveredBytes(f, d) == build([.ethernet(dst: .b, src: .a)] + inner6))
    }

    @Test func wifiQoSWithHTControl() {
        var h = WifiHeader.data(toDS: true, fromDS: false, qos: true, sa: .a, da: .b, bssid: .broadcast)
        h.htControl = true
        let d = decodeFrame(build([.wifi(h), .llcSnap()] + inner4), link: .ieee80211)
        #expect(d.key == inner4Key && d.start == 24 + 2 + 4 + 8)
    }

    @Test func wifiFramesWithoutEthernetFormAreOpaque() {
        // a beacon, a protected data frame, a null-data frame and a data frame without LLC/SNAP
        let beacon = build(.wifi(WifiHeader(type: 0, subtype: 8, toDS: false, fromDS: false, addr1: .broadcast, addr2: .a, addr3: .a)), .filler(40))
        var prot = WifiHeader.data(toDS: true, fromDS: false, qos: true, sa: .a, da: .b, bssid: .broadcast)
        prot.protected = true
        let protectedFrame = build([.wifi(prot), .llcSnap()] + inner4)
        let nullData = build(.wifi(WifiHeader(type: 2, subtype: 4, toDS: true, fromDS: false, addr1: .b, addr2: .a, addr3: .b)))
        let noSNAP = build(.wifiData(), .payload([0x42, 0x42, 0x03, 0, 0, 0, 0, 0, 0, 0]))
        for f in [beacon, protectedFrame, nullData, noSNAP] {
            let d = decodeFrame(f, link: .ieee80211)
            #expect(d.nonIP && d.error == .none)
            #expect(d.synthType == opaqueEtherType && d.start == 0 && d.end == f.count)
        }
    }

    @Test func wifiTruncated() {
        let d = decodeFrame(Array(build([.wifiData(), .llcSnap()] + inner4).prefix(20)), link: .ieee80211)
        #expect(d.error == .truncatedLink && d.nonIP && d.synthType == opaqueEtherType && d.end == 20)
        let qosCut = decodeFrame(Array(build([.wifiData(), .llcSnap()] + inner4).prefix(25)), link: .ieee80211)
        #expect(qosCut.error == .truncatedLink)
    }

    // MARK: Radiotap

    @Test func radiotapWithoutFCS() {
        let wifi = build([.wifiData(), .llcSnap()] + inner4)
        let f = build(.radiotap(), .payload(wifi))
        let d = decodeFrame(f, link: .radiotap)
        #expect(d.key == inner4Key && d.start == 10 + 34 && d.end == f.count)
        #expect(deliveredBytes(f, d) == build([.ethernet(dst: .b, src: .a)] + inner4))
    }

    @Test(arguments: [(false, 0), (true, 0), (true, 2), (false, 1)])
    func radiotapFCSIsStripped(tsft: Bool, extraPresentWords: Int) {
        let wifi = build([.wifiData(), .llcSnap()] + inner4)
        let f = build(.radiotap(tsft: tsft, fcs: true, extraPresentWords: extraPresentWords), .payload(wifi))
        let d = decodeFrame(f, link: .radiotap)
        #expect(d.key == inner4Key)
        #expect(d.end == f.count - 4)
        #expect(deliveredBytes(f, d) == build([.ethernet(dst: .b, src: .a)] + inner4))
    }

    @Test func radiotapFCSOnAnOpaqueFrame() {
        let beacon = build(.wifi(WifiHeader(type: 0, subtype: 8, toDS: false, fromDS: false, addr1: .broadcast, addr2: .a, addr3: .a)), .filler(40))
        let f = build(.radiotap(fcs: true), .payload(beacon))
        let d = decodeFrame(f, link: .radiotap)
        #expect(d.nonIP && d.synthType == opaqueEtherType)
        #expect(d.end == f.count - 4)
    }

    @Test func radiotapTruncated() {
        var f = build(.radiotap(), .payload(build([.wifiData(), .llcSnap()] + inner4)))
        #expect(decodeFrame(Array(f.prefix(7)), link: .radiotap).error == .truncatedLink)
        f[2] = 0xFF; f[3] = 0x0F                       // header longer than the frame
        #expect(decodeFrame(f, link: .radiotap).error == .truncatedLink)
        f[2] = 4; f[3] = 0                             // shorter than the fixed part
        #expect(decodeFrame(f, link: .radiotap).error == .truncatedLink)
    }

    @Test func radiotapEndlessPresentWords() {
        // every present word says another follows
        let f: [UInt8] = [0, 0, 40, 0] + Array(repeating: 0xFF, count: 36)
        #expect(decodeFrame(f, link: .radiotap).error == .truncatedLink)
    }

    // MARK: A-MSDU

    /// Decodes every subframe of an A-MSDU, following `nextSubframe`.
    func subframes(_ f: [UInt8], link: LinkType, config: DecodeConfig = DecodeConfig()) -> [Decoded] {
        var out: [Decoded] = []
        var i = 0
        repeat {
            let d = decodeFrame(f, link: link, config: config, subframe: i)
            out.append(d)
            i = d.nextSubframe
        } while i != 0 && out.count < 100
        return out
    }

    @Test func amsduSubframesOneByOne() throws {
        let arp = build(.arp(senderIP: Addr.c4, targetIP: Addr.s4))
        let subs = [AMSDUSubframe(da: "02:00:00:00:01:01", sa: "02:00:00:00:01:02", packet: build(inner4)),
                    AMSDUSubframe(da: "02:00:00:00:02:01", sa: "02:00:00:00:02:02", packet: build(inner6)),
                    AMSDUSubframe(packet: arp, etherType: 0x0806)]
        let f = build(.radiotap(fcs: true), .wifiData(), .amsdu(subs))
        let ds = subframes(f, link: .radiotap)
        try #require(ds.count == 3)
        #expect(ds.map(\.nextSubframe) == [1, 2, 0])
        #expect(ds[0].key == inner4Key && ds[1].key == inner6Key)
        #expect(ds[2].nonIP && ds[2].key == flowKey(Addr.c4, 0, Addr.s4, 0, proto: 0, kind: .addresses))
        #expect(deliveredBytes(f, ds[0]) == build([.ethernet(dst: "02:00:00:00:01:01", src: "02:00:00:00:01:02")] + inner4))
        #expect(deliveredBytes(f, ds[1]) == build([.ethernet(dst: "02:00:00:00:02:01", src: "02:00:00:00:02:02")] + inner6))
        #expect(ds[2].end == f.count - 4)             // the last subframe ends before the FCS
    }

    @Test func amsduSubframeWithoutSNAPIsOpaque() {
        let subs = [AMSDUSubframe(packet: build(inner4)), AMSDUSubframe(packet: [1, 2, 3, 4, 5, 6, 7, 8, 9], llcSnap: false)]
        let f = build(.wifiData(), .amsdu(subs))
        let ds = subframes(f, link: .ieee80211)
        #expect(ds.count == 2)
        #expect(ds[1].nonIP && ds[1].synthType == opaqueEtherType && ds[1].end == f.count)
        #expect(Array(f[ds[1].start..<ds[1].end]) == [1, 2, 3, 4, 5, 6, 7, 8, 9])
    }

    @Test func snapWithoutAnEtherTypeIsOpaque() {
        // SNAP carrying a value below 0x0600 (an 802.3 length, not an EtherType)
        let f = build([.wifiData(), .llcSnap(type: 0x0000)] + inner4)
        let d = decodeFrame(f, link: .ieee80211)
        #expect(d.nonIP && d.synthType == opaqueEtherType && d.start == 0)
        let sub = build(.wifiData(), .amsdu([AMSDUSubframe(packet: build(inner4), etherType: 0x0100)]))
        let ds = decodeFrame(sub, link: .ieee80211)
        #expect(ds.nonIP && ds.synthType == opaqueEtherType)
    }

    @Test func amsduTruncatedSubframe() {
        let f = build(.wifiData(), .amsdu([AMSDUSubframe(packet: build(inner4)), AMSDUSubframe(packet: build(inner6))]))
        let cut = Array(f.prefix(f.count - 5))
        let ds = subframes(cut, link: .ieee80211)
        #expect(ds.count == 2 && ds[0].key == inner4Key)
        #expect(ds[1].error == .truncatedLink && ds[1].nonIP)
    }

    @Test func amsduWithMoreThan64Subframes() {
        let tiny = AMSDUSubframe(packet: [0x42], llcSnap: false)
        let f = build(.wifiData(), .amsdu(Array(repeating: tiny, count: 66)))
        let ds = subframes(f, link: .ieee80211)
        #expect(ds.count == 65)
        #expect(ds.last?.error == .wifiUnsupported)
        #expect(ds.last?.nextSubframe == 0)
    }
}
