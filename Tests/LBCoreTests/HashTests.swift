import LBCore
import LBGen
import Testing

// The symmetric flow hash on its own: symmetry in every tuple mode, seeds, full IPv6 addresses,
// no Toeplitz-style structural collisions, and an even spread over workers.

@Suite("FlowHash")
struct HashTests {
    static func randomKey(_ rng: inout SeededRNG, v6: Bool, proto: UInt8 = 6) -> FlowKey {
        var k = FlowKey()
        if v6 {
            k.srcHi = rng.next(); k.srcLo = rng.next(); k.dstHi = rng.next(); k.dstLo = rng.next()
        } else {
            k.srcLo = FlowKey.v4Mapped(UInt32(truncatingIfNeeded: rng.next()))
            k.dstLo = FlowKey.v4Mapped(UInt32(truncatingIfNeeded: rng.next()))
        }
        k.sport = UInt16(truncatingIfNeeded: rng.next())
        k.dport = UInt16(truncatingIfNeeded: rng.next())
        k.proto = proto
        k.kind = .ports
        return k
    }

    @Test(arguments: [false, true])
    func symmetricInEveryMode(v6: Bool) {
        var rng = SeededRNG(seed: v6 ? 6 : 4)
        for _ in 0..<20_000 {
            let k = Self.randomKey(&rng, v6: v6, proto: [6, 17, 132][Int(rng.next() % 3)])
            for mode in [TupleMode.five, .three, .two] {
                #expect(hashOf(k, mode) == hashOf(reversed(k), mode))
                #expect(hashOf(k, mode, extra: 42) == hashOf(reversed(k), mode, extra: 42))
            }
        }
    }

    @Test func tupleModesCoverWhatTheySay() {
        var rng = SeededRNG(seed: 1)
        var portsMatter = 0, protoMatters = 0
        for _ in 0..<1000 {
            let k = Self.randomKey(&rng, v6: false)
            var otherPorts = k
            otherPorts.sport &+= 1
            var otherProto = k
            otherProto.proto = 17
            if hashOf(k, .five) != hashOf(otherPorts, .five) { portsMatter += 1 }
            #expect(hashOf(k, .three) == hashOf(otherPorts, .three))
            #expect(hashOf(k, .two) == hashOf(otherPorts, .two))
            if hashOf(k, .three) != hashOf(otherProto, .three) { protoMatters += 1 }
            #expect(hashOf(k, .two) == hashOf(otherProto, .two))
            // a key without ports ignores whatever is in its port fields
            var addrOnly = k
            addrOnly.kind = .addresses
            var addrOnly2 = addrOnly
            addrOnly2.sport = 0; addrOnly2.dport = 0
            #expect(hashOf(addrOnly) == hashOf(addrOnly2))
            #expect(hashOf(addrOnly) == hashOf(k, .three))
        }
        #expect(portsMatter == 1000 && protoMatters == 1000)
    }

    @Test func extraSeparatesVLANsAndVNIs() {
        var rng = SeededRNG(seed: 2)
        for _ in 0..<1000 {
            let k = Self.randomKey(&rng, v6: true)
            #expect(hashOf(k, extra: 10) != hashOf(k, extra: 11))
            #expect(hashOf(k, extra: 0) != hashOf(k, extra: 0xFFFFFF))
        }
    }

    @Test func linkKeysNeverEqualIPKeys() {
        // a MAC pair stored like an IPv4 address pair still hashes apart
        var ip = FlowKey()
        ip.srcLo = 0x0200_0000_000A; ip.dstLo = 0x0200_0000_000B; ip.kind = .addresses
        var link = ip
        link.srcHi = 1 << 63; link.dstHi = 1 << 63; link.kind = .link
        #expect(hashOf(ip) != hashOf(link))
        #expect(hashOf(link, .two) != hashOf(ip, .two))
        #expect(hashOf(link) == hashOf(reversed(link)))
    }

    @Test func seedsChangeTheHash() {
        var rng = SeededRNG(seed: 3)
        let s1 = HashSeeds(seed: 1), s2 = HashSeeds(seed: 2)
        var same = 0, sameStandard = 0
        for _ in 0..<10_000 {
            let k = Self.randomKey(&rng, v6: rng.next() & 1 == 0)
            if hashOf(k, seeds: s1) == hashOf(k, seeds: s2) { same += 1 }
            if hashOf(k, seeds: .standard) == hashOf(k, seeds: s1) { sameStandard += 1 }
            #expect(hashOf(k, seeds: s1) == hashOf(reversed(k), seeds: s1))
        }
        #expect(same == 0 && sameStandard == 0)
        // and the standard seed is stable (independent lb instances agree)
        #expect(HashSeeds.standard.k0 == HashSeeds(seed: 0x6C62_5F66_6C6F_7721).k0)
    }

    @Test func ipv6LowBitsCount() {
        // netmap lb hashed only the first 32 bits of an IPv6 address; these differ only at the end
        var rng = SeededRNG(seed: 5)
        var seen = Set<UInt64>()
        let base = Self.randomKey(&rng, v6: true)
        for i in 0..<10_000 {
            var k = base
            k.srcLo = (k.srcLo & ~0xFFFF) | UInt64(i)
            seen.insert(hashOf(k))
            var d = base
            d.dstLo ^= 1 << UInt64(i % 64)                    // any single bit of the destination's low half
            #expect(hashOf(d) != hashOf(base))
        }
        #expect(seen.count == 10_000)
        // and in the interface identifier's top half, and in the prefix's low half
        var a = base, b = base
        a.srcLo ^= 1 << 40
        b.srcHi ^= 1
        #expect(hashOf(a) != hashOf(base) && hashOf(b) != hashOf(base))
    }

    @Test func noToeplitzStyleCollisions() {
        // symmetric Toeplitz maps flows with equal src XOR dst (and equal ports) together:
        // 10.0.0.1<->10.0.0.2 and 10.0.0.5<->10.0.0.6 (1^2 == 5^6) are the textbook case
        let a1: IPv4 = "10.0.0.1", a2: IPv4 = "10.0.0.2", b1: IPv4 = "10.0.0.5", b2: IPv4 = "10.0.0.6"
        let a = flowKey(a1, 1000, a2, 80, proto: 6)
        let b = flowKey(b1, 1000, b2, 80, proto: 6)
        #expect(hashOf(a) != hashOf(b))
        #expect(hashOf(a, .two) != hashOf(b, .two))
        // many such pairs, in 8 buckets: no more alike than chance
        var rng = SeededRNG(seed: 7)
        var sameBucket = 0
        let n = 20_000
        for _ in 0..<n {
            let x = UInt32(truncatingIfNeeded: rng.next()), y = UInt32(truncatingIfNeeded: rng.next())
            let m = UInt32(truncatingIfNeeded: rng.next()) | 1
            let k1 = flowKey(IPv4(x), 1000, IPv4(y), 80, proto: 6)
            let k2 = flowKey(IPv4(x ^ m), 1000, IPv4(y ^ m), 80, proto: 6)       // same src ^ dst
            #expect(hashOf(k1) != hashOf(k2))
            if bucket(hashOf(k1), 8) == bucket(hashOf(k2), 8) { sameBucket += 1 }
        }
        #expect(abs(Double(sameBucket) / Double(n) - 1.0 / 8) < 0.015)
    }

    /// Chi-square statistic of `counts` against a uniform distribution.
    static func chiSquare(_ counts: [Int]) -> Double {
        let total = Double(counts.reduce(0, +)), e = total / Double(counts.count)
        return counts.reduce(0) { $0 + (Double($1) - e) * (Double($1) - e) / e }
    }

    @Test(arguments: [8, 13])
    func evenSpreadOverWorkers(n: Int) {
        // critical values of chi-square at p = 0.001 for 7 and 12 degrees of freedom
        let critical = n == 8 ? 24.32 : 32.91
        for (seed, v6) in [(UInt64(10), false), (11, true)] {
            var rng = SeededRNG(seed: seed)
            var counts = Array(repeating: 0, count: n)
            let flows = 200_000
            for _ in 0..<flows {
                let h = hashOf(Self.randomKey(&rng, v6: v6))
                counts[bucket(h, n)] += 1
            }
            let mean = Double(flows) / Double(n)
            let maxDev = counts.map { abs(Double($0) - mean) / mean }.max()!
            #expect(Self.chiSquare(counts) < critical, "counts \(counts)")
            #expect(maxDev < 0.03, "counts \(counts)")
        }
    }

    @Test func evenSpreadOfStructuredFlows() {
        // one client, one server, sequential source ports: what a load test looks like
        var counts = Array(repeating: 0, count: 13)
        for p in 1024..<(1024 + 130_000) {
            let k = flowKey(Addr.c4, UInt16(truncatingIfNeeded: p), Addr.s4, 443, proto: 6)
            counts[bucket(hashOf(k), 13)] += 1
        }
        #expect(Self.chiSquare(counts) < 32.91, "counts \(counts)")
        // and sequential IPv4 addresses, ports fixed
        var counts8 = Array(repeating: 0, count: 8)
        for a in 0..<80_000 {
            let k = flowKey(IPv4(0x0A00_0000 + UInt32(a)), 5000, Addr.s4, 53, proto: 17)
            counts8[bucket(hashOf(k), 8)] += 1
        }
        #expect(Self.chiSquare(counts8) < 24.32, "counts \(counts8)")
    }
}
