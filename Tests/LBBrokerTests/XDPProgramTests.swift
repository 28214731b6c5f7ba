import Foundation
import LBBroker
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
