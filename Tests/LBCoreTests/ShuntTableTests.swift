import LBCore
import Testing

@Suite("Shunt table")
struct ShuntTableTests {
    typealias E = ShuntTable.Endpoint

    static func key(_ s: UInt32, _ sp: UInt16, _ d: UInt32, _ dp: UInt16, proto: UInt8 = 6) -> FlowKey {
        var k = FlowKey()
        k.srcLo = FlowKey.v4Mapped(s); k.dstLo = FlowKey.v4Mapped(d)
        k.sport = sp; k.dport = dp; k.proto = proto; k.kind = .ports
        return k
    }

    @Test func bothDirectionsAndControlPackets() {
        var t = ShuntTable(capacity: 16)
        let none = t.shunts(Self.key(1, 1000, 2, 80), extra: 0, bytes: 100, now: 1, control: false)
        #expect(t.isEmpty && !none)
        let k = Self.key(1, 1000, 2, 80)
        let v1 = t.add(ShuntTable.Rule(key: k), now: 1)
        #expect(v1 == .added)
        let v2 = t.shunts(k, extra: 0, bytes: 100, now: 2, control: false)
        #expect(v2)
        let back = Self.key(2, 80, 1, 1000)
        let v3 = t.shunts(back, extra: 0, bytes: 40, now: 3, control: false)
        #expect(v3)
        let v4 = t.shunts(back, extra: 0, bytes: 40, now: 4, control: true)
        #expect(!v4)       // FIN/SYN/RST pass
        let v5 = t.shunts(Self.key(1, 1001, 2, 80), extra: 0, bytes: 100, now: 5, control: false)
        #expect(!v5)
        let v6 = t.shunts(k, extra: 7, bytes: 100, now: 5, control: false)
        #expect(!v6)       // another VLAN/VNI
        let v7 = t.shunts(Self.key(1, 1000, 2, 80, proto: 17), extra: 0, bytes: 100, now: 5, control: false)
        #expect(!v7)
        let e = t.list()
        #expect(e.count == 1)
        // 1 < 2, so 1:1000 is endpoint a: the first packet went forward
        #expect(e[0].packets == (1, 1) && e[0].bytes == (100, 40))
        #expect(t.counters.packets == 2 && t.counters.bytes == 140)
    }

    @Test func oneDirection() {
        var t = ShuntTable(capacity: 16)
        let server = Self.key(9, 443, 3, 5555)       // server -> client, the side Zeek shunts
        let v8 = t.add(ShuntTable.Rule(key: server, directions: .forward), now: 0)
        #expect(v8 == .added)
        let v9 = t.shunts(server, extra: 0, bytes: 1500, now: 1, control: false)
        #expect(v9)
        let v10 = t.shunts(Self.key(3, 5555, 9, 443), extra: 0, bytes: 60, now: 1, control: false)
        #expect(!v10)
        // the other direction added later: one entry, both directions
        let v11 = t.add(ShuntTable.Rule(key: Self.key(3, 5555, 9, 443), directions: .forward), now: 2)
        #expect(v11 == .updated)
        let both = t.shunts(Self.key(3, 5555, 9, 443), extra: 0, bytes: 60, now: 3, control: false)
        #expect(t.count == 1 && both)
    }

    @Test func timeoutsEndEntriesWithTheirCounts() {
        var t = ShuntTable(capacity: 16)
        let k = Self.key(1, 1, 2, 2)
        _ = t.add(ShuntTable.Rule(key: k, idleNanos: 10, hardNanos: 0), now: 100)
        let v12 = t.shunts(k, extra: 0, bytes: 10, now: 105, control: false)
        #expect(v12)
        let v13 = t.shunts(k, extra: 0, bytes: 10, now: 114, control: false)
        #expect(v13)
        let v14 = t.shunts(k, extra: 0, bytes: 10, now: 124, control: false)
        #expect(!v14)     // idle 10: ended, delivered
        #expect(t.isEmpty && t.counters.expired == 1)
        let ended = t.takeEnded()
        #expect(ended.count == 1 && ended[0].reason == .idle && ended[0].entry.packets.0 == 2 && ended[0].entry.bytes.0 == 20)
        #expect(t.takeEnded().isEmpty)

        _ = t.add(ShuntTable.Rule(key: k, idleNanos: 0, hardNanos: 50), now: 200)
        for now in stride(from: UInt64(201), to: 250, by: 5) { let hit = t.shunts(k, extra: 0, bytes: 1, now: now, control: false); #expect(hit) }
        t.expire(now: 250)
        #expect(t.isEmpty && t.takeEnded().first?.reason == .hard)

        _ = t.add(ShuntTable.Rule(key: k), now: 300)
        let v15 = t.remove(ShuntTable.Rule(key: Self.key(2, 2, 1, 1)))
        #expect(v15?.rule.proto == 6)    // either direction names it
        #expect(t.isEmpty && t.counters.removed == 1 && t.takeEnded().first?.reason == .removed)
    }

    /// A live input that has not seen a packet yet has clock 0: an entry added then starts its
    /// timeouts at the first packet time, instead of ending at once as 'idle since time 0'.
    @Test func anEntryAddedBeforeAnyPacketStartsItsClockAtTheFirst() {
        var t = ShuntTable(capacity: 16)
        let k = Self.key(1, 1, 2, 2)
        _ = t.add(ShuntTable.Rule(key: k, idleNanos: 60_000_000_000), now: 0)
        let wall: UInt64 = 1_700_000_000_000_000_000
        let first = t.shunts(k, extra: 0, bytes: 100, now: wall, control: false)
        let later = t.shunts(k, extra: 0, bytes: 100, now: wall + 59_000_000_000, control: false)
        #expect(first && later && t.counters.expired == 0)
        t.expire(now: wall + 59_000_000_000 + 60_000_000_000)
        #expect(t.isEmpty && t.counters.expired == 1)
    }

    @Test func fullTableRefusesAndCounts() {
        var t = ShuntTable(capacity: 10)
        for i in 0..<10 { let r = t.add(ShuntTable.Rule(key: Self.key(UInt32(i), 1, 1000, 2)), now: 0); #expect(r == .added) }
        let v16 = t.add(ShuntTable.Rule(key: Self.key(77, 1, 1000, 2)), now: 0)
        #expect(v16 == .full)
        #expect(t.counters.refused == 1 && t.count == 10)
        let v17 = t.add(ShuntTable.Rule(key: Self.key(3, 1, 1000, 2)), now: 0)
        #expect(v17 == .updated)
    }

    @Test func endReportsAreBoundedAndCounted() {
        var t = ShuntTable(capacity: 64, endReports: 4)
        for i in 0..<10 {
            _ = t.add(ShuntTable.Rule(key: Self.key(UInt32(i), 1, 1000, 2)), now: 0)
            t.remove(ShuntTable.Rule(key: Self.key(UInt32(i), 1, 1000, 2)))
        }
        let e = t.takeEnded()
        #expect(e.count == 4 && t.counters.endReportsLost == 6)
        #expect(e.map { $0.entry.rule.a.lo & 0xFF } == [6, 7, 8, 9])
    }

    /// Random adds, removes, expiries and lookups against a dictionary: deletion by backward
    /// shift must leave every remaining entry reachable, in a table kept nearly full.
    @Test func agreesWithAModel() {
        var t = ShuntTable(capacity: 200)
        var model: [Int: UInt64] = [:]        // flow id -> hard timeout deadline
        var rng: UInt64 = 0x1234_5678
        func next() -> Int { rng = rng &* 6364136223846793005 &+ 1442695040888963407; return Int(rng >> 33) }
        func k(_ id: Int) -> FlowKey { Self.key(UInt32(id % 37), UInt16(id / 37), 99, 80) }
        var now: UInt64 = 0
        for _ in 0..<50_000 {
            now += 1
            let id = next() % 400
            switch next() % 4 {
            case 0:
                let r = t.add(ShuntTable.Rule(key: k(id), hardNanos: 500), now: now)
                if model[id] != nil { #expect(r == .updated) }
                else if model.count < 200 { #expect(r == .added); model[id] = now + 500 } else { #expect(r == .full) }
            case 1:
                let removed = t.remove(ShuntTable.Rule(key: k(id))) != nil
                #expect(removed == (model[id] != nil))
                model[id] = nil
            case 2:
                t.expire(now: now, budget: 16)
                // the sweep may or may not have reached an expired entry: sync the model from the table
                let present = Set(t.list().map { Int($0.rule.a.lo & 0xFF) + 37 * Int($0.rule.a.port) })
                for (m, _) in model where !present.contains(m) { model[m] = nil }
            default:
                let hit = t.shunts(k(id), extra: 0, bytes: 1, now: now, control: false)
                if let deadline = model[id], now < deadline { #expect(hit) } else { #expect(!hit) }
                if let deadline = model[id], now >= deadline { model[id] = nil }
            }
            #expect(t.count == model.count)
        }
        _ = t.takeEnded()
    }
}
