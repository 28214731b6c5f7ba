import LBCore
import LBGen
import Testing

/// The deduplication digest (docs/dedup.md): equal for copies of one packet that differ in
/// IPv4 TTL and header checksum, IPv6 hop limit, Ethernet padding, MACs, VLAN tags and removed
/// tunnels; different when any other byte of the IP packet differs.
@Suite("Packet digest")
struct PacketDigestTests {
    /// The digest of the IP packet at `l3` of `bytes`, read from an allocation of exactly the
    /// bytes' size (an overread shows under ASan).
    static func digest(_ bytes: [UInt8], l3: Int = 0) -> UInt64 {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
        defer { buf.deallocate() }
        buf.copyBytes(from: bytes)
        return PacketDigest.ip(buf.baseAddress!, l3: l3, end: bytes.count)
    }

    /// The digest the data path takes of a frame: the decoder's innermost IP header, the
    /// decoded range's end.
    static func frameDigest(_ frame: [UInt8]) -> UInt64 {
        frame.withUnsafeBytes { f in
            let d = Decoder(DecodeConfig()).decode(f, link: .ethernet)
            return PacketDigest.ip(f.baseAddress!, l3: d.l3, end: d.end)
        }
    }

    static let v4 = PacketBuilder.build(.ipv4(src: "10.0.0.1", dst: "10.0.0.2", id: 7, ttl: 64),
                                        .udp(sport: 1234, dport: 53), .filler(37))
    static let v6 = PacketBuilder.build(.ipv6(src: "2001:db8::1", dst: "2001:db8::2", hopLimit: 64),
                                        .tcp(sport: 1234, dport: 80), .filler(53))

    @Test("TTL and header checksum (IPv4), hop limit (IPv6) are all that is masked")
    func masks() {
        let big = PacketBuilder.build(.ipv4(src: "10.0.0.1", dst: "10.0.0.2", id: 8, ttl: 9), .tcp(sport: 1, dport: 2), .filler(333))
        for (name, packet, masked) in [("IPv4", Self.v4, Set([8, 10, 11])), ("IPv6", Self.v6, Set([7])), ("IPv4 373 bytes", big, Set([8, 10, 11]))] {
            let d = Self.digest(packet)
            var seen: Set<UInt64> = [d]
            for i in 0..<packet.count {
                var p = packet
                p[i] ^= 0x5A
                let e = Self.digest(p)
                if masked.contains(i) {
                    #expect(e == d, "\(name): byte \(i) is masked, yet changes the digest")
                } else {
                    #expect(e != d, "\(name): byte \(i) changed, the digest did not")
                    seen.insert(e)
                }
            }
            #expect(seen.count == packet.count - masked.count + 1, "\(name): two one-byte changes gave one digest")
        }
    }

    @Test("a lower TTL (with its checksum) gives the same digest; a payload byte does not")
    func ttl() {
        let lower = PacketBuilder.build(.ipv4(src: "10.0.0.1", dst: "10.0.0.2", id: 7, ttl: 63),
                                        .udp(sport: 1234, dport: 53), .filler(37))
        #expect(lower != Self.v4)
        #expect(Self.digest(lower) == Self.digest(Self.v4))
        var payload = Self.v4
        payload[payload.count - 1] ^= 1
        #expect(Self.digest(payload) != Self.digest(Self.v4))
    }

    @Test("the IP length bounds the digest: Ethernet padding does not count, a shorter packet does")
    func length() {
        let d = Self.digest(Self.v4)
        #expect(Self.digest(Self.v4 + [0, 0, 0, 0, 0, 0]) == d)
        #expect(Self.digest(Self.v6 + [1, 2, 3]) == Self.digest(Self.v6))
        #expect(Self.digest(Array(Self.v4.dropLast())) != d)
    }

    @Test("MACs, VLAN tags and a VXLAN tunnel around the packet do not count")
    func outerHeaders() {
        let inner: [Layer] = [.ipv4(src: "10.0.0.1", dst: "10.0.0.2", id: 9, ttl: 64), .tcp(sport: 4000, dport: 443), .filler(100)]
        let plain = PacketBuilder.build([.ethernet()] + inner)
        let tagged = PacketBuilder.build([.ethernet(dst: "02:00:00:00:00:09"), .vlan(id: 42)] + inner)
        let qinq = PacketBuilder.build([.ethernet(), .vlan(id: 7, tpid: 0x88A8), .vlan(id: 8)] + inner)
        let tunnel = PacketBuilder.build([.ethernet(), .ipv4(src: "192.0.2.1", dst: "192.0.2.2", ttl: 9), .udp(sport: 5555, dport: 4789),
                                          .vxlan(vni: 77), .ethernet(src: "02:00:00:00:00:33")] + inner)
        let gre = PacketBuilder.build([.ethernet(), .ipv6(src: "2001:db8::9", dst: "2001:db8::a"), .gre()] + inner)
        let d = Self.frameDigest(plain)
        #expect(d == Self.digest(PacketBuilder.build(inner)))
        for (name, f) in [("vlan", tagged), ("qinq", qinq), ("vxlan", tunnel), ("gre", gre)] {
            #expect(Self.frameDigest(f) == d, "\(name)")
        }
        var other = inner
        other[2] = .filler(101)
        #expect(Self.frameDigest(PacketBuilder.build([.ethernet()] + other)) != d)
    }

    @Test("short and odd lengths: every byte counts, nothing is read past the end")
    func lengths() {
        var seen: Set<UInt64> = []
        for n in 0...300 {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
            let d = Self.digest(bytes)
            seen.insert(d)
            for i in stride(from: 0, to: n, by: 3) {
                var b = bytes
                b[i] ^= 0x80
                // IPv4/IPv6 headers need 20/40 bytes: a shorter run is hashed whole
                let masked = (b[0] >> 4 == 4 && n >= 20 && [8, 10, 11].contains(i)) || (b[0] >> 4 == 6 && n >= 40 && i == 7)
                if !masked { #expect(Self.digest(b) != d, "length \(n), byte \(i)") }
            }
        }
        #expect(seen.count == 301)
    }

    @Test("another key, another digest")
    func keys() {
        let a = PacketDigestKey(seed: 1), b = PacketDigestKey(seed: 2)
        #expect(a != b)
        let (x, y) = Self.v6.withUnsafeBytes { p in
            (PacketDigest.ip(p.baseAddress!, l3: 0, end: p.count, key: a), PacketDigest.ip(p.baseAddress!, l3: 0, end: p.count, key: b))
        }
        #expect(x != y)
    }

    @Test("non-IP bytes: seeded, every byte counts")
    func bytes() {
        let arp = PacketBuilder.build(.arp(senderIP: "10.0.0.1", targetIP: "10.0.0.2"))
        let d = arp.withUnsafeBytes { PacketDigest.bytes($0.baseAddress!, from: 0, count: arp.count, seed: 0) }
        let s = arp.withUnsafeBytes { PacketDigest.bytes($0.baseAddress!, from: 0, count: arp.count, seed: 0x0806) }
        #expect(d != s)
        var b = arp
        b[arp.count - 1] ^= 1
        #expect(b.withUnsafeBytes { PacketDigest.bytes($0.baseAddress!, from: 0, count: b.count, seed: 0) } != d)
    }
}
