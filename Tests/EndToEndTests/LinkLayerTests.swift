import Foundation
import LBCore
import LBGen
import Testing

/// Issue 15 item 1, end to end: a trace of each link layer and layer-2 encapsulation that Zeek
/// decodes (PPP, PPP in HDLC framing, NFLOG, FDDI; PBB, FabricPath and 802.3 LLC/SNAP on
/// Ethernet) goes through `lb -i pcap:TRACE -p g:3` with an `lb cat` per ring:
/// - lb counts as non-IP exactly the non-IP frames put in (LCP, ARP, LLDP, STP, SMT ...);
/// - what lb delivers is, byte for byte, the IP packet behind a synthesized Ethernet header
///   (PPP, NFLOG, FDDI) or the frame as it was (PBB, FabricPath, 802.3: Zeek reads them);
/// - every packet of a flow, both directions and every fragment, is in one ring.
@Suite("Link layers through lb", .serialized)
struct LinkLayerTests {
    static let c4: IPv4 = "10.1.0.1", s4: IPv4 = "10.1.0.2"
    static let c6: IPv6 = "2001:db8:1::1", s6: IPv6 = "2001:db8:1::2"

    /// The IP packets of the test flows, each with its flow's index: 24 flows of TCP, UDP and
    /// ICMP over both families, three packets each way, and one UDP datagram in 3 fragments
    /// with a reply.
    static func ipPackets() -> [(flow: Int, bytes: [UInt8])] {
        var out: [(Int, [UInt8])] = []
        var id: UInt16 = 1
        for f in 0..<24 {
            let v6 = f % 2 == 1
            let cport = UInt16(40000 + f), sport: UInt16 = [80, 53, 443][f % 3]
            for turn in 0..<6 {
                let fromClient = turn % 2 == 0
                let ip: Layer
                if v6 {
                    let (a, b) = fromClient ? (Self.c6, Self.s6) : (Self.s6, Self.c6)
                    ip = .ipv6(src: a, dst: b, flowLabel: UInt32(f))
                } else {
                    let (a, b) = fromClient ? (Self.c4, Self.s4) : (Self.s4, Self.c4)
                    ip = .ipv4(src: a, dst: b, id: id)
                }
                id &+= 1
                let (sp, dp) = fromClient ? (cport, sport) : (sport, cport)
                let l4: Layer
                switch f % 3 {
                case 0: l4 = .tcp(sport: sp, dport: dp, seq: UInt32(turn), flags: .ack)
                case 1: l4 = .udp(sport: sp, dport: dp)
                default: l4 = v6 ? .icmp6Echo(id: UInt16(f), seq: UInt16(turn), reply: !fromClient)
                                 : .icmpEcho(id: UInt16(f), seq: UInt16(turn), reply: !fromClient)
                }
                out.append((f, PacketBuilder.build(ip, l4, .filler(10 + turn + f))))
            }
        }
        let dg = PacketBuilder.build(.ipv4(src: Self.c4, dst: Self.s4, id: 999), .udp(sport: 41000, dport: 2049), .filler(1000))
        for frag in Fragmenter.ipv4(dg, size: 400) { out.append((24, frag)) }
        out.append((24, PacketBuilder.build(.ipv4(src: Self.s4, dst: Self.c4, id: 1000), .udp(sport: 2049, dport: 41000), .filler(30))))
        return out
    }

    struct Trace {
        let name: String
        let linkType: UInt32
        var frames: [[UInt8]] = []
        /// what lb must deliver for each frame
        var expected: [[UInt8]] = []
        /// the flow of each frame (-1: non-IP)
        var flowOf: [Int] = []
        var nonIP = 0
        var unparsed: [String: Int] = [:]

        init(_ name: String, _ linkType: UInt32) { self.name = name; self.linkType = linkType }

        mutating func add(_ frame: [UInt8], expect: [UInt8], flow: Int) {
            frames.append(frame); expected.append(expect); flowOf.append(flow)
            if flow < 0 { nonIP += 1 }
        }
    }

    static func ethernet(_ dst: [UInt8], _ src: [UInt8], _ type: UInt16) -> [UInt8] { dst + src + [UInt8(type >> 8), UInt8(type & 0xFF)] }
    static let zeros: [UInt8] = [0, 0, 0, 0, 0, 0]
    static func etherType(_ ip: [UInt8]) -> UInt16 { ip[0] >> 4 == 6 ? 0x86DD : 0x0800 }
    static func opaque(_ f: [UInt8]) -> [UInt8] { ethernet(zeros, zeros, 0x88B5) + f }
    static func kept(_ f: [UInt8]) -> ([UInt8], [UInt8]) { (f, f) }
    static let arp = PacketBuilder.build(.arp(senderIP: c4, targetIP: s4))

    /// A link layer converted to Ethernet: the IP packet behind a synthesized header.
    static func converted(_ name: String, _ linkType: UInt32, frame: (Int, [UInt8]) -> [UInt8],
                          header: ([UInt8]) -> [UInt8], nonIP: [([UInt8], [UInt8])]) -> Trace {
        var t = Trace(name, linkType)
        for (i, p) in ipPackets().enumerated() { t.add(frame(i, p.bytes), expect: header(p.bytes) + p.bytes, flow: p.flow) }
        for (k, (f, e)) in nonIP.enumerated() { t.add(f, expect: e, flow: -1 - k) }
        return t
    }

    /// A layer-2 encapsulation on Ethernet: the frame inside is delivered (PBB, FabricPath), or
    /// the frame as Ethernet II (802.3 LLC/SNAP).
    static func unwrapped(_ name: String, frame: (Int, [UInt8]) -> [UInt8], expect: (Int, [UInt8]) -> [UInt8],
                          nonIP: [([UInt8], [UInt8])]) -> Trace {
        var t = Trace(name, 1)
        for (i, p) in ipPackets().enumerated() { t.add(frame(i, p.bytes), expect: expect(i, p.bytes), flow: p.flow) }
        for (k, (f, e)) in nonIP.enumerated() { t.add(f, expect: e, flow: -1 - k) }
        return t
    }

    static func traces() -> [Trace] {
        let lcp = PacketBuilder.build(.ppp(proto: 0xC021), .payload([9, 1, 0, 8, 0x12, 0x34, 0x56, 0x78]))      // echo request
        let ipcp = PacketBuilder.build(.ppp(proto: 0x8021), .payload([1, 1, 0, 10, 3, 6, 10, 1, 0, 1]))
        let slarp = PacketBuilder.build(.ciscoHDLC(address: 0x8F, type: 0x8035), .payload([0, 0, 0, 2] + Array(repeating: 0, count: 14)))
        let bridged = PacketBuilder.build(.nflog(family: 7), .payload(arp))                                        // AF_BRIDGE
        let noPayload: [UInt8] = [2, 0, 0, 1, 8, 0, 1, 0, 8, 0, 3, 0]                                              // only NFULA_PACKET_HDR
        let fddiMACs = { (f: [UInt8]) in Array(f[1..<7]) + Array(f[7..<13]) }
        let smt = PacketBuilder.build(.fddi(frameControl: 0x41, dst: "01:80:c2:00:01:00"), .filler(32))
        let fddiARP = PacketBuilder.build(.fddi(dst: .broadcast), .llcSnap(type: 0x0806), .payload(arp))
        let lldp = PacketBuilder.build(.ethernet(dst: "01:80:c2:00:00:0e", type: 0x88CC), .payload([2, 7, 4, 2, 0, 0, 0, 0, 1, 0, 0]))
        let pbb: [Layer] = [.ethernet(dst: "02:bb:00:00:00:02", src: "02:bb:00:00:00:01"), .vlan(id: 100, tpid: 0x88A8), .pbb(isid: 0x10001)]
        var nflogTrace = converted("nflog", 239, frame: { _, p in PacketBuilder.build(.nflog(), .ip(p)) },
                                   header: { ethernet(zeros, zeros, etherType($0)) },
                                   nonIP: [(bridged, opaque(bridged)), (noPayload, opaque(noPayload))])
        nflogTrace.unparsed = ["nflog_no_payload": 1]
        return [
            converted("ppp", 9, frame: { i, p in PacketBuilder.build(.ppp(addressControl: i % 2 == 0, compressed: i % 4 == 1), .ip(p)) },
                      header: { ethernet(zeros, zeros, etherType($0)) }, nonIP: [(lcp, opaque(lcp)), (ipcp, opaque(ipcp))]),
            converted("ppp-hdlc", 50, frame: { _, p in PacketBuilder.build(.ppp(), .ip(p)) },
                      header: { ethernet(zeros, zeros, etherType($0)) }, nonIP: [(lcp, opaque(lcp)), (slarp, opaque(slarp))]),
            nflogTrace,
            converted("fddi", 10, frame: { _, p in PacketBuilder.build(.fddi(dst: "02:00:00:00:00:f1", src: "02:00:00:00:00:f2"), .llcSnap(), .ip(p)) },
                      header: { ethernet(MAC("02:00:00:00:00:f1").bytes, MAC("02:00:00:00:00:f2").bytes, etherType($0)) },
                      nonIP: [(smt, opaque(smt)), (fddiARP, fddiMACs(fddiARP) + [0x08, 0x06] + arp)]),
            unwrapped("pbb", frame: { i, p in PacketBuilder.build(pbb + [.ethernet(), .vlan(id: UInt16(1 + i % 3)), .ip(p)]) },
                      expect: { i, p in PacketBuilder.build(.ethernet(), .vlan(id: UInt16(1 + i % 3)), .ip(p)) },
                      nonIP: [(PacketBuilder.build(pbb + [.ethernet(dst: .broadcast), .payload(arp)]), PacketBuilder.build(.ethernet(dst: .broadcast), .payload(arp))),
                              (PacketBuilder.build(pbb + [.payload(lldp)]), lldp)]),
            unwrapped("fabricpath", frame: { _, p in PacketBuilder.build(.fabricPath(), .ethernet(), .ip(p)) },
                      expect: { _, p in PacketBuilder.build(.ethernet(), .ip(p)) },
                      nonIP: [(PacketBuilder.build(.fabricPath(), .ethernet(dst: .broadcast), .payload(arp)), PacketBuilder.build(.ethernet(dst: .broadcast), .payload(arp))),
                              (lldp, lldp)]),
            unwrapped("llc-snap", frame: { i, p in PacketBuilder.build(.ieee8023(padding: i % 5), .llcSnap(), .ip(p)) },
                      expect: { _, p in ethernet(MAC.b.bytes, MAC.a.bytes, etherType(p)) + p },
                      nonIP: [(PacketBuilder.build(.ieee8023(), .llcSnap(type: 0x0806), .payload(arp)), ethernet(MAC.b.bytes, MAC.a.bytes, 0x0806) + arp),
                              kept(PacketBuilder.build(.ieee8023(dst: "01:80:c2:00:00:00"), .llc(dsap: 0x42, ssap: 0x42), .filler(35))),
                              kept(PacketBuilder.build(.ieee8023(), .payload([0xFF, 0xFF, 0, 30, 0, 0x11]), .filler(24))),
                              kept(PacketBuilder.build(.ethernet(type: 0x8035), .payload(arp)))]),
        ]
    }

    @Test("link layer", arguments: ["ppp", "ppp-hdlc", "nflog", "fddi", "pbb", "fabricpath", "llc-snap"])
    func linkLayer(_ name: String) throws {
        let t = try #require(Self.traces().first { $0.name == name })
        #expect(Set(t.expected).count == t.expected.count, "\(name): the test's packets are not all distinct")
        let scratch = try ScratchDirectory("link-\(name)")
        let file = scratch.path + "/\(name).pcap"
        let trace = t.frames.enumerated().map { (timestampNanos: 1_700_000_000_000_000_000 + UInt64($0.offset) * 1000, bytes: $0.element) }
        try Data(LBCore.Pcap.file(linkType: t.linkType, nanosecond: false, packets: trace)).write(to: URL(fileURLWithPath: file))

        var run = LBRun(dir: scratch.path, groups: [("g", 3)])
        try run.startLB(file)
        try run.startConsumers()
        let stats = try run.finish()
        #expect(stats.int("packets_received") == t.frames.count)
        #expect(stats.int("non_ip_packets") == t.nonIP, "\(name): non_ip_packets \(stats.int("non_ip_packets")), put in \(t.nonIP)")
        #expect(stats.int("packets_unparsed") == t.unparsed.values.reduce(0, +), "\(name): \(stats["unparsed"] ?? "")")
        for (reason, n) in t.unparsed { #expect(stats.int("unparsed", reason) == n, "\(name): \(reason)") }

        // every delivered packet is one we expect, and each expected one arrives once
        var index: [[UInt8]: Int] = [:]
        for (i, e) in t.expected.enumerated() { index[e] = i }
        var ringOf: [Int: Int] = [:]
        var delivered = 0
        for r in run.rings {
            let f = run.files(r)[0]
            #expect(try LBRun.count(f, dir: scratch.path) >= 0)          // tcpdump reads it
            for rec in try Pcap.records(f) {
                delivered += 1
                guard let i = index[rec.data] else {
                    Issue.record("\(name): ring \(r.name) delivered an unexpected packet: \(rec.data.prefix(48).map { String(format: "%02x", $0) }.joined())")
                    continue
                }
                #expect(ringOf[i] == nil, "\(name): packet \(i) delivered twice")
                ringOf[i] = r.index
            }
        }
        #expect(delivered == t.frames.count && ringOf.count == t.frames.count, "\(name): \(delivered) delivered, \(ringOf.count) of \(t.frames.count) matched")
        // both directions and every fragment of a flow in one ring
        var flowRings: [Int: Set<Int>] = [:]
        for (i, ring) in ringOf where t.flowOf[i] >= 0 { flowRings[t.flowOf[i], default: []].insert(ring) }
        for (flow, rings) in flowRings.sorted(by: { $0.key < $1.key }) {
            #expect(rings.count == 1, "\(name): flow \(flow) is split over rings \(rings.sorted())")
        }
        #expect(Set(flowRings.values.flatMap { $0 }).count > 1, "\(name): every flow in one ring: the hash does not spread them")
    }

    /// `lb gen --link` and `--encap` traces decode cleanly: nothing unparsed, nothing non-IP.
    @Test(arguments: ["--link ppp", "--link ppp-hdlc", "--link nflog", "--link fddi", "--encap pbb", "--encap fabricpath", "--encap llc-snap"])
    func generatedTraces(_ option: String) throws {
        let scratch = try ScratchDirectory("link-gen")
        let file = scratch.path + "/gen.pcap"
        let args = ["gen", "-w", file, "--packets", "400", "--flows", "40"] + option.split(separator: " ").map(String.init)
        let (status, out) = try Tool.run(Tool.lb, args, in: scratch.path, label: "lb-gen")
        try #require(status == 0, "lb gen \(option): \(out)")
        var run = LBRun(dir: scratch.path, groups: [("g", 2)])
        try run.startLB(file)
        try run.startConsumers()
        let stats = try run.finish()
        #expect(stats.int("packets_received") == 400)
        #expect(stats.int("non_ip_packets") == 0 && stats.int("packets_unparsed") == 0, "\(option): \(stats)")
        var n = 0
        for r in run.rings { n += try LBRun.count(run.files(r)[0], dir: scratch.path) }
        #expect(n == 400 - stats.int("fragments", "merged"))
    }
}
