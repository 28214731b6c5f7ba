import Foundation
import LBCore
import LBGen
import Testing

// Property test of the decoder on hostile input: every packet of the Zeek corpus (with its own
// link type and every other one), those packets mutated and cut short, fully random buffers,
// and the builder's packets of every encapsulation mutated the same way. Whatever the input,
// the decoder must not crash or read out of bounds (each frame sits in an allocation of exactly
// its size, so the address sanitizer and the debug bounds checks see any overread), must
// terminate, and must return a result whose offsets are consistent.
//
// Seeded: a failure names the seed and input so it reproduces. LB_FUZZ_ITERATIONS scales the
// work: mutations per corpus packet (default 40; 80 doubles everything random).
// Run under ASan: swift test --scratch-path .build-gen-asan --sanitize=address --filter FuzzTests

enum Fuzz {
    static let mutationsPerPacket: Int = {
        if let s = ProcessInfo.processInfo.environment["LB_FUZZ_ITERATIONS"], let n = Int(s), n > 0 { return n }
        return 40
    }()
    static var scale: Double { Double(mutationsPerPacket) / 40 }

    /// Configurations the inputs are decoded under: the default; `--decap keep` with a shallow
    /// depth; and one that treats common service ports as tunnels, so ordinary payloads are
    /// parsed as tunnel headers.
    static let configs: [DecodeConfig] = [
        DecodeConfig(),
        DecodeConfig(maxDepth: 2, keepEncapsulation: true, tuple: .three, hashVLAN: true, hashVNI: true),
        DecodeConfig(tunnelPorts: DecodeConfig.defaultTunnelPorts + [
            TunnelPort(53, .vxlan), TunnelPort(80, .geneve), TunnelPort(443, .gtpu), TunnelPort(22, .teredo),
            TunnelPort(25, .ayiya), TunnelPort(123, .greUDP), TunnelPort(8080, .vxlan), TunnelPort(110, .geneve),
            TunnelPort(6667, .gtpu), TunnelPort(21, .ayiya), TunnelPort(3306, .teredo), TunnelPort(67, .greUDP),
        ], maxDepth: 64),
    ]
    static let decoders = configs.map { Decoder($0) }

    /// Decodes `frame` (copied into an allocation of exactly its size) and checks the result,
    /// following A-MSDU subframes. Returns false (after recording an issue) on a violation.
    @discardableResult
    static func run(_ frame: [UInt8], link: LinkType, decoder: Decoder, what: @autoclosure () -> String) -> Bool {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: frame.count, alignment: 1)
        defer { buf.deallocate() }
        if !frame.isEmpty { buf.copyBytes(from: frame) }
        let f = UnsafeRawBufferPointer(buf)
        var subframe = 0
        var turns = 0
        while true {
            let d = decoder.decode(f, link: link, subframe: subframe)
            if let problem = violation(d, f, decoder.config, subframe: subframe) {
                report("\(problem) — \(what()) link \(link) subframe \(subframe) keep \(decoder.config.keepEncapsulation)", frame)
                return false
            }
            let again = decoder.decode(f, link: link, subframe: subframe)
            if again.key != d.key || again.start != d.start || again.end != d.end || again.error != d.error {
                report("decoding twice differs — \(what())", frame)
                return false
            }
            _ = FlowHash.hash(d.key, mode: decoder.config.tuple, extra: d.vni, seeds: decoder.config.seeds)
            if d.nextSubframe == 0 { return true }
            subframe = d.nextSubframe
            turns += 1
            if turns > 70 {
                report("A-MSDU iteration does not end — \(what())", frame)
                return false
            }
        }
    }

    /// The first broken invariant of a result, or nil.
    static func violation(_ d: Decoded, _ f: UnsafeRawBufferPointer, _ c: DecodeConfig, subframe: Int) -> String? {
        let n = f.count
        guard 0 <= d.start, d.start <= d.end, d.end <= n else { return "delivered range \(d.start)..<\(d.end) of \(n)" }
        guard Int(d.depth) <= c.maxDepth else { return "depth \(d.depth) > maxDepth \(c.maxDepth)" }
        guard (d.depth == 0) == (d.encap == .none), (d.depth == 0) == (d.encapMask == 0) else {
            return "depth \(d.depth), encap \(d.encap), mask \(d.encapMask) disagree"
        }
        if d.encap != .none && d.encapMask & 1 << UInt32(d.encap.rawValue) == 0 { return "encap not in mask" }
        if d.error == .tunnelTooDeep && Int(d.depth) != c.maxDepth { return "too deep at depth \(d.depth)" }
        if c.keepEncapsulation && d.depth > 0 && d.start != 0 && d.synthType == 0 { return "keep moved the start" }
        // The innermost IP header: inside the frame, a version 4 or 6 header; when it lies in
        // the delivered range (deliveredL3 non-nil), a whole minimal header is delivered.
        if d.l3 != -1 {
            guard d.l3 >= 0, d.l3 < n else { return "l3 \(d.l3) outside the frame" }
            let v = f[d.l3] >> 4
            guard v == 4 || v == 6 else { return "l3 \(d.l3) is not an IP header (version \(v))" }
            if d.l3 >= d.start {
                guard d.l3 + (v == 4 ? 20 : 40) <= d.end else { return "l3 \(d.l3) header not within \(d.start)..<\(d.end)" }
                guard let dl = d.deliveredL3, dl >= 0, dl < d.deliveredLength else { return "deliveredL3 wrong" }
            } else if d.deliveredL3 != nil {
                return "deliveredL3 for an l3 before the start"
            }
        } else if d.deliveredL3 != nil {
            return "deliveredL3 without l3"
        }
        if d.synthType != 0 {
            for m in [d.synthDst, d.synthSrc] where m != -1 && (m < 0 || m + 6 > n) { return "synthesized MAC at \(m) of \(n)" }
        } else if d.synthDst != -1 || d.synthSrc != -1 {
            return "MAC offsets without a synthesized header"
        }
        if d.nextSubframe != 0 && d.nextSubframe != subframe + 1 { return "nextSubframe \(d.nextSubframe) after \(subframe)" }
        if d.isFragment {
            let fi = d.fragment
            guard d.l3 >= 0, fi.payloadStart > d.l3, fi.payloadStart <= fi.payloadEnd, fi.payloadEnd <= n else {
                return "fragment payload \(fi.payloadStart)..<\(fi.payloadEnd), l3 \(d.l3), frame \(n)"
            }
            guard fi.offset >= 0, fi.offset < 65536 else { return "fragment offset \(fi.offset)" }
        }
        switch d.key.kind {
        case .ports:
            guard [6, 17].contains(d.key.proto) else { return "ports for protocol \(d.key.proto)" }
        case .link:
            guard d.key.srcHi == 1 << 63 && d.key.dstHi == 1 << 63 else { return "link key without its marker" }
        case .addresses, .none:
            break
        }
        if d.hasVLAN && d.vlan > 0x0FFF { return "vlan \(d.vlan)" }
        if d.deliveredLength < 0 { return "negative length" }
        return nil
    }

    nonisolated(unsafe) static var failures = 0

    static func report(_ message: String, _ frame: [UInt8]) {
        failures += 1
        guard failures <= 20 else { return }
        let hex = frame.prefix(160).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        Issue.record("\(message)\n  frame (\(frame.count) bytes): \(hex)")
    }

    /// Bytes a mutation likes to write: header boundaries, version nibbles, flags, EtherTypes.
    static let interesting: [UInt8] = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0x08, 0x45, 0x46, 0x4F, 0x60, 0x86, 0xDD, 0x81, 0x88,
                                       0x65, 0x58, 0x2F, 0x11, 0x06, 0x04, 0x29, 0x2C, 0x3A, 0x12, 0xB5, 0x30, 0x32, 0x3F]

    /// A copy of `frame` with a few bytes changed, mostly in the first 128 (where headers are).
    static func mutate(_ frame: [UInt8], _ rng: inout SeededRNG) -> [UInt8] {
        var m = frame
        guard !m.isEmpty else { return m }
        for _ in 0..<Int.random(in: 1...6, using: &rng) {
            let i = rng.chance(0.8) ? Int.random(in: 0..<min(m.count, 128), using: &rng) : Int.random(in: 0..<m.count, using: &rng)
            switch rng.next() % 4 {
            case 0: m[i] ^= 1 << UInt8(rng.next() % 8)
            case 1: m[i] = UInt8(truncatingIfNeeded: rng.next())
            case 2: m[i] = interesting[Int(rng.next() % UInt64(interesting.count))]
            default:                                    // a 16-bit length or type field
                m[i] = interesting[Int(rng.next() % UInt64(interesting.count))]
                if i + 1 < m.count { m[i + 1] = UInt8(truncatingIfNeeded: rng.next()) }
            }
        }
        return m
    }

    /// Cut lengths for a frame: 0, 1, and random ones.
    static func cuts(_ count: Int, _ rng: inout SeededRNG) -> [Int] {
        guard count > 1 else { return [0] }
        return [0, 1] + (0..<3).map { _ in Int.random(in: 2..<count, using: &rng) }
    }

    /// Frames of every encapsulation the builder makes, with their link types.
    static func builderSamples() -> [(LinkType, [UInt8])] {
        let amsdu = Layer.amsdu([AMSDUSubframe(packet: build(inner4)), AMSDUSubframe(packet: build(inner6)),
                                 AMSDUSubframe(packet: build(.arp(senderIP: Addr.c4, targetIP: Addr.s4)), etherType: 0x0806)])
        let udp = { (port: UInt16) -> [Layer] in outer4 + [.udp(sport: 40000, dport: port)] }
        var eth: [[Layer]] = [
            [.ethernet()] + inner4, [.ethernet()] + inner6,
            [.ethernet(), .vlan(id: 1, tpid: 0x88A8), .vlan(id: 2), .vntag(), .vlan(id: 3)] + inner4,
            [.ethernet(), .mpls(labels: [1, 2, 3])] + inner6,
            [.ethernet(), .mpls(labels: [1], controlWord: true), .ethernet()] + inner4,
            [.ethernet(), .pppoe()] + inner4, [.ethernet(), .llcSnap()] + inner6,
            [.ethernet(), .arp(senderIP: Addr.c4, targetIP: Addr.s4)],
            [.ethernet(), .ipv4(src: Addr.c4, dst: Addr.s4, options: [0x94, 4, 0, 0]), .sctp(sport: 1, dport: 2), .filler(8)],
            [.ethernet(), .ipv6(src: Addr.c6, dst: Addr.s6, ext: [.hopByHop(), .routing(addresses: [Addr.s6]), .auth(), .destination()]),
             .tcp(sport: 1, dport: 2)],
            [.ethernet(), .ipv4(src: Addr.s4, dst: Addr.c4), .icmpUnreachable(quoteLimit: 28)] + inner4,
            [.ethernet(), .ipv6(src: Addr.s6, dst: Addr.c6), .icmp6(type: 1)] + inner6,
            udp(4789) + [.vxlan(vni: 1), .ethernet()] + inner4,
            udp(6081) + [.geneve(vni: 1, options: [GeneveOption(), GeneveOption(data: [1, 2, 3, 4, 5, 6, 7, 8])]), .ethernet()] + inner6,
            udp(6081) + [.geneve(vni: 1, proto: 0x0800), .ipv4(src: Addr.o4, dst: Addr.t4), .udp(sport: 1, dport: 4789),
                         .vxlan(vni: 2), .ethernet()] + inner4,
            udp(6081) + [.geneve(vni: 1)] + inner6,
            outer4 + [.gre(checksum: true, key: 1, seq: 2)] + inner4,
            outer4 + [.gre(key: 1), .ethernet()] + inner6,
            outer4 + [.gre(), .mpls(labels: [5])] + inner4,
            outer4 + [.gre(), .erspan1, .ethernet()] + inner4,
            outer4 + [.gre(seq: 1), .erspan2(session: 5), .ethernet()] + inner4,
            outer4 + [.gre(seq: 1), .erspan3(session: 5, platform: true), .ethernet()] + inner4,
            outer4 + [.gre(seq: 1), .erspan3(session: 5)] + inner6,
            outer4 + [.pptp(callID: 1, seq: 1, ack: 1), .ppp()] + inner4,
            outer4 + [.pptp(callID: 1), .ppp(addressControl: false, compressed: true)] + inner6,
            outer4 + [.gre(proto: 0x8200), .wifiData(), amsdu],
            outer4 + [.gre(proto: 0x8210), .wifiData(toDS: true, fromDS: true, qos: false), .llcSnap()] + inner4,
            udp(4754) + [.gre(key: 3)] + inner4,
            outer4 + inner4, outer4 + inner6, outer6 + inner4, outer6 + inner6,
            udp(2152) + [.gtpu(teid: 1)] + inner4,
            udp(2152) + [.gtpu(teid: 1, seq: 1, extensions: [GTPExtension(), GTPExtension(type: 0x40, content: [1, 2, 3, 4, 5, 6])])] + inner6,
            udp(3544) + [.teredo(auth: TeredoAuth(clientID: [1], authValue: [2, 3]), origin: TeredoOrigin(port: 1, address: Addr.o4))] + inner6,
            udp(5072) + [.ayiya()] + inner6, udp(5072) + [.ayiya(identity: [1, 2], signature: [])] + inner4,
            // layer-2 encapsulations and 802.3 frames
            [.ethernet(), .vlan(id: 100, tpid: 0x88A8), .pbb(isid: 7), .ethernet(), .vlan(id: 5)] + inner4,
            [.ethernet(), .pbb(isid: 7), .fabricPath(), .ethernet()] + inner6,
            [.fabricPath(), .ethernet(), .vlan(id: 5)] + inner4,
            [.fabricPath()] + udp(4789) + [.vxlan(vni: 1), .ethernet(), .pbb(isid: 1), .ethernet()] + inner6,
            [.ieee8023(padding: 10), .llcSnap()] + inner4,
            [.ieee8023(), .llcSnap(type: 0x0806), .arp(senderIP: Addr.c4, targetIP: Addr.s4)],
            [.ieee8023(), .payload([0xFF, 0xFF, 0, 30, 0, 0x11]), .filler(24)],
            [.ieee8023(), .llc(dsap: 0x42, ssap: 0x42), .filler(35)],
            [.ethernet(type: 0x8035), .arp(operation: 3, senderIP: Addr.c4, targetIP: Addr.s4)],
        ]
        let vx = { (inner: [Layer]) -> [Layer] in [.ipv4(src: Addr.o4, dst: Addr.t4), .udp(sport: 1, dport: 4789), .vxlan(vni: 1), .ethernet()] + inner }
        eth.append([.ethernet()] + vx(vx(vx(vx(inner4)))))
        var out: [(LinkType, [UInt8])] = eth.map { (.ethernet, build($0)) }
        let dg = build(.ipv4(src: Addr.o4, dst: Addr.t4, id: 9), .udp(sport: 40000, dport: 4789), .vxlan(vni: 1), .ethernet(), .filler(3000))
        out += Fragmenter.ipv4(dg, size: 1480).map { (.ethernet, build(.ethernet(), .ip($0))) }
        let dg6 = build(.ipv6(src: Addr.c6, dst: Addr.s6, ext: [.hopByHop(), .destination()]), .udp(sport: 1, dport: 2), .filler(3000))
        out += Fragmenter.ipv6(dg6, size: 1232, id: 7).map { (.raw, $0) }
        out += [
            (.raw, build(inner4)), (.ipv6, build(inner6)),
            (.linuxSLL, build([.sll()] + inner4)), (.linuxSLL2, build([.sll2()] + inner6)),
            (.null, build([.null()] + inner4)), (.loop, build([.null(networkOrder: true)] + inner6)),
            (.ieee80211, build([.wifiData(), .llcSnap()] + inner4)),
            (.ieee80211, build(.wifiData(), amsdu)),
            (.radiotap, build([.radiotap(tsft: true, fcs: true, extraPresentWords: 1), .wifiData(toDS: false, fromDS: true), .llcSnap()] + inner6)),
            (.radiotap, build(.radiotap(fcs: true), .wifiData(), amsdu)),
            (.ppp, build([.ppp()] + inner4)), (.ppp, build([.ppp(addressControl: false)] + inner6)),
            (.ppp, build([.ppp(addressControl: false, compressed: true)] + inner4)),
            (.ppp, build([.ppp(), .mpls(labels: [16, 17])] + inner6)),
            (.ppp, build(.ppp(proto: 0xC021), .payload([1, 1, 0, 8, 5, 6, 0, 0]))),
            (.pppHDLC, build([.ppp()] + inner6)), (.pppHDLC, build([.ciscoHDLC()] + inner4)),
            (.nflog, build([.nflog()] + inner4)), (.nflog, build([.nflog(prefix: "drop in")] + inner6)),
            (.fddi, build([.fddi(), .llcSnap()] + inner4)), (.fddi, build([.fddi(), .llcSnap()] + inner6)),
            (.fddi, build(.fddi(), .llcSnap(type: 0x0806), .arp(senderIP: Addr.c4, targetIP: Addr.s4))),
        ]
        return out
    }
}

@Suite("Fuzz: the decoder never misbehaves", .serialized)
struct FuzzTests {
    @Test func corpusPacketsWithEveryLinkType() throws {
        let traces = Corpus.traces()
        try #require(!traces.isEmpty, "no traces under \(Corpus.root)/traces: set LB_CORPUS to the zeek-corpus folder (it must not be skipped)")
        let start = ContinuousClock.now
        Fuzz.failures = 0
        var packets = 0, decodes = 0
        for path in traces {
            let name = String(path.split(separator: "/").last ?? "")
            for (i, p) in try readCapture(path).enumerated() {
                packets += 1
                let own = LinkType(linktype: p.linkType)
                for link in allLinkTypes {
                    let decoders = link == own ? Fuzz.decoders : [Fuzz.decoders[0]]
                    for dec in decoders {
                        Fuzz.run(p.bytes, link: link, decoder: dec, what: "\(name) #\(i + 1)")
                        decodes += 1
                    }
                }
            }
        }
        #expect(packets > 5000, "only \(packets) packets read from \(traces.count) traces")
        #expect(Fuzz.failures == 0)
        print("fuzz corpus: \(traces.count) traces, \(packets) packets, \(decodes) decodes in \(ContinuousClock.now - start)")
    }

    @Test func corpusPacketsMutatedAndCut() throws {
        let traces = Corpus.traces()
        try #require(!traces.isEmpty, "no traces under \(Corpus.root)/traces: set LB_CORPUS to the zeek-corpus folder (it must not be skipped)")
        let start = ContinuousClock.now
        Fuzz.failures = 0
        var decodes = 0
        for (t, path) in traces.enumerated() {
            let name = String(path.split(separator: "/").last ?? "")
            var rng = SeededRNG(seed: 0xF022 &+ UInt64(t))
            for (i, p) in try readCapture(path).enumerated() {
                guard let link = LinkType(linktype: p.linkType) else { continue }
                for m in 0..<Fuzz.mutationsPerPacket {
                    let mutated = Fuzz.mutate(p.bytes, &rng)
                    let dec = Fuzz.decoders[m % Fuzz.decoders.count]
                    Fuzz.run(mutated, link: link, decoder: dec, what: "\(name) #\(i + 1) mutation \(m) (seed \(0xF022 + t))")
                    decodes += 1
                }
                for cut in Fuzz.cuts(p.bytes.count, &rng) {
                    Fuzz.run(Array(p.bytes.prefix(cut)), link: link, decoder: Fuzz.decoders[0], what: "\(name) #\(i + 1) cut at \(cut)")
                    decodes += 1
                }
            }
        }
        #expect(Fuzz.failures == 0)
        print("fuzz corpus mutations: \(decodes) decodes in \(ContinuousClock.now - start)")
    }

    @Test func randomBuffers() {
        let start = ContinuousClock.now
        Fuzz.failures = 0
        var rng = SeededRNG(seed: 0xBADF00D)
        let n = Int(20_000 * Fuzz.scale)
        for i in 0..<n {
            let bytes = rng.bytes(Int.random(in: 0...(i % 10 == 0 ? 2000 : 200), using: &rng))
            for link in allLinkTypes {
                Fuzz.run(bytes, link: link, decoder: Fuzz.decoders[i % 3], what: "random buffer \(i) (seed 0xBADF00D)")
            }
        }
        // random bytes behind plausible headers, so the deeper layers see garbage too
        let prefixes: [[UInt8]] = Fuzz.builderSamples().map { Array($0.1.prefix(14 + 20 + 8)) }
        for i in 0..<n {
            let prefix = prefixes[i % prefixes.count]
            let bytes = Array(prefix.prefix(Int.random(in: 0...prefix.count, using: &rng))) + rng.bytes(Int.random(in: 0...120, using: &rng))
            Fuzz.run(bytes, link: .ethernet, decoder: Fuzz.decoders[i % 3], what: "random tail \(i) (seed 0xBADF00D)")
        }
        #expect(Fuzz.failures == 0)
        print("fuzz random: \(2 * n) buffers in \(ContinuousClock.now - start)")
    }

    @Test func builderPacketsMutatedAndCut() {
        let start = ContinuousClock.now
        Fuzz.failures = 0
        let samples = Fuzz.builderSamples()
        var rng = SeededRNG(seed: 0xB01D)
        var decodes = 0
        for (s, (link, f)) in samples.enumerated() {
            for dec in Fuzz.decoders { Fuzz.run(f, link: link, decoder: dec, what: "builder sample \(s)") }
            for cut in 0..<f.count {
                Fuzz.run(Array(f.prefix(cut)), link: link, decoder: Fuzz.decoders[cut % 3], what: "builder sample \(s) cut at \(cut)")
            }
            for m in 0..<Int(1500 * Fuzz.scale) {
                Fuzz.run(Fuzz.mutate(f, &rng), link: link, decoder: Fuzz.decoders[m % 3], what: "builder sample \(s) mutation \(m) (seed 0xB01D)")
            }
            decodes += 3 + f.count + Int(1500 * Fuzz.scale)
        }
        #expect(Fuzz.failures == 0)
        print("fuzz builder: \(samples.count) samples, \(decodes) decodes in \(ContinuousClock.now - start)")
    }

    @Test func reassembledDatagramsMutated() {
        Fuzz.failures = 0
        var rng = SeededRNG(seed: 0x2EA5)
        let dec = Decoder()
        let datagrams = Fuzz.builderSamples().compactMap { (link, f) -> [UInt8]? in
            link == .ethernet && f.count > 14 && (f[12] == 0x08 || f[12] == 0x86) ? Array(f[14...]) : nil
        }
        var context = Decoded()
        context.depth = 1; context.encap = .vxlan; context.encapMask = 2; context.vni = 5
        for (i, dg) in datagrams.enumerated() {
            for m in 0..<Int(400 * Fuzz.scale) {
                let p = m == 0 ? dg : Fuzz.mutate(Array(dg.prefix(Int.random(in: 0...dg.count, using: &rng))), &rng)
                let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: p.count, alignment: 1)
                defer { buf.deallocate() }
                if !p.isEmpty { buf.copyBytes(from: p) }
                for ctx in [Decoded(), context] {
                    let d = dec.decodeReassembled(UnsafeRawBufferPointer(buf), context: ctx)
                    var cfg = DecodeConfig()
                    cfg.maxDepth = 8
                    if let problem = Fuzz.violation(d, UnsafeRawBufferPointer(buf), cfg, subframe: 0) {
                        Fuzz.report("reassembled \(i) mutation \(m): \(problem)", p)
                    }
                }
            }
        }
        #expect(Fuzz.failures == 0)
    }
}
