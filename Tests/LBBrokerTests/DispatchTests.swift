import Glibc
@testable import LBBroker
import LBCore
import LBRing
import LBSys
import Testing

@Suite struct DispatchTests {
    /// One group's ring has a consumer that reads nothing. On a live source that ring drops
    /// (counted), lb never waits, and every other ring of every group gets all its packets.
    @Test func stalledRingCostsOnlyItsOwnPackets() throws {
        // Ring 0 (group g0) is small and never read; rings 1 (g0) and 2 (g1) have room for all.
        let rings = try TestRings([2, 1], big: [1, 2])
        let decoder = Decoder()
        let frames = (0..<5000).map { udpFrame(client: $0 % 400, sport: UInt16(1024 + $0 % 400)) }
        let stuck = 0
        var config = DispatchConfig()
        config.backpressure = false
        var dispatcher = Dispatcher(config: config, groups: rings.memories, shared: rings.shared)
        var source = MemorySource(frames, live: true)
        let start = Sys.monoNanos()
        dispatcher.run(&source)
        let elapsed = Sys.monoNanos() - start
        var expected = [0, 0, 0]
        for f in frames {
            expected[rings.ring(group: 0, for: f, decoder: decoder)] += 1
            expected[rings.ring(group: 1, for: f, decoder: decoder)] += 1
        }
        let c = rings.shared.counters
        #expect(c.get(ring: stuck, .droppedFull) > 0)
        #expect(c.get(ring: stuck, .forwarded) + c.get(ring: stuck, .droppedFull) == UInt64(expected[stuck]))
        for r in [1, 2] {
            #expect(c.get(ring: r, .droppedFull) == 0, "ring \(r) dropped")
            let read = rings.drain(r)
            #expect(read == expected[r], "ring \(r) read \(read) of \(expected[r])")
        }
        #expect(elapsed < 5_000_000_000)      // never waited on the stuck consumer
    }

    /// A ring without a consumer drops and counts, as no_consumer.
    @Test func detachedRingDropsAsNoConsumer() throws {
        let rings = try TestRings([2])
        rings.shared.setAttached(1, false)
        let frames = (0..<300).map { udpFrame(client: $0, sport: 2000) }
        var config = DispatchConfig()
        config.backpressure = false
        var dispatcher = Dispatcher(config: config, groups: rings.memories, shared: rings.shared)
        var source = MemorySource(frames, live: true)
        dispatcher.run(&source)
        let c = rings.shared.counters
        #expect(c.get(ring: 1, .droppedNoConsumer) > 0)
        #expect(c.get(ring: 1, .forwarded) == 0)
        #expect(c.get(ring: 0, .forwarded) + c.get(ring: 1, .droppedNoConsumer) == 300)
    }

    /// Capture replay waits for a full ring's consumer, but not forever: after the stall
    /// timeout that ring drops (counted as stalled) and the others still get everything.
    @Test func replayGivesUpOnAStalledConsumer() throws {
        let rings = try TestRings([2])
        let decoder = Decoder()
        let frames = (0..<3000).map { udpFrame(client: $0 % 500, sport: UInt16(3000 + $0 % 500)) }
        let drainer = Drainer(rings, rings: [1])
        drainer.start()
        var config = DispatchConfig()
        config.backpressure = true
        config.stallTimeoutNanos = 300_000_000
        var dispatcher = Dispatcher(config: config, groups: rings.memories, shared: rings.shared)
        var source = MemorySource(frames, live: false)
        let start = Sys.monoNanos()
        dispatcher.run(&source)
        let elapsed = Sys.monoNanos() - start
        Sys.sleep(nanos: 50_000_000)
        let read = drainer.finish()
        let expected1 = frames.filter { rings.ring(group: 0, for: $0, decoder: decoder) == 1 }.count
        let c = rings.shared.counters
        #expect(read[1] == expected1)
        #expect(c.get(ring: 1, .droppedFull) + c.get(ring: 1, .droppedStalled) == 0)
        #expect(c.get(ring: 0, .droppedStalled) > 0)
        #expect(rings.shared.isStalled(0))
        #expect(elapsed >= 300_000_000 && elapsed < 10_000_000_000)
    }

    /// A consumer scribbling random values over its control area while lb runs cannot crash
    /// lb or disturb other rings.
    @Test func scribblingConsumerCannotHurtLB() throws {
        let rings = try TestRings([2], big: [1])
        let decoder = Decoder()
        let frames = (0..<20000).map { udpFrame(client: $0 % 300, sport: UInt16(4000 + $0 % 300)) }
        let g = rings.geometry
        let control = mmap(nil, g.controlRegionSize, PROT_READ | PROT_WRITE, MAP_SHARED, rings.memories[0][0].controlDescriptor, 0)!
        let address = UInt(bitPattern: control)
        let scribbling = Threads.spawn("scribbler") {
            let control = UnsafeMutableRawPointer(bitPattern: address)!
            var rng = SystemRandomNumberGenerator()
            for _ in 0..<200_000 {
                let off = Int.random(in: 0..<(g.controlRegionSize / 8), using: &rng) * 8
                control.storeBytes(of: UInt64.random(in: 0...UInt64.max, using: &rng), toByteOffset: off, as: UInt64.self)
            }
        }
        var config = DispatchConfig()
        config.backpressure = false
        var dispatcher = Dispatcher(config: config, groups: rings.memories, shared: rings.shared)
        var source = MemorySource(frames, live: true)
        dispatcher.run(&source)
        Threads.join(scribbling)
        let expected1 = frames.filter { rings.ring(group: 0, for: $0, decoder: decoder) == 1 }.count
        #expect(rings.drain(1) == expected1)
        let c = rings.shared.counters
        #expect(c.get(ring: 1, .droppedFull) == 0)
        #expect(c.get(ring: 0, .forwarded) + c.get(ring: 0, .droppedFull) == UInt64(frames.count - expected1))
        munmap(control, g.controlRegionSize)
    }
}
