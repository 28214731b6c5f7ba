import Foundation
@_spi(Testing) import LBCore
import LBGen
import Testing

/// The decoder's fast path must give exactly what the general walk gives. Every frame here is
/// decoded both ways (`decode`, which takes the fast path when it can, and `walk`, which never
/// does) under each fuzz configuration, and the two results must be equal.
@Suite("Fast path agrees with the walk")
struct FastPathTests {
    /// Frames the fast path decoded (so the comparison is not vacuous).
    nonisolated(unsafe) static var taken = 0

    static func check(_ frame: [UInt8], _ decoder: Decoder, _ what: @autoclosure () -> String) -> Bool {
        // An allocation of exactly the frame's size, so an overread shows under ASan.
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(frame.count, 1), alignment: 1)
        defer { buf.deallocate() }
        buf.copyBytes(from: frame)
        let f = UnsafeRawBufferPointer(rebasing: buf[0..<frame.count])
        var fast = Decoded(), slow = Decoded()
        withUnsafeMutablePointer(to: &fast) { decoder.decode(f, link: .ethernet, into: $0) }
        withUnsafeMutablePointer(to: &slow) { decoder.walk(f, link: .ethernet, into: $0) }
        var probe = Decoded()
        if withUnsafeMutablePointer(to: &probe, { decoder.fastDecode(f, into: $0) }) { taken += 1 }
        // The data path's way: classify into memory, hash what is there (with the tuple mode
        // as masks). The same flow hash as the walk's.
        var ff = FastFrame()
        if decoder.classify(f, into: &ff), withUnsafePointer(to: &ff, { decoder.flowHash($0) }) != decoder.flowHash(slow) {
            Issue.record("the fast path's hash differs from the walk's for \(what())")
            return false
        }
        let value = decoder.decode(f, link: .ethernet)
        if value != slow || decoder.flowHash(value) != decoder.flowHash(slow) {
            Issue.record("decode() by value differs from the walk for \(what()): \(frame.prefix(96).map { String(format: "%02x", $0) }.joined())\nvalue: \(value)\nwalk: \(slow)")
            return false
        }
        if fast != slow {
            Issue.record("fast path differs from the walk for \(what()): \(frame.prefix(96).map { String(format: "%02x", $0) }.joined())\nfast: \(fast)\nwalk: \(slow)")
            return false
        }
        return true
    }

    @Test func corpusPackets() throws {
        let traces = Corpus.traces()
        #expect(!traces.isEmpty, "no corpus at \(Corpus.root)")
        var rng = SeededRNG(seed: 11)
        var failures = 0
        var ethernet = 0, fast = 0
        for path in traces {
            for p in try readCapture(path) where p.linkType == 1 {
                ethernet += 1
                var probe = Decoded()
                if p.bytes.withUnsafeBytes({ f in withUnsafeMutablePointer(to: &probe) { Decoder().fastDecode(f, into: $0) } }) { fast += 1 }
                for decoder in Fuzz.decoders where failures < 5 {
                    if !Self.check(p.bytes, decoder, "\(path)") { failures += 1 }
                    for _ in 0..<4 where failures < 5 {
                        if !Self.check(Fuzz.mutate(p.bytes, &rng), decoder, "mutated \(path)") { failures += 1 }
                    }
                }
            }
        }
        // Most corpus packets are plain TCP/UDP over Ethernet: the fast path must take them.
        #expect(fast * 10 > ethernet * 7, "fast path took \(fast) of \(ethernet) corpus Ethernet packets")
    }

    /// Frames built to sit on the fast path's edges: tags, lengths, fragments, tunnel ports,
    /// Teredo's shape, VXLAN with every inner shape.
    @Test func builtEdges() {
        var frames: [[UInt8]] = []
        let inners: [[Layer]] = [
            inner4, inner6,
            [.ipv4(src: Addr.c4, dst: Addr.s4), .tcp(sport: 1, dport: 2)],
            [.ipv4(src: Addr.c4, dst: Addr.s4), .sctp(sport: 1, dport: 2), .filler(4)],
            [.ipv4(src: Addr.c4, dst: Addr.s4, options: [1, 1, 1, 1]), .udp(sport: 1, dport: 2)],
            [.ipv4(src: Addr.c4, dst: Addr.s4), .udp(sport: 9, dport: 4789), .vxlan(vni: 3), .ethernet()] + inner4,
            [.ipv4(src: Addr.c4, dst: Addr.s4), .udp(sport: 3797, dport: 32900), .teredo()] + inner6,
            [.ipv6(src: "0:0:0:0:0:ffff:a00:1", dst: Addr.s6), .udp(sport: 1, dport: 2), .filler(4)],
        ]
        for inner in inners {
            frames.append(build([.ethernet()] + inner))
            frames.append(build([.ethernet(), .vlan(id: 7)] + inner))
            frames.append(build([.ethernet(), .vlan(id: 7), .vlan(id: 8)] + inner))
            frames.append(build(outer4 + [.udp(sport: 40000, dport: 4789), .vxlan(vni: 42), .ethernet()] + inner))
            frames.append(build(outer6 + [.udp(sport: 40000, dport: 4789), .vxlan(vni: 42), .ethernet(), .vlan(id: 9)] + inner))
            frames.append(build([.ethernet(), .vlan(id: 5), .ipv4(src: Addr.o4, dst: Addr.t4), .udp(sport: 1, dport: 4789),
                                 .vxlan(vni: 1), .ethernet()] + inner))
            // layer-2 encapsulations the fast path leaves to the walk (PBB, FabricPath, 802.3)
            frames.append(build([.ethernet(), .pbb(isid: 5), .ethernet()] + inner))
            frames.append(build([.ethernet(), .vlan(id: 100, tpid: 0x88A8), .pbb(isid: 5), .ethernet(), .vlan(id: 7)] + inner))
            frames.append(build([.fabricPath(), .ethernet()] + inner))
            frames.append(build([.ieee8023(padding: 6), .llcSnap()] + inner))
            frames.append(build(outer4 + [.udp(sport: 40000, dport: 4789), .vxlan(vni: 42), .fabricPath(), .ethernet()] + inner))
            frames.append(build(outer4 + [.udp(sport: 40000, dport: 4789), .vxlan(vni: 42), .ethernet(), .pbb(isid: 1), .ethernet()] + inner))
        }
        var rng = SeededRNG(seed: 5)
        var all = frames
        for f in frames {
            for cut in stride(from: 0, through: f.count, by: 1) { all.append(Array(f.prefix(cut))) }
            for _ in 0..<50 { all.append(Fuzz.mutate(f, &rng)) }
        }
        var failures = 0
        for f in all {
            for decoder in Fuzz.decoders where failures < 5 {
                if !Self.check(f, decoder, "built frame") { failures += 1 }
            }
        }
        // The plain and VXLAN frames (before cutting and mutating) take the fast path.
        let vxlan = build(outer4 + [.udp(sport: 40000, dport: 4789), .vxlan(vni: 42), .ethernet()] + inner4)
        var probe = Decoded()
        #expect(vxlan.withUnsafeBytes { f in withUnsafeMutablePointer(to: &probe) { Decoder().fastDecode(f, into: $0) } })
        #expect(probe.depth == 1 && probe.vni == 42 && probe.key == inner4Key)
    }

    /// The fast path's hash (tuple mode as masks) against the general one, in every mode.
    @Test func hashInEveryMode() {
        let frames = [build([.ethernet(), .vlan(id: 7)] + inner4), build([.ethernet()] + inner6),
                      build(outer4 + [.udp(sport: 40000, dport: 4789), .vxlan(vni: 42), .ethernet()] + inner4)]
        var compared = 0
        for tuple in [TupleMode.five, .three, .two] {
            for vlan in [false, true] {
                for vni in [false, true] {
                    let decoder = Decoder(DecodeConfig(tuple: tuple, hashVLAN: vlan, hashVNI: vni))
                    for frame in frames {
                        frame.withUnsafeBytes { f in
                            var ff = FastFrame()
                            #expect(decoder.classify(f, into: &ff))
                            let walk = decoder.decode(f, link: .ethernet)
                            #expect(withUnsafePointer(to: &ff) { decoder.flowHash($0) } == decoder.flowHash(walk), "\(tuple) \(vlan) \(vni)")
                            compared += 1
                        }
                    }
                }
            }
        }
        #expect(compared == 36)
    }

    @Test func randomFrames() {
        var rng = SeededRNG(seed: 3)
        var failures = 0
        for _ in 0..<20_000 where failures < 5 {
            // Mostly well-formed starts (IPv4/IPv6 EtherTypes) with random rest.
            var f = (0..<Int.random(in: 0...200, using: &rng)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if f.count > 14 {
                f[12] = rng.chance(0.5) ? 0x08 : 0x86
                f[13] = f[12] == 0x08 ? 0x00 : 0xDD
                f[14] = f[12] == 0x08 ? 0x45 : 0x60
            }
            for decoder in Fuzz.decoders where !Self.check(f, decoder, "random frame") { failures += 1 }
        }
    }
}
