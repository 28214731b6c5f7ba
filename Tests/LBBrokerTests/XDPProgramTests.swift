import Foundation
import LBBroker
import LBCore
import LBGen
import Testing

/// lb's XDP program itself, run by the kernel on built frames (BPF_PROG_TEST_RUN): which frames
/// --divert takes (counted as no_socket here: no AF_XDP socket is in the map) and which it
/// passes to the kernel. Needs root (CAP_BPF), as the suite does.
@Suite(.serialized) struct XDPProgramTests {
    static let object: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("bpf/build.sh").path) { break }
        }
        // scripts/setup builds it; build it here too, so the test runs from a clean clone
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [url.path + "/bpf/build.sh"]
        try? p.run()
        p.waitUntilExit()
        return url.path + "/.build/bpf/lb_xdp.o"
    }()

    static let a: IPv4 = "10.0.0.1", b: IPv4 = "10.0.0.2"
    static let a6: IPv6 = "2001:db8::1", b6: IPv6 = "2001:db8::2"

    func udp(_ dport: UInt16, vlan: [UInt16] = []) -> [UInt8] {
        var layers: [Layer] = [.ethernet()]
        for v in vlan { layers.append(.vlan(id: v)) }
        layers += [Layer.ipv4(src: Self.a, dst: Self.b), .udp(sport: 40000, dport: dport), .payload([1, 2, 3, 4])]
        return PacketBuilder.build(layers)
    }

    @Test func divertsOnlyMatchingTraffic() throws {
        let prog = try XDPProgram(object: Self.object, divert: try DivertFilter("udp dst port 4789 or proto 47"))
        let diverted: [[UInt8]] = [
            udp(4789),
            udp(4789, vlan: [100]),
            udp(4789, vlan: [100, 200]),
            PacketBuilder.build(.ethernet(), .ipv6(src: Self.a6, dst: Self.b6), .udp(sport: 1, dport: 4789), .payload([0])),
            PacketBuilder.build(.ethernet(), .ipv4(src: Self.a, dst: Self.b), .gre(), .payload([0, 0, 0, 0])),
            // IPv4 options: the port is read at a computed offset
            PacketBuilder.build(.ethernet(), .ipv4(src: Self.a, dst: Self.b, options: [1, 1, 1, 1, 1, 1, 1, 1]), .udp(sport: 1, dport: 4789), .payload([0])),
            // a non-first fragment of UDP: no port to look at, follows its protocol
            PacketBuilder.build(.ethernet(), .ipv4(src: Self.a, dst: Self.b, proto: 17, fragmentOffset: 1480), .payload([1, 2, 3, 4, 5, 6, 7, 8])),
            PacketBuilder.build(.ethernet(), .ipv6(src: Self.a6, dst: Self.b6, nextHeader: 17, ext: [.fragment(offset: 1448, more: false, id: 7)]),
                                .payload([1, 2, 3, 4, 5, 6, 7, 8])),
        ]
        let passed: [[UInt8]] = [
            udp(53),
            PacketBuilder.build(.ethernet(), .ipv4(src: Self.a, dst: Self.b, options: [1, 1, 1, 1]), .udp(sport: 4789, dport: 53), .payload([0])),
            udp(4790, vlan: [100]),
            PacketBuilder.build(.ethernet(), .ipv4(src: Self.a, dst: Self.b), .tcp(sport: 40000, dport: 4789)),
            PacketBuilder.build(.ethernet(), .ipv4(src: Self.a, dst: Self.b), .icmpEcho(id: 1, seq: 1)),
            PacketBuilder.build(.ethernet(), .ipv6(src: Self.a6, dst: Self.b6), .udp(sport: 4789, dport: 22), .payload([0])),
        ]
        let notIP: [[UInt8]] = [
            PacketBuilder.build(.ethernet(), .arp(senderIP: Self.a, targetIP: Self.b)),
            Array(udp(4789).prefix(20)),           // cut inside the IPv4 header
        ]
        var before = prog.counts
        for (k, f) in diverted.enumerated() {
            #expect(try prog.run(f) == .pass)
            #expect(prog.counts.noSocket == before.noSocket + 1, "frame \(k) is diverted")
            before = prog.counts
        }
        for f in passed + notIP { #expect(try prog.run(f) == .pass) }
        #expect(prog.counts == XDPProgram.Counts(diverted: 0, passed: UInt64(passed.count), noSocket: UInt64(diverted.count),
                                                 notIP: UInt64(notIP.count)))
    }

    /// PBB and FabricPath are decoded by lb, so the filter looks at the IP flow inside them.
    @Test func seesThroughPBBAndFabricPath() throws {
        let prog = try XDPProgram(object: Self.object, divert: try DivertFilter("udp dst port 4789"))
        func inner(_ dport: UInt16) -> [Layer] {
            [.ipv4(src: Self.a, dst: Self.b), .udp(sport: 40000, dport: dport), .payload([1, 2, 3, 4])]
        }
        let pbb: [Layer] = [.ethernet(), .pbb(isid: 0x10000), .ethernet()]
        let pbbTagged: [Layer] = [.ethernet(), .vlan(id: 100, tpid: 0x88A8), .pbb(isid: 0x10000), .ethernet(), .vlan(id: 7), .vlan(id: 8)]
        let fp: [Layer] = [.fabricPath(), .ethernet()]
        let fpTagged: [Layer] = [.fabricPath(), .ethernet(), .vlan(id: 9), .pbb(isid: 1), .ethernet(), .vlan(id: 10)]
        let diverted = [pbb, pbbTagged, fp, fpTagged].map { PacketBuilder.build($0 + inner(4789)) }
            + [PacketBuilder.build(pbb + [.ipv6(src: Self.a6, dst: Self.b6), .udp(sport: 1, dport: 4789), .payload([0])])]
        let passed = [pbb, pbbTagged, fp, fpTagged].map { PacketBuilder.build($0 + inner(53)) }
        let notIP: [[UInt8]] = [
            PacketBuilder.build(pbb + [.arp(senderIP: Self.a, targetIP: Self.b)]),
            Array(PacketBuilder.build(pbb + inner(4789)).prefix(14 + 4 + 10)),     // cut in the customer header
            Array(PacketBuilder.build(fp + inner(4789)).prefix(16 + 10)),           // cut in the classical header
            PacketBuilder.build(pbbTagged.dropLast() + [.vlan(id: 8, type: 0x8100), .vlan(id: 9)] + inner(4789)),   // a third customer tag
        ]
        for f in diverted + passed + notIP { #expect(try prog.run(f) == .pass) }
        #expect(prog.counts == XDPProgram.Counts(diverted: 0, passed: UInt64(passed.count), noSocket: UInt64(diverted.count),
                                                 notIP: UInt64(notIP.count)))
    }

    @Test func withoutAFilterEverythingIsForLB() throws {
        let prog = try XDPProgram(object: Self.object, divert: nil)
        for f in [udp(53), udp(4789), PacketBuilder.build(.ethernet(), .arp(senderIP: Self.a, targetIP: Self.b)), [UInt8](repeating: 0, count: 14)] {
            #expect(try prog.run(f) == .pass)
        }
        #expect(prog.counts == XDPProgram.Counts(noSocket: 4))
    }
}

/// The XDP program drops a flow shunted in every group before lb sees it (issue 16 item 4): its
/// data packets, both ways or one, plain, VLAN-tagged, inside VXLAN and GENEVE (with options),
/// IPv4 and IPv6 — never its SYN, FIN or RST, never another flow; each drop counted in the
/// program's counters and the flow's entry.
@Suite(.serialized) struct XDPShuntTests {
    static let c: IPv4 = "10.0.0.1", s: IPv4 = "10.9.9.9"
    static let c6: IPv6 = "2001:db8::1", s6: IPv6 = "2001:db8::9"

    static func tcp(_ fromClient: Bool, _ flags: TCPFlags, v6: Bool = false, outer: [Layer] = [.ethernet()], sport: UInt16 = 40000) -> [UInt8] {
        let ip: Layer = v6 ? .ipv6(src: fromClient ? c6 : s6, dst: fromClient ? s6 : c6)
                           : .ipv4(src: fromClient ? c : s, dst: fromClient ? s : c)
        return PacketBuilder.build(outer + [ip, .tcp(sport: fromClient ? sport : 443, dport: fromClient ? 443 : sport, flags: flags), .filler(100)])
    }

    static func rule(v6: Bool = false, _ d: ShuntTable.Directions = .both) -> ShuntTable.Rule {
        var k = FlowKey()
        if v6 {
            (k.srcHi, k.srcLo) = (0x2001_0DB8_0000_0000, 1); (k.dstHi, k.dstLo) = (0x2001_0DB8_0000_0000, 9)
        } else {
            k.srcLo = FlowKey.v4Mapped(c.value); k.dstLo = FlowKey.v4Mapped(s.value)
        }
        k.sport = 40000; k.dport = 443; k.proto = 6; k.kind = .ports
        return ShuntTable.Rule(key: k, directions: d)
    }

    @Test func shuntedFlowsAreDroppedInTheProgram() throws {
        let prog = try XDPProgram(object: XDPProgramTests.object, divert: nil)
        let vxlan: [Layer] = [.ethernet(), .ipv4(src: "192.0.2.1", dst: "192.0.2.2"), .udp(sport: 5000, dport: 4789), .vxlan(vni: 3), .ethernet()]
        let geneve: [Layer] = [.ethernet(), .ipv6(src: "2001:db8:ff::1", dst: "2001:db8:ff::2"), .udp(sport: 5000, dport: 6081),
                               .geneve(vni: 3, options: [GeneveOption(data: [1, 2, 3, 4, 5, 6, 7, 8])]), .ethernet(), .vlan(id: 5)]
        // nothing shunted yet: everything goes to lb (no socket here: counted no_socket)
        #expect(try prog.run(Self.tcp(true, [.psh, .ack])) == .pass)
        try prog.shunt(Self.rule())
        try prog.shunt(Self.rule(v6: true, .forward))
        let dropped: [[UInt8]] = [
            Self.tcp(true, [.psh, .ack]), Self.tcp(false, [.psh, .ack]), Self.tcp(true, .ack),
            Self.tcp(true, [.psh, .ack], outer: [.ethernet(), .vlan(id: 100)]),
            Self.tcp(false, .ack, outer: [.ethernet(), .vlan(id: 100, tpid: 0x88A8), .vlan(id: 7)]),
            Self.tcp(true, [.psh, .ack], outer: vxlan),
            Self.tcp(true, [.psh, .ack], outer: geneve),
            Self.tcp(true, [.psh, .ack], v6: true),
        ]
        let delivered: [[UInt8]] = [
            Self.tcp(true, .syn), Self.tcp(false, [.syn, .ack]), Self.tcp(true, [.fin, .ack]), Self.tcp(false, .rst),
            Self.tcp(true, [.psh, .ack], sport: 40001),                 // another flow
            Self.tcp(false, [.psh, .ack], v6: true),                    // the v6 rule stops one direction only
            Self.tcp(true, [.fin, .ack], outer: vxlan),
        ]
        let before = prog.counts
        for (i, f) in dropped.enumerated() { #expect(try prog.run(f) == .drop, "frame \(i) is dropped") }
        for (i, f) in delivered.enumerated() { #expect(try prog.run(f) == .pass, "frame \(i) goes on") }
        #expect(prog.counts.shunted - before.shunted == UInt64(dropped.count))
        #expect(prog.counts.noSocket - before.noSocket == UInt64(delivered.count))
        let v4 = try #require(prog.shuntCounts(Self.rule()))
        #expect(v4.packets == 7 && v4.ipBytes == 7 * 140)
        #expect(prog.shuntCounts(Self.rule(v6: true))?.packets == 1)
        #expect(prog.unshunt(Self.rule()) && !prog.unshunt(Self.rule()))
        #expect(try prog.run(Self.tcp(true, [.psh, .ack])) == .pass)
    }
}
