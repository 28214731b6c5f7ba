import Foundation
import LBCore
import LBGen
import Testing

/// Issue 17 item 3, end to end: `lb -i pcap:T -p g:2 --dedup on` with an `lb cat` per ring.
/// - N packets, each repeated once with a lower TTL / hop limit, behind another VLAN tag, or
///   inside a second VXLAN tunnel, and some with one more copy whose payload differs by one
///   byte: exactly N (+ the changed ones) delivered, N counted as deduplicated;
/// - exact duplicates: lb delivers what `editcap -D` keeps;
/// - without --dedup every copy is delivered and the dedup fields are null.
@Suite("Dedup through lb", .serialized)
struct DedupEndToEndTests {
    static let t0: UInt64 = 1_700_000_000_000_000_000

    /// The inner IP packet i (with this TTL / hop limit); payloads differ, so no two are equal.
    static func inner(_ i: Int, ttl: UInt8, flip: Bool = false) -> [Layer] {
        var payload = (0..<(12 + i % 40)).map { UInt8(truncatingIfNeeded: i &* 13 &+ $0) }
        payload += [UInt8(truncatingIfNeeded: i), UInt8(truncatingIfNeeded: i >> 8)]
        if flip { payload[payload.count / 2] ^= 0x01 }
        let sport = UInt16(20000 + i % 300)
        let l4: Layer = i % 2 == 0 ? .udp(sport: sport, dport: 53) : .tcp(sport: sport, dport: 443, seq: UInt32(i))
        if i % 4 == 3 {
            return [.ipv6(src: "2001:db8::1", dst: IPv6(parsing: "2001:db8::\(String(i % 500 + 2, radix: 16))")!, hopLimit: ttl), l4, .payload(payload)]
        }
        return [.ipv4(src: "10.1.0.1", dst: IPv4(UInt32(0x0A02_0000 + i % 500)), id: UInt16(i), ttl: ttl), l4, .payload(payload)]
    }

    /// How packet i is framed: plain, VLAN 10, or in VXLAN tunnel A (so each kind of copy
    /// meets each kind of original).
    static func frame(_ i: Int, _ ip: [Layer], variant: Int) -> [UInt8] {
        switch variant % 3 {
        case 0: return PacketBuilder.build([.ethernet()] + ip)
        case 1: return PacketBuilder.build([.ethernet(src: "02:00:00:00:00:10"), .vlan(id: 10)] + ip)
        default:
            return PacketBuilder.build([.ethernet(), .ipv4(src: "192.0.2.1", dst: "192.0.2.2", ttl: 60), .udp(sport: 40000, dport: 4789),
                                        .vxlan(vni: 100), .ethernet(src: "02:00:00:00:00:aa")] + ip)
        }
    }

    /// The copy of packet i: lower TTL, another VLAN tag, or inside VXLAN tunnel B.
    static func copy(_ i: Int, _ ip: [Layer], kind: Int) -> [UInt8] {
        switch kind % 3 {
        case 0: return frame(i, inner(i, ttl: 61), variant: i / 3)
        case 1: return PacketBuilder.build([.ethernet(src: "02:00:00:00:00:20"), .vlan(id: 20 + UInt16(i % 7))] + ip)
        default:
            return PacketBuilder.build([.ethernet(dst: "02:00:00:00:00:bb"), .ipv6(src: "2001:db8:ff::1", dst: "2001:db8:ff::2"),
                                        .udp(sport: 40001, dport: 4789), .vxlan(vni: 200 + UInt32(i % 5)), .ethernet()] + ip)
        }
    }

    static func write(_ packets: [(timestampNanos: UInt64, bytes: [UInt8])], to file: String) throws {
        try Data(LBCore.Pcap.file(linkType: 1, nanosecond: false, packets: packets)).write(to: URL(fileURLWithPath: file))
    }

    static func delivered(_ run: LBRun) throws -> [Pcap.Record] {
        try run.rings.flatMap { try Pcap.records(run.files($0)[0]) }
    }

    @Test("copies with a lower TTL, another VLAN tag or in another tunnel are dropped; a changed byte is not")
    func copies() throws {
        let n = 600
        var packets: [(timestampNanos: UInt64, bytes: [UInt8])] = []
        var changed = 0
        for i in 0..<n {
            let ip = Self.inner(i, ttl: 64)
            let at = Self.t0 + UInt64(i) * 200_000               // 200 µs apart
            packets.append((at, Self.frame(i, ip, variant: i / 3)))
            packets.append((at + 30_000, Self.copy(i, ip, kind: i)))  // 30 µs later
            if i % 10 == 0 {
                packets.append((at + 60_000, Self.frame(i, Self.inner(i, ttl: 64, flip: true), variant: i / 3)))
                changed += 1
            }
        }
        let scratch = try ScratchDirectory("dedup-copies")
        let file = scratch.path + "/t.pcap"
        try Self.write(packets, to: file)

        var run = LBRun(dir: scratch.path, groups: [("g", 2)])
        try run.startLB(file, extra: ["--dedup", "on"])
        try run.startConsumers()
        let stats = try run.finish()
        #expect(stats.int("packets_received") == packets.count)
        #expect(stats.int("packets_deduplicated") == n, "\(stats)")
        #expect((stats["dedup_window_seconds"] as? NSNumber)?.doubleValue == 0.001)
        let out = try Self.delivered(run)
        #expect(out.count == n + changed)
        #expect(stats.int("packets_forwarded") == n + changed)
        // each kept packet is the first of its copies (the original, TTL 64 / hop limit 64)
        #expect(Set(out.map(\.data)).count == out.count, "a packet was delivered twice")
    }

    @Test("without --dedup every copy is delivered and the dedup fields are null")
    func off() throws {
        let n = 60
        var packets: [(timestampNanos: UInt64, bytes: [UInt8])] = []
        for i in 0..<n {
            let ip = Self.inner(i, ttl: 64)
            packets.append((Self.t0 + UInt64(i) * 200_000, Self.frame(i, ip, variant: i)))
            packets.append((Self.t0 + UInt64(i) * 200_000 + 1000, Self.copy(i, ip, kind: i)))
        }
        let scratch = try ScratchDirectory("dedup-off")
        let file = scratch.path + "/t.pcap"
        try Self.write(packets, to: file)
        var run = LBRun(dir: scratch.path, groups: [("g", 2)])
        try run.startLB(file)
        try run.startConsumers()
        let stats = try run.finish()
        #expect(try Self.delivered(run).count == 2 * n)
        for field in ["packets_deduplicated", "dedup_window_seconds"] {
            #expect(stats[field] == nil || stats[field] is NSNull, "\(field): \(stats[field] ?? "")")
        }
    }

    @Test("with --tenant-tag vni, equal inner packets of two tenants are both delivered; copies within a tenant are not")
    func tenants() throws {
        let n = 100
        var packets: [(timestampNanos: UInt64, bytes: [UInt8])] = []
        func tunnel(_ vni: UInt32, _ outerTTL: UInt8, _ ip: [Layer]) -> [UInt8] {
            PacketBuilder.build([.ethernet(), .ipv4(src: "192.0.2.1", dst: "192.0.2.2", ttl: outerTTL), .udp(sport: 40000, dport: 4789),
                                 .vxlan(vni: vni), .ethernet()] + ip)
        }
        for i in 0..<n {
            let ip = Self.inner(i, ttl: 64), at = Self.t0 + UInt64(i) * 200_000
            packets.append((at, tunnel(100, 64, ip)))            // tenant 100
            packets.append((at + 10_000, tunnel(100, 60, ip)))   // its copy from a second mirror session
            packets.append((at + 20_000, tunnel(101, 64, ip)))   // tenant 101, the same inner packet
        }
        let scratch = try ScratchDirectory("dedup-tenants")
        let file = scratch.path + "/t.pcap"
        try Self.write(packets, to: file)
        var run = LBRun(dir: scratch.path, groups: [("g", 2)])
        try run.startLB(file, extra: ["--dedup", "on", "--tenant-tag", "vni"])
        try run.startConsumers()
        let stats = try run.finish()
        #expect(stats.int("packets_deduplicated") == n, "\(stats)")
        let out = try Self.delivered(run)
        #expect(out.count == 2 * n)
        // each delivered packet carries its tenant's tag: 100 and 101, n of each
        let tags = out.map { $0.data.count > 16 && $0.data[12] == 0x81 && $0.data[13] == 0x00 ? Int($0.data[14] & 0x0F) << 8 | Int($0.data[15]) : -1 }
        #expect(tags.filter { $0 == 100 }.count == n && tags.filter { $0 == 101 }.count == n, "tags: \(Set(tags))")
    }

    @Test("exact duplicates: lb delivers what editcap -D keeps")
    func editcap() throws {
        // 500 packets; a third of them repeated exactly 1 to 3 packets (and at most 300 µs) later
        var packets: [(timestampNanos: UInt64, bytes: [UInt8])] = []
        var rng = SeededRNG(seed: 17)
        var pending: [(due: Int, bytes: [UInt8])] = []
        var dupes = 0
        for i in 0..<500 {
            let at = Self.t0 + UInt64(packets.count) * 100_000
            packets.append((at, Self.frame(i, Self.inner(i, ttl: 64), variant: i)))
            if rng.next() % 3 == 0 {
                pending.append((packets.count + Int(rng.next() % 3), packets.last!.bytes))
                dupes += 1
            }
            while let k = pending.firstIndex(where: { $0.due <= packets.count }) {
                packets.append((Self.t0 + UInt64(packets.count) * 100_000, pending.remove(at: k).bytes))
            }
        }
        for p in pending { packets.append((Self.t0 + UInt64(packets.count) * 100_000, p.bytes)) }
        let scratch = try ScratchDirectory("dedup-editcap")
        let file = scratch.path + "/t.pcap", kept = scratch.path + "/kept.pcap"
        try Self.write(packets, to: file)
        let (status, out) = try Tool.run("/usr/bin/editcap", ["-D", "10", "-F", "pcap", file, kept], in: scratch.path, label: "editcap")
        try #require(status == 0, "editcap: \(out)")
        let editcapKept = try Pcap.records(kept).count
        #expect(editcapKept == packets.count - dupes, "editcap kept \(editcapKept) of \(packets.count), \(dupes) duplicates put in")

        var run = LBRun(dir: scratch.path, groups: [("g", 2)])
        try run.startLB(file, extra: ["--dedup", "1ms"])
        try run.startConsumers()
        let stats = try run.finish()
        #expect(try Self.delivered(run).count == editcapKept)
        #expect(stats.int("packets_deduplicated") == packets.count - editcapKept)
    }
}
