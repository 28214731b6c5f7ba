import Glibc
@testable import LBBroker
import LBCore
import LBGen
import LBRing
import LBSys
import Synchronization
import Testing

/// The deduplication window (DedupTable) and the dispatcher's use of it (docs/dedup.md).
@Suite("Dedup")
struct DedupTests {
    static let ms: UInt64 = 1_000_000

    @Test("inside the window a duplicate, from the window on not; the window runs from the kept copy")
    func window() {
        let t = DedupTable(windowNanos: Self.ms)
        let d: UInt64 = 0x1234_5678_9abc_def0
        let t0: UInt64 = 1_700_000_000_000_000_000
        #expect(!t.isDuplicate(digest: d, timestampNanos: t0))
        #expect(t.isDuplicate(digest: d, timestampNanos: t0))
        #expect(t.isDuplicate(digest: d, timestampNanos: t0 + 999_000))
        // a copy taken earlier in packet time (another queue's, handled later) too
        #expect(t.isDuplicate(digest: d, timestampNanos: t0 - 999_000))
        // a different digest, same bucket and time: not a duplicate
        #expect(!t.isDuplicate(digest: d ^ 1 << 40, timestampNanos: t0))
        // a duplicate does not move the window: 1 ms after the kept copy, it is new again
        #expect(!t.isDuplicate(digest: d, timestampNanos: t0 + Self.ms))
        #expect(t.isDuplicate(digest: d, timestampNanos: t0 + Self.ms + 500_000))
        #expect(!t.isDuplicate(digest: d, timestampNanos: t0 + 5 * Self.ms))
    }

    @Test("the coarse clock's wrap (2^28 µs) neither hides a duplicate nor makes one")
    func wrap() {
        let t = DedupTable(windowNanos: Self.ms)
        let period: UInt64 = (1 << 28) * 1000
        let d: UInt64 = 0xfeed_f00d_0bad_cafe
        let before = 7 * period - 300_000          // 300 µs before a wrap
        #expect(!t.isDuplicate(digest: d, timestampNanos: before))
        #expect(t.isDuplicate(digest: d, timestampNanos: before + 600_000), "across the wrap, 600 µs later")
        // 2.3 ms later, across a wrap: not a duplicate
        let e: UInt64 = 0x0123_4567_89ab_cdef
        #expect(!t.isDuplicate(digest: e, timestampNanos: before))
        #expect(!t.isDuplicate(digest: e, timestampNanos: before + 2_300_000))
        #expect(t.isDuplicate(digest: e, timestampNanos: before + 2_300_000 + 900_000))
    }

    @Test("a full bucket gives its oldest word to a new digest")
    func eviction() {
        let t = DedupTable(windowNanos: Self.ms, wordCount: 4)       // one bucket of 4 words
        let base: UInt64 = 1_000_000_000
        for k in 0..<4 { #expect(!t.isDuplicate(digest: UInt64(k + 1) << 40, timestampNanos: base + UInt64(k) * 1000)) }
        for k in 0..<4 { #expect(t.isDuplicate(digest: UInt64(k + 1) << 40, timestampNanos: base + 5000)) }
        #expect(!t.isDuplicate(digest: 9 << 40, timestampNanos: base + 6000))    // replaces digest 1 (oldest)
        #expect(!t.isDuplicate(digest: 1 << 40, timestampNanos: base + 7000))
        #expect(t.isDuplicate(digest: 9 << 40, timestampNanos: base + 8000))
    }

    @Test("two threads feeding copies into one table keep exactly one of each")
    func twoThreads() {
        let t = DedupTable(windowNanos: Self.ms, wordCount: 1 << 20)
        let n = 200_000
        let kept = Atomic<Int>(0), dups = Atomic<Int>(0)
        let start = Atomic<Int>(0)
        var threads: [pthread_t] = []
        for lane in 0..<2 {
            threads.append(Threads.spawn("dedup\(lane)") {
                start.add(1, ordering: .relaxed)
                while start.load(ordering: .relaxed) < 2 {}
                var k = 0, d = 0
                for i in 0..<n {
                    // the same digests in the same order, 1 µs apart in packet time; one
                    // thread's copy 0.5 ms later than the other's
                    let digest = UInt64(i + 1) &* 0x9E37_79B9_7F4A_7C15
                    if t.isDuplicate(digest: digest, timestampNanos: UInt64(i) * 1000 + UInt64(lane) * 500_000) { d += 1 } else { k += 1 }
                }
                kept.add(k, ordering: .relaxed)
                dups.add(d, ordering: .relaxed)
            })
        }
        for th in threads { pthread_join(th, nil) }
        #expect(kept.load(ordering: .relaxed) == n)
        #expect(dups.load(ordering: .relaxed) == n)
    }

    /// Frames for the dispatcher: n UDP packets, and each one's copy with a lower TTL behind a
    /// VLAN tag; one more copy with a changed payload byte.
    static func frames(_ n: Int) -> (originals: [[UInt8]], copies: [[UInt8]]) {
        var a: [[UInt8]] = [], b: [[UInt8]] = []
        for i in 0..<n {
            let ip = IPv4(UInt32(0x0A00_0000 | (i & 0xFFFF)))
            let payload = (0..<20).map { UInt8(truncatingIfNeeded: i &* 31 &+ $0) }
            a.append(PacketBuilder.build(.ethernet(), .ipv4(src: ip, dst: "10.9.0.1", id: UInt16(i & 0xFFFF), ttl: 64),
                                         .udp(sport: UInt16(1024 + i % 50000), dport: 53), .payload(payload)))
            b.append(PacketBuilder.build(.ethernet(src: "02:00:00:00:00:77"), .vlan(id: 5),
                                         .ipv4(src: ip, dst: "10.9.0.1", id: UInt16(i & 0xFFFF), ttl: 60),
                                         .udp(sport: UInt16(1024 + i % 50000), dport: 53), .payload(payload)))
        }
        return (a, b)
    }

    @Test("two dispatchers on two threads (two RX queues) share one table: each packet delivered once")
    func twoDispatchers() throws {
        let n = 5000
        let geo = RingGeometry(slots: 256, dataBytes: 1 << 16, maxCaplen: 2048, lanes: 2)
        let rings = try TestRings([2], big: [0, 1], geometry: geo, dedup: DedupTable(windowNanos: Self.ms, wordCount: 1 << 20))
        let lane1 = Counters(ringCount: 2)
        rings.shared.laneCounters = [lane1]
        var (a, b) = Self.frames(n)
        // the changed-payload copy of packet 0 must come through
        var changed = b[0]
        changed[changed.count - 1] ^= 1
        b.append(changed)
        let sources = [a, b]
        let ready = Atomic<Int>(0)
        var threads: [pthread_t] = []
        for lane in 0..<2 {
            let frames = sources[lane]
            let box = UncheckedBox(rings)
            threads.append(Threads.spawn("lane\(lane)") {
                let rings = box.value
                var config = DispatchConfig()
                config.backpressure = false
                var dispatcher = Dispatcher(config: config, groups: rings.memories, shared: rings.shared, lane: lane,
                                            counters: lane == 0 ? rings.shared.counters : lane1)
                var source = MemorySource(frames, live: true)
                ready.add(1, ordering: .relaxed)
                while ready.load(ordering: .relaxed) < 2 {}
                dispatcher.run(&source)
            })
        }
        for th in threads { pthread_join(th, nil) }
        let c = rings.shared.totals()
        #expect(c.get(.received) == UInt64(2 * n + 1))
        #expect(c.get(.deduplicated) == UInt64(n))
        let forwarded = c.get(ring: 0, .forwarded) + c.get(ring: 1, .forwarded)
        let dropped = (0..<2).reduce(UInt64(0)) { $0 + c.get(ring: $1, .droppedFull) + c.get(ring: $1, .droppedNoConsumer) }
        #expect(forwarded + dropped == UInt64(n + 1), "forwarded \(forwarded), dropped \(dropped)")
        #expect(dropped == 0)
    }

    @Test("the general path (a tunnel the fast path leaves to it, a fragment) and non-IP frames are deduplicated too")
    func generalPath() throws {
        let rings = try TestRings([1], big: [0], dedup: DedupTable(windowNanos: Self.ms))
        let inner: [Layer] = [.ipv4(src: "10.0.0.1", dst: "10.0.0.2", id: 3, ttl: 64), .tcp(sport: 1, dport: 2), .filler(40)]
        let innerLow: [Layer] = [.ipv4(src: "10.0.0.1", dst: "10.0.0.2", id: 3, ttl: 50), .tcp(sport: 1, dport: 2), .filler(40)]
        let gre = PacketBuilder.build([.ethernet(), .ipv4(src: "192.0.2.1", dst: "192.0.2.2"), .gre()] + inner)
        let geneve = PacketBuilder.build([.ethernet(), .ipv6(src: "2001:db8::1", dst: "2001:db8::2"), .udp(sport: 9, dport: 6081),
                                          .geneve(vni: 4), .ethernet()] + innerLow)
        let dg = PacketBuilder.build(.ipv4(src: "10.0.0.5", dst: "10.0.0.6", id: 77), .udp(sport: 5, dport: 6), .filler(600))
        let frags = Fragmenter.ipv4(dg, size: 200)
        let arp = PacketBuilder.build(.ethernet(), .arp(senderIP: "10.0.0.1", targetIP: "10.0.0.2"))
        let arpTagged = PacketBuilder.build(.ethernet(), .vlan(id: 9), .arp(senderIP: "10.0.0.1", targetIP: "10.0.0.2"))
        let arpOther = PacketBuilder.build(.ethernet(), .arp(senderIP: "10.0.0.1", targetIP: "10.0.0.3"))
        var frames = [gre, geneve]
        for f in frags { frames.append(PacketBuilder.build(.ethernet(), .ip(f))) }
        for f in frags { frames.append(PacketBuilder.build(.ethernet(), .vlan(id: 3), .ip(f))) }
        frames += [arp, arpTagged, arpOther]
        var config = DispatchConfig()
        config.backpressure = false
        var dispatcher = Dispatcher(config: config, groups: rings.memories, shared: rings.shared)
        var source = MemorySource(frames, live: true)
        dispatcher.run(&source)
        let c = rings.shared.counters
        let dups = 1 + frags.count + 1
        #expect(c.get(.deduplicated) == UInt64(dups))
        #expect(rings.drain(0) == frames.count - dups - Int(c.get(.fragmentsMerged)))
    }
}

/// Hands a test's rings to a data-path thread (the test joins the thread before it goes on).
final class UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
