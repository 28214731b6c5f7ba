import CLBRing
import Foundation
import LBCore
import LBGen
import Testing
@testable import lb

/// `lb tap`'s lines, one per kind of packet, built with LBGen: exactly the expected text, and
/// the same "IP src > dst" as tcpdump -nn prints for the same packets.
@Suite struct PacketLineTests {
    static let a: IPv4 = "10.0.0.1", b: IPv4 = "10.0.0.2"
    static let a6: IPv6 = "2001:db8::1", b6: IPv6 = "2001:db8::2"

    static var cases: [(frame: [UInt8], line: String)] {
        let udp = PacketBuilder.build(.ipv4(src: a, dst: b, id: 7), .udp(sport: 5000, dport: 53), .filler(64))
        let fragments = Fragmenter.ipv4(udp, size: 32)
        let udp6 = PacketBuilder.build(.ipv6(src: a6, dst: b6), .udp(sport: 5001, dport: 2049), .filler(64))
        let fragments6 = Fragmenter.ipv6(udp6, size: 32, id: 9)
        return [
            (PacketBuilder.build(.ethernet(), .ipv4(src: a, dst: b), .tcp(sport: 1234, dport: 80, flags: .syn)),
             "IP 10.0.0.1.1234 > 10.0.0.2.80: tcp Flags [S], length 54"),
            (PacketBuilder.build(.ethernet(), .vlan(id: 100), .ipv6(src: a6, dst: b6), .tcp(sport: 443, dport: 50000, flags: [.syn, .ack])),
             "vlan 100, IP6 2001:db8::1.443 > 2001:db8::2.50000: tcp Flags [S.], length 78"),
            (PacketBuilder.build(.ethernet(), .ipv4(src: a, dst: b), .tcp(sport: 1, dport: 2, flags: [.fin, .psh, .ack])),
             "IP 10.0.0.1.1 > 10.0.0.2.2: tcp Flags [FP.], length 54"),
            (PacketBuilder.build(.ethernet(), .ipv4(src: a, dst: b), .udp(sport: 5000, dport: 53), .filler(10)),
             "IP 10.0.0.1.5000 > 10.0.0.2.53: udp, length 52"),
            (PacketBuilder.build(.ethernet(), .ipv4(src: a, dst: b), .icmpEcho(id: 1, seq: 1)),
             "IP 10.0.0.1 > 10.0.0.2: icmp type 8 code 0, length 42"),
            // an ICMP error shows its own addresses, not those of the packet it quotes
            (PacketBuilder.build(.ethernet(), .ipv4(src: "192.0.2.9", dst: a), .icmpUnreachable(),
                                 .ipv4(src: a, dst: b), .udp(sport: 5000, dport: 53)),
             "IP 192.0.2.9 > 10.0.0.1: icmp type 3 code 3, length 70"),
            (PacketBuilder.build(.ethernet(), .ipv6(src: a6, dst: b6), .icmp6Echo(id: 1, seq: 2)),
             "IP6 2001:db8::1 > 2001:db8::2: icmp6 type 128 code 0, length 62"),
            (PacketBuilder.build(.ethernet(), .ipv4(src: a, dst: b), .sctp(sport: 2905, dport: 2906)),
             "IP 10.0.0.1.2905 > 10.0.0.2.2906: sctp, length 46"),
            (PacketBuilder.build(.ethernet(), .ip(fragments[0])),
             "IP 10.0.0.1.5000 > 10.0.0.2.53: udp (fragment), length 66"),
            (PacketBuilder.build(.ethernet(), .ip(fragments[1])),
             "IP 10.0.0.1 > 10.0.0.2: proto 17 (fragment), length 66"),
            (PacketBuilder.build(.ethernet(), .ip(fragments6[0])),
             "IP6 2001:db8::1 > 2001:db8::2: udp 5001 > 2049 (fragment), length 94"),
            (PacketBuilder.build(.ethernet(), .ip(fragments6[1])),
             "IP6 2001:db8::1 > 2001:db8::2: proto 17 (fragment), length 94"),
            // tunnels are not removed: the outer header, as tcpdump shows it
            (PacketBuilder.build(.ethernet(), .ipv4(src: a, dst: b), .gre(), .ipv4(src: "172.16.0.1", dst: "172.16.0.2"),
                                 .udp(sport: 1, dport: 2)),
             "IP 10.0.0.1 > 10.0.0.2: proto 47, length 66"),
            (PacketBuilder.build(.ethernet(), .ipv4(src: a, dst: b), .udp(sport: 40000, dport: 4789), .vxlan(vni: 5),
                                 .ethernet(), .ipv4(src: "172.16.0.1", dst: "172.16.0.2"), .udp(sport: 1, dport: 2)),
             "IP 10.0.0.1.40000 > 10.0.0.2.4789: udp, length 92"),
            // the link layer is walked as lb walks it
            (PacketBuilder.build(.ethernet(), .mpls(labels: [100]), .ipv4(src: a, dst: b), .udp(sport: 7, dport: 9)),
             "IP 10.0.0.1.7 > 10.0.0.2.9: udp, length 46"),
            (PacketBuilder.build(.ethernet(), .arp(senderIP: a, targetIP: b)),
             "ARP, length 42"),
            (PacketBuilder.build(.ethernet(type: 0x88B5), .filler(46)),
             "ethertype 0x88b5, length 60"),
            (Array(PacketBuilder.build(.ethernet(), .ipv4(src: a, dst: b), .udp(sport: 1, dport: 2)).prefix(10)),
             "truncated frame, length 10"),
        ]
    }

    @Test func linesSayWhatThePacketIs() {
        var line = PacketLine()
        for (frame, want) in Self.cases {
            let got = frame.withUnsafeBytes { line.describe($0, wire: frame.count) }
            #expect(got == want)
        }
    }

    @Test func addressesAndPortsAreTcpdumps() throws {
        let scratch = try Scratch("packet-line")
        let cases = Self.cases
        let t0: UInt64 = 1_700_000_000_123_456_000
        let packets = cases.enumerated().map { (timestampNanos: t0 + UInt64($0.offset) * 1000, bytes: $0.element.frame) }
        let file = scratch.path + "/lines.pcap"
        try Data(Pcap.file(linkType: 1, nanosecond: false, packets: packets)).write(to: URL(fileURLWithPath: file))
        var line = PacketLine()
        var text = ""
        for p in packets {
            var d = lb_desc()
            d.ts_ns = p.timestampNanos
            d.wirelen = UInt32(p.bytes.count)
            text += p.bytes.withUnsafeBytes { line.render(d, $0) } + "\n"
        }
        let (s, out, err) = try Proc.run("/usr/bin/tcpdump", ["-nn", "-r", file], in: scratch.path, label: "tcpdump",
                                         environment: ["TZ": "UTC"])
        #expect(s == 0, "\(err)")
        // (tcpdump prints what a VXLAN packet carries on a line of its own, without a time)
        let packetLines = out.split(separator: "\n").filter { $0.first?.isNumber == true }.joined(separator: "\n")
        let ours = TapTests.flows(text), theirs = TapTests.flows(packetLines)
        #expect(ours.count == 15, "\(text)")
        #expect(ours == theirs, "lb tap:\n\(text)\ntcpdump:\n\(out)")
    }
}
