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

    static func dissect(_ file: String, options: [String] = [], fields: [String], in dir: String) throws -> [[String: String]] {
        let args = ["-n", "-r", file] + options + applications.flatMap { ["--disable-protocol", $0] }
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
            // SCTP is hashed on its addresses only, as Zeek keys it (its ports are not the flow)
            let expected = c.name == "sctp" ? "10.0.0.1 > 10.0.0.2" : c.flow
            #expect(Self.describe(d.key) == expected, "\(c.name)")
        }
        let byName = Dictionary(uniqueKeysWithValues: zip(Self.cases.map(\.name), rows))
        #expect(byName["vxlan"]?["vxlan.vni"] == "42")
        #expect(byName["geneve"]?["geneve.vni"] == "0x00002b")
        #expect(byName["gre"]?["gre.key"] == "0x00000005")
        #expect(byName["gtpu"]?["gtp.teid"] == "0x0000004d")
    }

    /// The link layers and layer-2 encapsulations of issue 15, each in a capture of its own
    /// link type: dissected as that protocol, with the fields they were built with.
    struct LinkCase: Sendable {
        let name: String
        let linkType: UInt32
        let layers: [Layer]
        let protocols: String
        let flow: String
        /// tshark field: expected value
        let fields: [String: String]
    }

    static let linkCases: [LinkCase] = [
        LinkCase(name: "pbb", linkType: 1,
                 layers: [.ethernet(), .vlan(id: 100, tpid: 0x88A8), .pbb(isid: 0x12345, pcp: 5), .ethernet(dst: "02:00:00:00:00:c1", src: "02:00:00:00:00:c2"), .vlan(id: 7)] + tcp4,
                 protocols: "eth:ethertype:ieee8021ad:ethertype:vlan:ethertype:ip:tcp", flow: "10.0.0.1 1234 > 10.0.0.2 80",
                 fields: ["ieee8021ah.isid": "74565", "ieee8021ah.priority": "5", "ieee8021ah.cdst": "02:00:00:00:00:c1",
                          "ieee8021ah.csrc": "02:00:00:00:00:c2", "ieee8021ah.etype": "0x8100", "vlan.id": "7"]),
        LinkCase(name: "fabricpath", linkType: 1, layers: [.fabricPath(ftag: 5, ttl: 20, fcs: true), .ethernet()] + udp6,
                 protocols: "eth:cfp:eth:ethertype:ipv6:udp", flow: "2001:db8::1 40001 > 2001:db8::2 9999",
                 fields: ["cfp.ftag": "5", "cfp.ttl": "20", "eth.type": "0x86dd", "cfp.fcs.status": "1"]),
        LinkCase(name: "llc-snap", linkType: 1, layers: [.ieee8023(padding: 2), .llcSnap()] + tcp4,
                 protocols: "eth:llc:ip:tcp", flow: "10.0.0.1 1234 > 10.0.0.2 80",
                 fields: ["eth.len": "68", "llc.dsap": "0xaa", "llc.oui": "0", "llc.type": "0x0800", "eth.trailer": "0000"]),
        LinkCase(name: "ppp", linkType: 9, layers: [.ppp()] + tcp4, protocols: "ppp:ip:tcp", flow: "10.0.0.1 1234 > 10.0.0.2 80",
                 fields: ["ppp.address": "0xff", "ppp.control": "0x03", "ppp.protocol": "0x0021"]),
        LinkCase(name: "ppp-bare", linkType: 9, layers: [.ppp(addressControl: false)] + udp6, protocols: "ppp:ipv6:udp",
                 flow: "2001:db8::1 40001 > 2001:db8::2 9999", fields: ["ppp.address": "", "ppp.protocol": "0x0057"]),
        LinkCase(name: "ppp-mpls", linkType: 9, layers: [.ppp(), .mpls(labels: [16])] + tcp4, protocols: "ppp:mpls:ip:tcp",
                 flow: "10.0.0.1 1234 > 10.0.0.2 80", fields: ["ppp.protocol": "0x0281", "mpls.label": "16"]),
        LinkCase(name: "ppp-hdlc", linkType: 50, layers: [.ppp()] + udp6, protocols: "ppp:ipv6:udp",
                 flow: "2001:db8::1 40001 > 2001:db8::2 9999", fields: ["ppp.address": "0xff", "ppp.protocol": "0x0057"]),
        LinkCase(name: "cisco-hdlc", linkType: 50, layers: [.ciscoHDLC()] + tcp4, protocols: "ppp:chdlc:ip:tcp",
                 flow: "10.0.0.1 1234 > 10.0.0.2 80", fields: ["chdlc.address": "0x0f", "chdlc.protocol": "0x0800"]),
        LinkCase(name: "nflog", linkType: 239, layers: [.nflog(resourceID: 7, prefix: "lb drop")] + tcp4, protocols: "nflog:ip:tcp",
                 flow: "10.0.0.1 1234 > 10.0.0.2 80",
                 fields: ["nflog.family": "2", "nflog.version": "0", "nflog.res_id": "7", "nflog.prefix": "lb drop", "nflog.protocol": "0x0800"]),
        LinkCase(name: "nflog6", linkType: 239, layers: [.nflog()] + udp6, protocols: "nflog:ipv6:udp",
                 flow: "2001:db8::1 40001 > 2001:db8::2 9999", fields: ["nflog.family": "10", "nflog.prefix": "lb"]),
        LinkCase(name: "fddi", linkType: 10, layers: [.fddi(dst: "02:00:00:00:00:f1", src: "02:00:00:00:00:f2"), .llcSnap()] + tcp4,
                 protocols: "fddi:llc:ip:tcp", flow: "10.0.0.1 1234 > 10.0.0.2 80",
                 // Wireshark shows FDDI addresses with each byte's bits reversed (FDDI's
                 // non-canonical order); lb copies them as captured
                 fields: ["fddi.fc": "0x50", "fddi.dst": "40:00:00:00:00:8f", "fddi.src": "40:00:00:00:00:4f", "llc.type": "0x0800"]),
    ]

    @Test func linkLayersAreWhatWiresharkSees() throws {
        let scratch = try ScratchDirectory("lbgen-links")
        let decoder = Decoder()
        for c in Self.linkCases {
            let frame = PacketBuilder.build(c.layers)
            let file = scratch.path + "/\(c.name).pcap"
            try Data(Pcap.file(linkType: c.linkType, nanosecond: false, packets: [(0, frame)])).write(to: URL(fileURLWithPath: file))
            let extra = c.fields.keys.sorted()
            let rows = try Self.dissect(file, options: ["-o", "cfp.check_fcs:TRUE"], fields: ["frame.protocols", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "tcp.srcport",
                                                       "tcp.dstport", "udp.srcport", "udp.dstport", "_ws.malformed", "_ws.expert.severity",
                                                       "ip.checksum.status", "tcp.checksum.status", "udp.checksum.status"] + extra,
                                        in: scratch.path)
            let row = try #require(rows.first, "\(c.name): no row")
            let protocols = row["frame.protocols"]!
            #expect((protocols.hasSuffix(":data") ? String(protocols.dropLast(5)) : protocols) == c.protocols, "\(c.name): \(row)")
            #expect(row["_ws.malformed"] == "" && (Int(row["_ws.expert.severity"]!) ?? 0) <= Self.note, "\(c.name): \(row)")
            for f in ["ip", "tcp", "udp"] where row["\(f).checksum.status"] != "" {
                #expect(row["\(f).checksum.status"] == "1", "\(c.name): \(f) checksum")
            }
            for (k, v) in c.fields { #expect(row[k] == v, "\(c.name): \(k) is \(row[k] ?? "-"), not \(v)") }
            let src = row["ipv6.src"]!.isEmpty ? row["ip.src"]! : row["ipv6.src"]!
            let dst = row["ipv6.dst"]!.isEmpty ? row["ip.dst"]! : row["ipv6.dst"]!
            let ports = ["tcp", "udp"].first { !row["\($0).srcport"]!.isEmpty }
            #expect(ports.map { "\(src) \(row["\($0).srcport"]!) > \(dst) \(row["\($0).dstport"]!)" } == c.flow, "\(c.name)")
            // LBCore's decoder finds the same flow
            let link = try #require(LinkType(linktype: c.linkType))
            let d = frame.withUnsafeBytes { decoder.decode($0, link: link) }
            #expect(d.error == .none && Self.describe(d.key) == c.flow, "\(c.name): \(d.error)")
        }
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
