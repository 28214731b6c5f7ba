import Foundation
import Glibc
import CLBRing
@testable import LBBroker
import LBCore
import LBGen
import LBRing
import LBSys
import LBTestSupport
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
        dispatcher.run(&source)
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
        // lb never waited on the stuck consumer: a live source drops at once when the ring is
        // full, so no drop is a stall (which only waiting for the stall timeout produces)
        #expect(c.get(ring: stuck, .droppedStalled) == 0)
        #expect(!rings.shared.isStalled(stuck))
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
        dispatcher.run(&source)
        let read = drainer.finish()
        let expected1 = frames.filter { rings.ring(group: 0, for: $0, decoder: decoder) == 1 }.count
        let expected0 = frames.count - expected1
        let c = rings.shared.counters
        #expect(read[1] == expected1)
        #expect(c.get(ring: 1, .droppedFull) + c.get(ring: 1, .droppedStalled) == 0)
        // Ring 0 was filled, then waited on: a replay never drops a packet as "full". When the
        // stall timeout ran out the ring was marked stalled and every later packet of it was
        // dropped as stalled, without waiting again.
        #expect(c.get(ring: 0, .forwarded) > 0)
        #expect(c.get(ring: 0, .droppedFull) == 0)
        #expect(c.get(ring: 0, .droppedStalled) > 0)
        #expect(c.get(ring: 0, .forwarded) + c.get(ring: 0, .droppedStalled) == UInt64(expected0))
        #expect(rings.shared.isStalled(0))
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

@Suite struct DeliveryTests {
    /// A 9000-byte-MTU frame passes whole with a 9216-byte slot; a longer frame than the
    /// slot holds is truncated, flagged and counted, never dropped silently.
    @Test func jumboFramesPassWholeAndLongerOnesAreTruncated() throws {
        var geometry = RingGeometry.default
        geometry.dataBytes = 1 << 20
        geometry.slots = 1024
        geometry.maxCaplen = 9216
        let rings = try TestRings([1], big: [], geometry: geometry)
        let jumbo = udpFrame(client: 1, sport: 1000, payload: 9000 - 28)        // 9014 bytes on the wire
        let tooLong = udpFrame(client: 2, sport: 1001, payload: 9300)
        var dispatcher = Dispatcher(config: DispatchConfig(), groups: rings.memories, shared: rings.shared)
        var source = MemorySource([jumbo, tooLong], live: true)
        dispatcher.run(&source)
        var lane = rings.consumers[0].lane(0)
        let first = lane.next()!
        #expect(first.bytes.count == jumbo.count)
        #expect(first.descriptor.flags & LB_F_TRUNCATED == 0)
        #expect(Array(first.bytes) == jumbo)
        let second = lane.next()!
        #expect(second.bytes.count == geometry.maxCaplen)
        #expect(Int(second.descriptor.wirelen) == tooLong.count)
        #expect(second.descriptor.flags & LB_F_TRUNCATED != 0)
        #expect(rings.shared.counters.get(.truncated) == 1)
    }

    /// Each descriptor carries the flow hash, the same for both directions of the flow, and
    /// the metadata a worker needs.
    @Test func descriptorsCarryTheFlowHash() throws {
        let rings = try TestRings([1], big: [0])
        let decoder = Decoder()
        var frames: [[UInt8]] = []
        for i in 0..<50 {
            let f = udpFrame(client: i, sport: UInt16(2000 + i))
            var r = f
            // the reverse direction: swap addresses and ports
            r.replaceSubrange(26..<30, with: f[30..<34]); r.replaceSubrange(30..<34, with: f[26..<30])
            r.replaceSubrange(34..<36, with: f[36..<38]); r.replaceSubrange(36..<38, with: f[34..<36])
            frames += [f, r]
        }
        var dispatcher = Dispatcher(config: DispatchConfig(), groups: rings.memories, shared: rings.shared)
        var source = MemorySource(frames, live: true)
        dispatcher.run(&source)
        var lane = rings.consumers[0].lane(0)
        for (i, f) in frames.enumerated() {
            let p = lane.next()!
            let expected = f.withUnsafeBytes { decoder.flowHash(decoder.decode($0, link: .ethernet)) }
            #expect(p.descriptor.flow_hash == expected)
            #expect(p.descriptor.l3_off == 14 && p.descriptor.depth == 0 && p.descriptor.ts_ns == UInt64(i) * 1000)
            if i % 2 == 1 {
                let previous = frames[i - 1].withUnsafeBytes { decoder.flowHash(decoder.decode($0, link: .ethernet)) }
                #expect(p.descriptor.flow_hash == previous, "both directions of a flow hash alike")
            }
        }
    }
}

/// The dispatcher's fast path (FastFrame, no Decoded) must deliver exactly what the general
/// path delivers: same descriptors, same bytes, same tunnel records, for every corpus packet.
@Suite struct DispatcherFastPathTests {
    static func ringContents(_ frames: [[UInt8]], linkTypes: [UInt32], fast: Bool, config: DispatchConfig) throws -> [[UInt8]] {
        var g = RingGeometry.default
        g.slots = 1 << 16
        g.dataBytes = 1 << 26
        let rings = try TestRings([1], big: [], geometry: g)
        var dispatcher = Dispatcher(config: config, groups: rings.memories, shared: rings.shared)
        dispatcher.useFastPath = fast
        var source = MemorySource(frames, live: true)
        source.linkTypes = linkTypes
        dispatcher.run(&source)
        var lane = rings.consumers[0].lane(0)
        var out: [[UInt8]] = []
        while let p = lane.next() {
            var d = p.descriptor
            d.data_off = 0                      // positions may differ; contents may not
            var record = withUnsafeBytes(of: &d) { Array($0) } + Array(p.bytes)
            if let t = p.tunnel { record += withUnsafeBytes(of: t.pointee) { Array($0) } }
            out.append(record)
        }
        return out
    }

    @Test(arguments: [false, true])
    func corpusDeliveriesAreIdentical(keep: Bool) throws {
        var frames: [[UInt8]] = [], links: [UInt32] = []
        let files = Corpus.traces()
        #expect(files.count > 50, "corpus not found at \(Corpus.root)")
        for file in files {
            for p in try readCapture(file) { frames.append(p.bytes); links.append(p.linkType) }
        }
        var config = DispatchConfig()
        config.decode = DecodeConfig(keepEncapsulation: keep)
        let general = try Self.ringContents(frames, linkTypes: links, fast: false, config: config)
        let fast = try Self.ringContents(frames, linkTypes: links, fast: true, config: config)
        #expect(general.count == fast.count)
        #expect(general.count >= frames.count - 100, "only \(general.count) deliveries for \(frames.count) frames")
        var differences = 0
        for (i, (a, b)) in zip(general, fast).enumerated() where a != b {
            differences += 1
            if differences <= 3 { Issue.record("delivery \(i) differs:\n general \(a.prefix(80))\n fast    \(b.prefix(80))") }
        }
        #expect(differences == 0)
    }

    /// The same with a group policy: a filter and a slice length (the fast path filters and
    /// slices in place, the general path through its own code).
    @Test func corpusDeliveriesAreIdenticalUnderAPolicy() throws {
        var frames: [[UInt8]] = [], links: [UInt32] = []
        for file in Corpus.traces() {
            for p in try readCapture(file) { frames.append(p.bytes); links.append(p.linkType) }
        }
        var config = DispatchConfig()
        config.policies = [GroupPolicy(filter: try PacketFilter("not (tcp port 80) or vlan"), slice: 100)]
        let general = try Self.ringContents(frames, linkTypes: links, fast: false, config: config)
        let fast = try Self.ringContents(frames, linkTypes: links, fast: true, config: config)
        #expect(general.count == fast.count && general.count > 1000 && general.count < frames.count - 1000)
        #expect(zip(general, fast).filter { $0 != $1 }.count == 0)
    }

    /// VXLAN packets that get a tenant tag: the fast path tags them as the general path does
    /// (VNI mapped, folded, or the outer VLAN; inner frames with and without a VLAN; outer
    /// VLANs; IPv4 and IPv6 carriers; with a filter and a slice, and without).
    @Test(arguments: [TenantTag.Source.vni, .vlan], [false, true])
    func tenantTagsAreIdentical(source: TenantTag.Source, withPolicy: Bool) throws {
        var frames: [[UInt8]] = []
        for i in 0..<400 {
            var inner: [Layer] = [.ethernet(src: "02:00:00:00:00:aa")]
            if i % 5 == 1 { inner.append(.vlan(id: UInt16(100 + i % 3))) }
            inner += [.ipv4(src: "10.3.0.1", dst: IPv4(UInt32(0x0A03_0100 + i % 50)), id: UInt16(i)),
                      i % 2 == 0 ? .tcp(sport: UInt16(1000 + i), dport: i % 4 == 0 ? 80 : 443, seq: UInt32(i)) : .udp(sport: UInt16(2000 + i), dport: 53),
                      .payload([UInt8](repeating: UInt8(i & 0xFF), count: 20 + i % 300))]
            let vni: UInt32 = [5, 77, 4095, 70000, 16_777_215, 0][i % 6]
            var outer: [Layer] = [.ethernet()]
            if i % 3 == 0 { outer.append(.vlan(id: UInt16(10 + i % 4))) }
            outer += i % 7 == 3 ? [.ipv6(src: "2001:db8::1", dst: "2001:db8::2")] : [.ipv4(src: "192.0.2.1", dst: "192.0.2.2")]
            outer += [.udp(sport: UInt16(40000 + i), dport: 4789), .vxlan(vni: vni)]
            frames.append(PacketBuilder.build(outer + inner))
            if i % 10 == 0 { frames.append(PacketBuilder.build(inner)) }       // not in a tunnel: no tag
        }
        var config = DispatchConfig()
        config.tenantTag = TenantTag(source: source, map: [77: 700, 70000: 12])
        if withPolicy { config.policies = [GroupPolicy(filter: try PacketFilter("not (tcp port 80)"), slice: 90)] }
        let links = [UInt32](repeating: 1, count: frames.count)
        let general = try Self.ringContents(frames, linkTypes: links, fast: false, config: config)
        let fast = try Self.ringContents(frames, linkTypes: links, fast: true, config: config)
        #expect(general.count == fast.count && general.count > 300)
        #expect(zip(general, fast).filter { $0 != $1 }.count == 0)
        // and they are tagged: the descriptor says so for every tunneled packet with a tag
        let taggedCount = general.filter { r in r.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 32, as: UInt32.self) } & LB_F_TENANT_TAG != 0 }.count
        #expect(taggedCount > 100, "\(taggedCount) tagged")
    }
}
