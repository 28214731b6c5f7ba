import LBCore
import LBGen
import Testing

/// The datagram check: every reason, and a fuzz test that holds it to the decoder — a datagram
/// the check accepts must, behind its rebuilt outer header, have its tunnel removed by the
/// decoder; none may crash or read out of bounds (the bounds are checked in debug builds and
/// under the address sanitizer).
@Suite struct UDPValidationTests {
    static let inner: [Layer] = [.ethernet(), .ipv4(src: "10.1.0.1", dst: "10.1.0.2"), .udp(sport: 40000, dport: 53), .payload(Array("hello".utf8))]
    static let innerIP: [Layer] = [.ipv4(src: "10.1.0.1", dst: "10.1.0.2"), .tcp(sport: 40001, dport: 80), .payload([1, 2, 3])]

    static func vxlan(_ vni: UInt32 = 7, flags: UInt8 = 0x08) -> [UInt8] { PacketBuilder.build([.vxlan(vni: vni, flags: flags)] + inner) }
    static func geneve(_ options: [GeneveOption] = [], proto: UInt16? = nil, critical: Bool = false, version: UInt8 = 0,
                       payload: [Layer] = inner) -> [UInt8] {
        PacketBuilder.build([.geneve(vni: 9, options: options, proto: proto, critical: critical, version: version)] + payload)
    }
    static func geneveVXLAN(_ ip: Layer = .ipv4(src: "172.16.0.1", dst: "172.16.0.2"), dport: UInt16 = 4789) -> [UInt8] {
        PacketBuilder.build([.geneve(vni: 11), ip, .udp(sport: 5555, dport: dport), .vxlan(vni: 12)] + inner)
    }

    static func check(_ e: DatagramEncap, _ b: [UInt8]) -> DatagramCheck {
        b.withUnsafeBytes { e.check($0) { $0 == 4789 } }
    }

    @Test func validOnesPass() {
        let v = Self.check(.vxlan, Self.vxlan())
        #expect(v.reject == .none && v.vni == 7 && v.hasVNI)
        #expect(Self.check(.geneve, Self.geneve()).reject == .none)
        #expect(Self.check(.geneve, Self.geneve([GeneveOption(), GeneveOption(data: [1, 2, 3, 4, 5, 6, 7, 8])])).reject == .none)
        #expect(Self.check(.geneve, Self.geneve(payload: Self.innerIP)).reject == .none)
        let g = Self.check(.geneveVXLAN, Self.geneveVXLAN())
        #expect(g.reject == .none && g.vni == 11 && g.hasVNI)
        #expect(Self.check(.geneveVXLAN, Self.geneveVXLAN(.ipv6(src: "2001:db8::1", dst: "2001:db8::2"))).reject == .none)
        #expect(Self.check(.skip(4), [1, 2, 3, 4]).reject == .none)
    }

    @Test func everyReason() {
        var longOpt = Self.geneve([GeneveOption()])
        longOpt[0] = (longOpt[0] & 0xC0) | 0x3F          // 252 option bytes in a short datagram
        var badOpt = Self.geneve([GeneveOption(data: [1, 2, 3, 4, 5, 6, 7, 8])])
        badOpt[8 + 3] = 0x01                              // the option claims 4 bytes of data, the area has 12
        var reservedByte = Self.vxlan()
        reservedByte[7] = 1
        let cases: [(DatagramEncap, [UInt8], DatagramReject)] = [
            (.vxlan, [0x08, 0, 0, 0, 0, 0, 7], .short),
            (.vxlan, [], .short),
            (.geneve, [0, 0, 0x65], .short),
            (.skip(16), Array(repeating: 0, count: 15), .short),
            (.vxlan, Self.vxlan(flags: 0x00), .vxlanNoIFlag),
            (.vxlan, Self.vxlan(flags: 0x88), .vxlanReserved),
            (.vxlan, reservedByte, .vxlanReserved),
            (.geneve, Self.geneve(version: 1), .geneveVersion),
            (.geneve, longOpt, .geneveOptionLength),
            (.geneve, badOpt, .geneveOptions),
            (.geneve, Self.geneve([GeneveOption()], critical: true), .geneveCritical),
            (.geneve, Self.geneve(proto: 0x1234), .geneveProtocol),
            (.geneveVXLAN, Self.geneve(), .geneveProtocol),     // Ethernet inside: not geneve+vxlan
            (.geneveVXLAN, Self.geneveVXLAN(dport: 4790), .geneveInnerIP),
            (.geneveVXLAN, PacketBuilder.build([.geneve(vni: 1)] + Self.innerIP), .geneveInnerIP),   // TCP, not UDP
            // Zeek's plugin underflows here: an IPv4 header and nothing after it
            (.geneveVXLAN, PacketBuilder.build(.geneve(vni: 1), .ipv4(src: "1.1.1.1", dst: "2.2.2.2", proto: 17)), .geneveInnerIP),
            (.geneveVXLAN, Array(Self.geneveVXLAN().prefix(8 + 20 + 8 + 4)), .geneveInnerIP),   // IP length past the end
        ]
        for (e, b, want) in cases {
            #expect(Self.check(e, b).reject == want, "\(e.name) \(b.prefix(12)): want \(want.name)")
        }
    }

    /// Random mutations of valid datagrams, and random bytes, through the check and (when it
    /// accepts) through the decoder behind the rebuilt outer header.
    @Test(arguments: [DatagramEncap.vxlan, .geneve, .geneveVXLAN])
    func fuzz(_ encap: DatagramEncap) {
        var rng = SeededRNG(seed: 0x5EED_0004 &+ UInt64(encap.name.utf8.count))
        let seeds: [[UInt8]]
        switch encap {
        case .vxlan: seeds = [Self.vxlan(), Self.vxlan(0xFFFFFF)]
        case .geneve: seeds = [Self.geneve(), Self.geneve([GeneveOption(), GeneveOption(data: [9, 9, 9, 9, 9, 9, 9, 9])]),
                               Self.geneve(payload: Self.innerIP)]
        default: seeds = [Self.geneveVXLAN(), Self.geneveVXLAN(.ipv6(src: "2001:db8::1", dst: "2001:db8::2"))]
        }
        let decoder = Decoder(DecodeConfig())
        var accepted = 0, rejected = 0
        var buffer = [UInt8](repeating: 0, count: 4096)
        for round in 0..<20_000 {
            var d: [UInt8]
            if round % 10 == 9 {
                d = (0..<Int(rng.next() % 96)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                d = seeds[Int(rng.next() % UInt64(seeds.count))]
                for _ in 0...(rng.next() % 4) {
                    guard !d.isEmpty else { break }
                    let at = Int(rng.next() % UInt64(min(d.count, 80)))
                    d[at] ^= UInt8(truncatingIfNeeded: 1 << (rng.next() % 8))
                }
                if rng.next() % 4 == 0 { d = Array(d.prefix(Int(rng.next() % UInt64(d.count + 1)))) }
            }
            let c = Self.check(encap, d)
            if c.reject != .none { rejected += 1; continue }
            accepted += 1
            // the frame the datagram arrived in, as UDPSource rebuilds it
            let h = OuterHeader.length(ipv6: false)
            let frame: [UInt8] = buffer.withUnsafeMutableBytes { b in
                let src: [UInt8] = [192, 0, 2, 1] + [UInt8](repeating: 0, count: 12)
                let dst: [UInt8] = [192, 0, 2, 2] + [UInt8](repeating: 0, count: 12)
                src.withUnsafeBytes { s in dst.withUnsafeBytes { t in
                    OuterHeader.write(b.baseAddress!, ipv6: false, src: s.baseAddress!, dst: t.baseAddress!, sport: 33333,
                                      dport: encap == .vxlan ? 4789 : 6081, payloadLength: d.count)
                } }
                return Array(b.prefix(h)) + d
            }
            let r = frame.withUnsafeBytes { decoder.decode($0, link: .ethernet) }
            let want = encap == .vxlan ? EncapKind.vxlan : .geneve
            let minDepth: UInt8 = encap == .geneveVXLAN ? 2 : 1
            let tunnelErrors: Set<ParseError> = [.vxlanBadFlags, .vxlanTruncated, .geneveBadVersion, .geneveBadOptions,
                                                 .geneveBadProtocol, .geneveTruncated]
            #expect(r.encap == want && r.depth >= minDepth && !tunnelErrors.contains(r.error),
                    "accepted \(d) but the decoder gives encap \(r.encap.name) depth \(r.depth) error \(r.error.name)")
            if r.depth < minDepth { return }
        }
        #expect(accepted > 1000 && rejected > 1000, "accepted \(accepted), rejected \(rejected): the fuzz must exercise both")
    }

    /// Random skip=N and short datagrams never crash and are short exactly when shorter than N.
    @Test func skip() {
        var rng = SeededRNG(seed: 7)
        for _ in 0..<2000 {
            let n = Int(rng.next() % 64), len = Int(rng.next() % 64)
            let c = Self.check(.skip(n), [UInt8](repeating: 0xAB, count: len))
            #expect((c.reject == .short) == (len < n))
        }
    }

    /// The PPP header of dlt=ppp: random short frames never read past the end; the IP start
    /// is within the frame and follows an IPv4/IPv6 protocol field.
    @Test func pppHeader() {
        var rng = SeededRNG(seed: 9)
        for _ in 0..<20_000 {
            let b = (0..<Int(rng.next() % 8)).map { _ -> UInt8 in
                let pick = rng.next() % 6
                return pick == 0 ? 0xFF : pick == 1 ? 0x03 : pick == 2 ? 0x21 : pick == 3 ? 0x57 : pick == 4 ? 0x00 : UInt8(truncatingIfNeeded: rng.next())
            }
            let start = Int(rng.next() % 3)
            guard start <= b.count else { continue }
            if let ip = b.withUnsafeBytes({ pppIPStart($0, at: start) }) {
                #expect(ip <= b.count && ip > start)
                #expect(b[ip - 1] == 0x21 || b[ip - 1] == 0x57)
            }
        }
        #expect(([0xFF, 0x03, 0x00, 0x21] as [UInt8]).withUnsafeBytes { pppIPStart($0, at: 0) } == 4)
        #expect(([0x57] as [UInt8]).withUnsafeBytes { pppIPStart($0, at: 0) } == 1)
        #expect(([0xC0, 0x21] as [UInt8]).withUnsafeBytes { pppIPStart($0, at: 0) } == nil)
    }
}
