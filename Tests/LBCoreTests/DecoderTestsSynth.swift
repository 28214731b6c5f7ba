import LBCore
import LBGen
import Testing

// The generator the decoder tests rely on: the builder's lengths and checksums, and the traffic
// synthesizer's determinism, mix, TCP sequence numbers and ground truth.

/// The IP packet at the decoded l3 offset (to check generated headers).
private func ipPacket(_ f: [UInt8], _ d: Decoded) -> [UInt8] { Array(f[d.l3..<d.end]) }

/// Whether the IPv4 header checksum, and the TCP/UDP checksum of an unfragmented packet, verify.
private func checksumsVerify(_ p: [UInt8]) -> Bool {
    if p[0] >> 4 == 4 {
        let ihl = Int(p[0] & 0x0F) * 4
        let total = Int(p[2]) << 8 | Int(p[3])
        guard Checksum.verifies(Array(p[0..<ihl])) else { return false }
        if p[6] & 0x3F != 0 || p[7] != 0 { return true }          // a fragment
        let l4 = Array(p[ihl..<total])
        let pseudo = Checksum.pseudoHeader(src: Array(p[12..<16]), dst: Array(p[16..<20]), proto: p[9], length: l4.count)
        switch p[9] {
        case 6: return Checksum.verifies(l4, initial: pseudo)
        case 17: return (l4[6] == 0 && l4[7] == 0) || Checksum.verifies(l4, initial: pseudo)
        case 1: return Checksum.verifies(l4)
        default: return true
        }
    } else {
        guard p[6] != 44 else { return true }
        let l4 = Array(p[40...])
        let pseudo = Checksum.pseudoHeader(src: Array(p[8..<24]), dst: Array(p[24..<40]), proto: p[6], length: l4.count)
        return [6, 17, 58].contains(p[6]) ? Checksum.verifies(l4, initial: pseudo) : true
    }
}

@Suite("LBGen: packet builder")
struct PacketBuilderTests {
    @Test func addressLiterals() {
        #expect(IPv4(parsing: "10.1.2.3")?.value == 0x0A01_0203)
        #expect(IPv4(parsing: "256.1.1.1") == nil && IPv4(parsing: "1.2.3") == nil)
        let a: IPv6 = "2001:db8::1"
        #expect(a.hi == 0x2001_0DB8_0000_0000 && a.lo == 1)
        let b: IPv6 = "::"
        #expect(b.hi == 0 && b.lo == 0)
        #expect(IPv6(parsing: "1:2:3:4:5:6:7:8")?.lo == 0x0005_0006_0007_0008)
        #expect(IPv6(parsing: "1::2::3") == nil && IPv6(parsing: "12345::") == nil)
        #expect(IPv6(parsing: "fe80::1:2")?.description == "fe80:0:0:0:0:0:1:2")
        let m: MAC = "02:00:00:00:00:0a"
        #expect(m.value == 0x0200_0000_000A && m.description == "02:00:00:00:00:0a")
    }

    @Test func lengthsAndChecksums() {
        let samples: [[Layer]] = [
            [.ethernet()] + inner4, [.ethernet()] + inner6,
            [.ethernet(), .ipv4(src: Addr.c4, dst: Addr.s4, options: [1, 1, 1]), .udp(sport: 1, dport: 2), .filler(33)],
            [.ethernet(), .ipv6(src: Addr.c6, dst: Addr.s6, ext: [.hopByHop(), .auth()]), .tcp(sport: 1, dport: 2, options: [2, 4, 5, 180])],
            [.ethernet(), .ipv4(src: Addr.c4, dst: Addr.s4), .icmpEcho(id: 1, seq: 2), .filler(7)],
            [.ethernet(), .ipv6(src: Addr.c6, dst: Addr.s6), .icmp6Echo(id: 1, seq: 2), .filler(7)],
            outer4 + [.udp(sport: 1, dport: 4789), .vxlan(vni: 1), .ethernet()] + inner6,
        ]
        for layers in samples {
            let f = build(layers)
            let d = decodeFrame(f)
            #expect(d.error == .none)
            let p = ipPacket(f, d)
            if p[0] >> 4 == 4 { #expect(Int(p[2]) << 8 | Int(p[3]) == p.count) } else { #expect(Int(p[4]) << 8 | Int(p[5]) + 40 == p.count) }
            #expect(checksumsVerify(p))
            #expect(checksumsVerify(Array(f[14...])))
        }
    }

    @Test func greChecksumVerifies() {
        let f = build(outer4 + [.gre(checksum: true, key: 1)] + inner4)
        #expect(Checksum.verifies(Array(f[34...])))
    }

    @Test func radiotapFCSIsTheCRCOfTheFrame() {
        let wifi = build([.wifiData(), .llcSnap()] + inner4)
        let f = build(.radiotap(fcs: true), .payload(wifi))
        let crc = Checksum.crc32(wifi)
        #expect(Array(f.suffix(4)) == [UInt8(crc & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 24)])
        #expect(Checksum.crc32(Array("123456789".utf8)) == 0xCBF4_3926)      // the standard check values
        #expect(Checksum.crc32c(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test func fragmenterCoversTheDatagram() {
        let dg = build(.ipv4(src: Addr.c4, dst: Addr.s4, id: 3, df: false), .udp(sport: 1, dport: 2), .filler(1000))
        for sizes in [[8], [16, 512], [1000], [5000]] {
            let frags = Fragmenter.ipv4(dg, sizes: sizes)
            #expect(frags.allSatisfy { Checksum.verifies(Array($0[0..<20])) })
            #expect(frags.map { $0.count - 20 }.reduce(0, +) == dg.count - 20)
            #expect(frags.dropLast().allSatisfy { ($0.count - 20) % 8 == 0 && $0[6] & 0x20 != 0 })
            #expect(frags.last.map { $0[6] & 0x20 == 0 } == true)
        }
        let six = build(.ipv6(src: Addr.c6, dst: Addr.s6, ext: [.routing(addresses: [Addr.s6])]), .udp(sport: 1, dport: 2), .filler(100))
        let frags6 = Fragmenter.ipv6(six, size: 48, id: 1)
        // the routing header stays in front of the fragment header
        #expect(frags6.allSatisfy { $0[6] == 43 && $0[40] == 44 })
        #expect(reassemble(frags6) == six)
    }
}

@Suite("LBGen: traffic synthesizer")
struct TrafficSynthTests {
    @Test func deterministicAndExact() {
        let a = TrafficSynth.generate(SynthConfig(seed: 5, flows: 40, packets: 1234))
        let b = TrafficSynth.generate(SynthConfig(seed: 5, flows: 40, packets: 1234))
        let c = TrafficSynth.generate(SynthConfig(seed: 6, flows: 40, packets: 1234))
        #expect(a.count == 1234 && c.count == 1234)
        #expect(a.map(\.bytes) == b.map(\.bytes) && a.map(\.timestampNanos) == b.map(\.timestampNanos))
        #expect(a.map(\.bytes) != c.map(\.bytes))
        #expect(zip(a, a.dropFirst()).allSatisfy { $0.timestampNanos < $1.timestampNanos })
        #expect(Set(a.map(\.flowIndex)).count == 40)
        #expect(TrafficSynth.generate(SynthConfig(packets: 0)).isEmpty)
        #expect(TrafficSynth.generate(SynthConfig(flows: 50, packets: 7)).count == 7)
    }

    @Test func theMixHasEveryKind() {
        let ps = TrafficSynth.generate(SynthConfig(seed: 9, flows: 300, packets: 6000))
        let kinds = Set(ps.map { "\($0.kind)" })
        #expect(kinds == ["tcp", "udp", "icmp", "fragmentedUDP"])
        #expect(Set(ps.map(\.encap)) == [.none, .vxlan, .geneve])
        #expect(ps.contains { !$0.flow.isIPv4 } && ps.contains { $0.flow.isIPv4 })
        #expect(ps.contains { $0.isFragment && $0.firstFragment } && ps.contains { $0.isFragment && !$0.firstFragment })
        let v6frag = ps.first { $0.isFragment && !$0.flow.isIPv4 }
        #expect(v6frag != nil)
    }

    @Test func everyPacketDecodesToItsFlow() {
        let dec = Decoder()
        for p in TrafficSynth.generate(SynthConfig(seed: 21, flows: 200, packets: 5000)) {
            let d = decodeFrame(p.bytes, decoder: dec)
            #expect(d.error == .none && d.encap == p.encap && d.isFragment == p.isFragment)
            #expect(checksumsVerify(Array(p.bytes[14...])))
            #expect(checksumsVerify(ipPacket(p.bytes, d)))
            if p.isFragment && !p.firstFragment {
                #expect(FlowTuple(d.key) == p.flow.withoutPorts)
            } else {
                #expect(FlowTuple(d.key) == p.flow)
            }
        }
    }

    @Test func mirroredDirectionsUseDifferentOuterPorts() {
        var cfg = SynthConfig(seed: 3, flows: 60, packets: 3000, mode: .vxlanOnly)
        cfg.shares.fragmentedUDP = 0
        let ps = TrafficSynth.generate(cfg)
        #expect(ps.allSatisfy { $0.encap == .vxlan })
        var ports: [Int: (c: Set<UInt16>, s: Set<UInt16>)] = [:]
        for p in ps {
            let sport = UInt16(p.bytes[34]) << 8 | UInt16(p.bytes[35])
            var e = ports[p.flowIndex] ?? ([], [])
            if p.fromClient { e.c.insert(sport) } else { e.s.insert(sport) }
            ports[p.flowIndex] = e
        }
        for (_, e) in ports where !e.c.isEmpty && !e.s.isEmpty {
            #expect(e.c.count == 1 && e.s.count == 1 && e.c != e.s)
        }
    }

    @Test func tcpSequenceNumbersAreConsistent() {
        var cfg = SynthConfig(seed: 17, flows: 50, packets: 3000)
        cfg.shares.tcp = 1; cfg.shares.udp = 0; cfg.shares.icmp = 0; cfg.shares.fragmentedUDP = 0
        let dec = Decoder()
        struct State { var next: [Bool: UInt32] = [:]; var flags: [UInt8] = [] }
        var flows: [Int: State] = [:]
        for p in TrafficSynth.generate(cfg) {
            let d = decodeFrame(p.bytes, decoder: dec)
            let ip = ipPacket(p.bytes, d)
            let ihl = ip[0] >> 4 == 4 ? Int(ip[0] & 0x0F) * 4 : 40
            let total = ip[0] >> 4 == 4 ? Int(ip[2]) << 8 | Int(ip[3]) : 40 + (Int(ip[4]) << 8 | Int(ip[5]))
            let t = Array(ip[ihl..<total])
            let seq = UInt32(t[4]) << 24 | UInt32(t[5]) << 16 | UInt32(t[6]) << 8 | UInt32(t[7])
            let ack = UInt32(t[8]) << 24 | UInt32(t[9]) << 16 | UInt32(t[10]) << 8 | UInt32(t[11])
            let flags = t[13]
            let len = t.count - Int(t[12] >> 4) * 4
            var s = flows[p.flowIndex] ?? State()
            if let want = s.next[p.fromClient] { #expect(seq == want) }
            if flags & 0x10 != 0, let other = s.next[!p.fromClient] { #expect(ack == other) }
            s.next[p.fromClient] = seq &+ UInt32(len) &+ (flags & 0x03 != 0 ? 1 : 0)
            s.flags.append(flags)
            flows[p.flowIndex] = s
        }
        for (_, s) in flows where s.flags.count >= 6 {
            #expect(Array(s.flags.prefix(3)) == [0x02, 0x12, 0x10])
            #expect(Array(s.flags.suffix(3)) == [0x11, 0x11, 0x10])
        }
    }

    @Test func udp64Mode() {
        let ps = TrafficSynth.generate(SynthConfig(seed: 1, flows: 1000, packets: 5000, mode: .udp64))
        #expect(ps.count == 5000 && ps.allSatisfy { $0.bytes.count == 60 })
        #expect(Set(ps.map(\.flow)).count == 1000)
        let dec = Decoder()
        for p in ps.prefix(2000) {
            let d = decodeFrame(p.bytes, decoder: dec)
            #expect(FlowTuple(d.key) == p.flow && d.key.proto == 17)
        }
    }

    @Test func sizeDistributions() {
        var cfg = SynthConfig(seed: 2, flows: 20, packets: 800)
        cfg.shares.tcp = 1; cfg.shares.udp = 0; cfg.shares.icmp = 0; cfg.shares.fragmentedUDP = 0
        cfg.shares.vxlan = 0; cfg.shares.geneve = 0; cfg.shares.ipv6 = 0
        cfg.sizes = .fixed(400)
        let ps = TrafficSynth.generate(cfg)
        let data = ps.filter { $0.bytes[47] & 0x08 != 0 }         // PSH: the data segments
        #expect(!data.isEmpty && data.allSatisfy { $0.bytes.count == 400 })
        cfg.sizes = .uniform(100...200)
        let us = TrafficSynth.generate(cfg).filter { $0.bytes[47] & 0x08 != 0 }
        #expect(us.allSatisfy { (100...200).contains($0.bytes.count) })
    }

    @Test func pcapRoundTrip() throws {
        let ps = TrafficSynth.generate(SynthConfig(seed: 8, flows: 10, packets: 300))
        let file = Pcap.file(linkType: 1, nanosecond: true, packets: ps.trace)
        let back = try file.withUnsafeBytes { buf in
            var r = try CaptureReader(buf)
            var out: [(UInt64, [UInt8])] = []
            while let p = r.next() { out.append((p.timestampNanos, Array(p.data))) }
            return out
        }
        #expect(back.map(\.0) == ps.map(\.timestampNanos))
        #expect(back.map(\.1) == ps.map(\.bytes))
    }
}
