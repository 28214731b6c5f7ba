import Foundation
import LBCore
import LBGen
import LBTestSupport
import Testing

/// LBGen's frames as Wireshark reads them: every layer the builder writes is dissected as that
/// protocol, with the fields it was given, and every checksum it computes is verified by
/// tshark (not by LBGen's own Checksum). LBCore's decoder must find the same flow.
@Suite(.serialized) struct DissectionTests {
    static let c4: IPv4 = "10.0.0.1", s4: IPv4 = "10.0.0.2", o4: IPv4 = "192.0.2.1", t4: IPv4 = "192.0.2.2"
    static let c6: IPv6 = "2001:db8::1", s6: IPv6 = "2001:db8::2"
    static let tcp4: [Layer] = [.ipv4(src: c4, dst: s4), .tcp(sport: 1234, dport: 80, seq: 100, flags: [.psh, .ack]), .filler(20)]
    static let udp6: [Layer] = [.ipv6(src: c6, dst: s6), .udp(sport: 40001, dport: 9999), .filler(20)]
    static let outer: [Layer] = [.ethernet(), .ipv4(src: o4, dst: t4)]

    /// Wireshark's PI_NOTE
    static let note = 0x0040_0000

    struct Case: Sendable {
        let name: String
        let layers: [Layer]
        /// tshark's frame.protocols (without a final ":data")
        let protocols: String
        /// the innermost addresses and ports tshark shows (ip/ipv6, tcp/udp)
        let flow: String
    }

    static let cases: [Case] = [
        Case(name: "tcp4", layers: [.ethernet()] + tcp4, protocols: "eth:ethertype:ip:tcp",
             flow: "10.0.0.1 1234 > 10.0.0.2 80"),
        Case(name: "udp6", layers: [.ethernet()] + udp6, protocols: "eth:ethertype:ipv6:udp",
             flow: "2001:db8::1 40001 > 2001:db8::2 9999"),
        Case(name: "qinq", layers: [.ethernet(), .vlan(id: 100, tpid: 0x88A8), .vlan(id: 200)] + tcp4,
             protocols: "eth:ethertype:ieee8021ad:ethertype:vlan:ethertype:ip:tcp", flow: "10.0.0.1 1234 > 10.0.0.2 80"),
        Case(name: "mpls", layers: [.ethernet(), .mpls(labels: [16, 17])] + tcp4,
             protocols: "eth:ethertype:mpls:ip:tcp", flow: "10.0.0.1 1234 > 10.0.0.2 80"),
        Case(name: "pppoe", layers: [.ethernet(), .pppoe()] + udp6,
             protocols: "eth:ethertype:pppoes:ppp:ipv6:udp", flow: "2001:db8::1 40001 > 2001:db8::2 9999"),
        Case(name: "ipv6-ext", layers: [.ethernet(), .ipv6(src: c6, dst: s6, ext: [.hopByHop(), .destination()]),
                                        .tcp(sport: 1, dport: 2, flags: .syn, options: [2, 4, 5, 180])],
             protocols: "eth:ethertype:ipv6:ipv6.hopopts:ipv6.dstopts:tcp", flow: "2001:db8::1 1 > 2001:db8::2 2"),
        Case(name: "icmp-error", layers: [.ethernet(), .ipv4(src: o4, dst: c4), .icmpUnreachable()] + tcp4,
             protocols: "eth:ethertype:ip:icmp:ip:tcp", flow: "10.0.0.1 1234 > 10.0.0.2 80"),   // the quoted packet
        Case(name: "icmp6-echo", layers: [.ethernet(), .ipv6(src: c6, dst: s6), .icmp6Echo(id: 7, seq: 9), .filler(8)],
             protocols: "eth:ethertype:ipv6:icmpv6", flow: "2001:db8::1 > 2001:db8::2"),
        Case(name: "sctp", layers: [.ethernet(), .ipv4(src: c4, dst: s4), .sctp(sport: 2905, dport: 2906)],
             protocols: "eth:ethertype:ip:sctp", flow: "10.0.0.1 2905 > 10.0.0.2 2906"),
        Case(name: "vxlan", layers: outer + [.udp(sport: 40000, dport: 4789), .vxlan(vni: 42), .ethernet()] + tcp4,
             protocols: "eth:ethertype:ip:udp:vxlan:eth:ethertype:ip:tcp", flow: "10.0.0.1 1234 > 10.0.0.2 80"),
        Case(name: "geneve", layers: outer + [.udp(sport: 40000, dport: 6081), .geneve(vni: 43, options: [GeneveOption()]), .ethernet()] + udp6,
             protocols: "eth:ethertype:ip:udp:geneve:eth:ethertype:ipv6:udp", flow: "2001:db8::1 40001 > 2001:db8::2 9999"),
        Case(name: "gre", layers: outer + [.gre(checksum: true, key: 5, seq: 6)] + tcp4,
             protocols: "eth:ethertype:ip:gre:ip:tcp", flow: "10.0.0.1 1234 > 10.0.0.2 80"),
        Case(name: "gtpu", layers: outer + [.udp(sport: 2152, dport: 2152), .gtpu(teid: 77, seq: 3)] + tcp4,
             protocols: "eth:ethertype:ip:udp:gtp:ip:tcp", flow: "10.0.0.1 1234 > 10.0.0.2 80"),
        Case(name: "ipip", layers: outer + tcp4, protocols: "eth:ethertype:ip:ip:tcp", flow: "10.0.0.1 1234 > 10.0.0.2 80"),
    ]

    /// tshark's fields for each frame of `file`, one dictionary per frame.
    /// Applications on the ports the synthesizer uses: their payload is filler, not theirs.
    static let applications = ["dns", "mdns", "ntp", "rpc", "nfs", "http", "tls", "ssh", "smtp", "mysql"]

    static func dissect(_ file: String, fields: [String], in dir: String) throws -> [[String: String]] {
        let args = ["-n", "-r", file] + applications.flatMap { ["--disable-protocol", $0] }
            + ["-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-o", "sctp.checksum:CRC-32C",
               "-T", "fields", "-E", "separator=/t", "-E", "occurrence=l"] + fields.flatMap { ["-e", $0] }
        let t = try Tool("/usr/bin/tshark", args, in: dir, label: "tshark")
        let status = try t.wait(seconds: 120)
        guard status == 0 else { throw TestFailure("tshark exited \(status): \(t.stderr)") }
        return t.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { line in
            let values = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return Dictionary(uniqueKeysWithValues: zip(fields, values + Array(repeating: "", count: max(0, fields.count - values.count))))
        }
    }

    @Test func everyLayerIsWhatWiresharkSees() throws {
        let scratch = try ScratchDirectory("lbgen-dissect")
        let frames = Self.cases.map { PacketBuilder.build($0.layers) }
        let file = scratch.path + "/cases.pcap"
        let trace = frames.enumerated().map { (timestampNanos: UInt64($0.offset) * 1_000_000, bytes: $0.element) }
        try Data(Pcap.file(linkType: 1, nanosecond: false, packets: trace)).write(to: URL(fileURLWithPath: file))
        let fields = ["frame.protocols", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "tcp.srcport", "tcp.dstport",
                      "udp.srcport", "udp.dstport", "sctp.srcport", "sctp.dstport", "_ws.malformed", "_ws.expert.severity",
                      "ip.checksum.status", "tcp.checksum.status", "udp.checksum.status", "icmp.checksum.status",
                      "icmpv6.checksum.status", "gre.checksum.status", "sctp.checksum.status", "vxlan.vni", "geneve.vni",
                      "gre.key", "gtp.teid", "ip.len", "ipv6.plen", "udp.length", "frame.len"]
        let rows = try Self.dissect(file, fields: fields, in: scratch.path)
        #expect(rows.count == Self.cases.count)
        for (c, row) in zip(Self.cases, rows) {
            // (a payload shows as "data" only where tshark does not take it for a retransmission)
            let protocols = row["frame.protocols"]!
            #expect((protocols.hasSuffix(":data") ? String(protocols.dropLast(5)) : protocols) == c.protocols, "\(c.name): \(row)")
            // nothing malformed, nothing worse than a note (the same flow sent again is one)
            #expect(row["_ws.malformed"] == "" && (Int(row["_ws.expert.severity"]!) ?? 0) <= Self.note, "\(c.name): \(row)")
            for f in ["ip", "tcp", "udp", "icmp", "icmpv6", "gre", "sctp"] where row["\(f).checksum.status"] != "" {
                #expect(row["\(f).checksum.status"] == "1", "\(c.name): \(f) checksum \(row["\(f).checksum.status"] ?? "")")
            }
            let src = row["ipv6.src"]!.isEmpty ? row["ip.src"]! : row["ipv6.src"]!
            let dst = row["ipv6.dst"]!.isEmpty ? row["ip.dst"]! : row["ipv6.dst"]!
            let ports = ["tcp", "udp", "sctp"].first { !row["\($0).srcport"]!.isEmpty }
            let flow = ports.map { "\(src) \(row["\($0).srcport"]!) > \(dst) \(row["\($0).dstport"]!)" } ?? "\(src) > \(dst)"
            #expect(flow == c.flow, "\(c.name)")
        }
        // LBCore's decoder finds the flow tshark shows innermost
        let decoder = Decoder()
        for (c, frame) in zip(Self.cases, frames) {
            let d = frame.withUnsafeBytes { decoder.decode($0, link: .ethernet) }
            #expect(d.error == .none, "\(c.name): \(d.error)")
            #expect(Self.describe(d.key) == c.flow, "\(c.name)")
        }
        let byName = Dictionary(uniqueKeysWithValues: zip(Self.cases.map(\.name), rows))
        #expect(byName["vxlan"]?["vxlan.vni"] == "42")
        #expect(byName["geneve"]?["geneve.vni"] == "0x00002b")
        #expect(byName["gre"]?["gre.key"] == "0x00000005")
        #expect(byName["gtpu"]?["gtp.teid"] == "0x0000004d")
    }

    /// Fragments are reassembled by Wireshark into the datagram they were cut from, whose
    /// transport checksum then verifies.
    @Test func fragmentsReassembleInWireshark() throws {
        let scratch = try ScratchDirectory("lbgen-fragments")
        let v4 = PacketBuilder.build(.ipv4(src: Self.c4, dst: Self.s4, id: 77), .udp(sport: 40001, dport: 9999), .filler(1000))
        let v6 = PacketBuilder.build(.ipv6(src: Self.c6, dst: Self.s6), .udp(sport: 40002, dport: 9999), .filler(1000))
        var frames: [[UInt8]] = []
        for f in Fragmenter.ipv4(v4, sizes: [256, 512], order: .reversed) { frames.append(PacketBuilder.build(.ethernet(), .ip(f))) }
        for f in Fragmenter.ipv6(v6, size: 296, id: 0xABCD, order: .inOrder) { frames.append(PacketBuilder.build(.ethernet(), .ip(f))) }
        let file = scratch.path + "/fragments.pcap"
        let trace = frames.enumerated().map { (timestampNanos: UInt64($0.offset) * 1000, bytes: $0.element) }
        try Data(Pcap.file(linkType: 1, nanosecond: false, packets: trace)).write(to: URL(fileURLWithPath: file))
        let rows = try Self.dissect(file, fields: ["udp.srcport", "udp.length", "udp.checksum.status", "ip.reassembled.length",
                                                   "ipv6.reassembled.length", "_ws.malformed"], in: scratch.path)
        let whole = rows.filter { !$0["udp.srcport"]!.isEmpty }
        #expect(rows.count == frames.count && frames.count == 3 + 4)
        #expect(rows.allSatisfy { $0["_ws.malformed"] == "" })
        // one datagram of each family comes out whole, with the length it was built with
        #expect(whole.map { $0["udp.srcport"]! } == ["40001", "40002"], "\(rows)")
        #expect(whole.allSatisfy { $0["udp.length"] == "1008" && $0["udp.checksum.status"] == "1" }, "\(whole)")
        #expect(whole.first?["ip.reassembled.length"] == "1008" && whole.last?["ipv6.reassembled.length"] == "1008", "\(whole)")
    }

    /// Synthesized traffic (every kind, tunnels, fragments, both families) dissects cleanly.
    @Test func synthesizedTrafficDissectsCleanly() throws {
        let scratch = try ScratchDirectory("lbgen-synth")
        let packets = TrafficSynth.generate(SynthConfig(seed: 11, flows: 150, packets: 3000))
        // a control: the last data segment with its last byte changed must be caught
        var trace = packets.trace
        let control = trace.lastIndex { $0.bytes.count > 100 && $0.bytes[12] == 0x08 && $0.bytes[23] == 6 }!
        var spoiled = trace[control]
        spoiled.bytes[spoiled.bytes.count - 1] ^= 0xFF
        trace.append((spoiled.timestampNanos + 1, spoiled.bytes))
        let file = scratch.path + "/synth.pcap"
        try Data(Pcap.file(linkType: 1, nanosecond: true, packets: trace)).write(to: URL(fileURLWithPath: file))
        let rows = try Self.dissect(file, fields: ["_ws.malformed", "ip.checksum.status", "tcp.checksum.status", "udp.checksum.status",
                                                   "icmp.checksum.status", "icmpv6.checksum.status", "frame.protocols"], in: scratch.path)
        #expect(rows.count == packets.count + 1)
        var bad: [String] = []
        for (i, row) in rows.enumerated() {
            let checks = ["ip", "tcp", "udp", "icmp", "icmpv6"].compactMap { row["\($0).checksum.status"] }.filter { !$0.isEmpty }
            // 1: good; a UDP checksum may also be absent (3: zero, as tunnels send it)
            let udpAbsent = row["udp.checksum.status"] == "3"
            if row["_ws.malformed"] != "" || checks.contains(where: { $0 != "1" && !($0 == "3" && udpAbsent) }) { bad.append("\(i): \(row)") }
        }
        #expect(bad.count == 1 && bad.first?.hasPrefix("\(packets.count): ") == true, "\(bad.count) packets: \(bad.prefix(3))")
        let protocols = Set(rows.map { $0["frame.protocols"]! })
        #expect(protocols.contains { $0.contains(":vxlan:") } && protocols.contains { $0.contains(":geneve:") })
        #expect(protocols.contains { $0.contains(":icmpv6") } && protocols.contains { $0.contains(":icmp") })
    }

    /// "SRC SPORT > DST DPORT" (or "SRC > DST" without ports) of a flow key, as tshark -n prints
    /// the addresses.
    static func describe(_ k: FlowKey) -> String {
        func address(_ hi: UInt64, _ lo: UInt64) -> String {
            var a = in6_addr()
            withUnsafeMutableBytes(of: &a) {
                $0.storeBytes(of: hi.bigEndian, toByteOffset: 0, as: UInt64.self)
                $0.storeBytes(of: lo.bigEndian, toByteOffset: 8, as: UInt64.self)
            }
            var buf = [UInt8](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            buf.withUnsafeMutableBufferPointer { out in
                out.withMemoryRebound(to: CChar.self) { _ = inet_ntop(AF_INET6, &a, $0.baseAddress, socklen_t($0.count)) }
            }
            let text = String(decoding: buf.prefix { $0 != 0 }, as: UTF8.self)
            return text.hasPrefix("::ffff:") ? String(text.dropFirst(7)) : text
        }
        let src = address(k.srcHi, k.srcLo), dst = address(k.dstHi, k.dstLo)
        return k.kind == .ports ? "\(src) \(k.sport) > \(dst) \(k.dport)" : "\(src) > \(dst)"
    }
}
