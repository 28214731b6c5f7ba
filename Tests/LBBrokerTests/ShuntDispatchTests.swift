import CLBRing
@testable import LBBroker
import LBCore
import LBGen
import LBRing
import Testing

/// Shunting on the data path: a group whose table holds a flow does not receive its packets
/// (TCP SYN, FIN and RST excepted), other groups still do; requests and replies go through the
/// lane's ShuntChannel; the fast path and the general path agree.
@Suite struct ShuntDispatchTests {
    static let client: IPv4 = "10.0.0.1", server: IPv4 = "10.9.9.9"

    static func segment(_ fromClient: Bool, flags: TCPFlags, vxlan: Bool = false) -> [UInt8] {
        let inner: [Layer] = [.ethernet(), .ipv4(src: fromClient ? client : server, dst: fromClient ? server : client),
                              .tcp(sport: fromClient ? 40000 : 443, dport: fromClient ? 443 : 40000, flags: flags), .filler(100)]
        guard vxlan else { return PacketBuilder.build(inner) }
        return PacketBuilder.build([.ethernet(), .ipv4(src: "192.0.2.1", dst: "192.0.2.2"), .udp(sport: 5555, dport: 4789), .vxlan(vni: 7)] + inner)
    }

    /// 1 SYN, 1 SYN-ACK, 40 data segments each way, a FIN each way, a RST.
    static func conversation(vxlan: Bool) -> [[UInt8]] {
        var f = [segment(true, flags: .syn, vxlan: vxlan), segment(false, flags: [.syn, .ack], vxlan: vxlan)]
        for _ in 0..<40 { f += [segment(true, flags: [.psh, .ack], vxlan: vxlan), segment(false, flags: [.psh, .ack], vxlan: vxlan)] }
        f += [segment(true, flags: [.fin, .ack], vxlan: vxlan), segment(false, flags: [.fin, .ack], vxlan: vxlan),
              segment(true, flags: .rst, vxlan: vxlan)]
        return f
    }

    /// Runs the frames through a dispatcher with groups a:1, b:1 after the given commands;
    /// returns packets per group, and the channel.
    func run(_ frames: [[UInt8]], fast: Bool, commands: [ShuntChannel.Command]) throws -> (a: Int, b: Int, channel: ShuntChannel, counters: Counters) {
        let rings = try TestRings([1, 1], big: [0, 1])
        let ch = ShuntChannel(groupCount: 2)
        rings.shared.shuntChannels = [ch]
        for c in commands { #expect(ch.send(c)) }
        var dispatcher = Dispatcher(config: DispatchConfig(), groups: rings.memories, shared: rings.shared)
        dispatcher.useFastPath = fast
        var source = MemorySource(frames, live: true)
        dispatcher.run(&source)
        return (rings.drain(0), rings.drain(1), ch, rings.shared.counters)
    }

    static func rule(_ d: ShuntTable.Directions = .both) -> ShuntTable.Rule {
        var k = FlowKey()
        k.srcLo = FlowKey.v4Mapped(client.value); k.dstLo = FlowKey.v4Mapped(server.value)
        k.sport = 40000; k.dport = 443; k.proto = 6; k.kind = .ports
        return ShuntTable.Rule(key: k, directions: d)
    }

    @Test(arguments: [true, false], [false, true])
    func shuntedGroupGetsOnlyControlPackets(fast: Bool, vxlan: Bool) throws {
        let frames = Self.conversation(vxlan: vxlan)
        let r = try run(frames, fast: fast, commands: [.init(op: .add, group: 0, rule: Self.rule(), token: 1)])
        #expect(r.a == 5, "group a: \(r.a)")                 // SYN, SYN-ACK, FIN, FIN, RST
        #expect(r.b == frames.count)                         // the other group is untouched
        let c = r.channel.counters(group: 0)
        #expect(c.entries == 0 && c.added == 1 && c.packets == 80)      // the end of the input ended it
        #expect(r.counters.get(ring: 0, .shunted) == 80 && r.counters.get(ring: 1, .shunted) == 0)
        #expect(r.counters.get(ring: 0, .shuntedBytes) == UInt64(80 * (frames[2].count - (vxlan ? 50 : 0))))
        let reply = try #require(r.channel.receive())
        #expect(reply.kind == .added && reply.token == 1 && reply.group == 0)
    }

    @Test func oneDirectionAndBothGroups() throws {
        let frames = Self.conversation(vxlan: false)
        // server -> client only, in group b; both directions in group a
        var serverSide = FlowKey()
        serverSide.srcLo = FlowKey.v4Mapped(Self.server.value); serverSide.dstLo = FlowKey.v4Mapped(Self.client.value)
        serverSide.sport = 443; serverSide.dport = 40000; serverSide.proto = 6; serverSide.kind = .ports
        let r = try run(frames, fast: true, commands: [
            .init(op: .add, group: 1, rule: ShuntTable.Rule(key: serverSide, directions: .forward), token: 1),
            .init(op: .add, group: 0, rule: Self.rule(), token: 2),
        ])
        #expect(r.a == 5 && r.b == frames.count - 40)
    }

    @Test func listAndRemoveAnswerThroughTheChannel() throws {
        let frames = Self.conversation(vxlan: false)
        let r = try run(frames, fast: true, commands: [
            .init(op: .add, group: 0, rule: Self.rule(), token: 1),
            .init(op: .list, group: 0, rule: Self.rule(), token: 2),
            .init(op: .remove, group: 0, rule: Self.rule(), token: 3),
            .init(op: .remove, group: 0, rule: Self.rule(), token: 4),
            .init(op: .add, group: 9, rule: Self.rule(), token: 5),
        ])
        #expect(r.a == frames.count)          // removed before the first packet
        var kinds: [ShuntChannel.ReplyKind] = []
        while let x = r.channel.receive() { kinds.append(x.kind) }
        #expect(kinds == [.added, .listEntry, .listEnd, .removed, .notFound, .notFound, .ended])
    }

    @Test func emptyTablesLeaveDeliveriesAlone() throws {
        let frames = Self.conversation(vxlan: true)
        let r = try run(frames, fast: true, commands: [])
        #expect(r.a == frames.count && r.b == frames.count)
        #expect(r.channel.receive() == nil)
    }
}

/// End reports: when a shunt ends (here: the end of the input), the ring its flow hashes to gets
/// an LB_F_SHUNT_END record with the final counts, if its consumer asked for them — after the
/// flow's last packets and before the end of the stream.
@Suite struct ShuntEndReportTests {
    @Test(arguments: [true, false])
    func theEndOfTheInputReportsEveryShunt(wanted: Bool) throws {
        let frames = ShuntDispatchTests.conversation(vxlan: false)
        let rings = try TestRings([1, 1], big: [0, 1])
        let ch = ShuntChannel(groupCount: 2)
        rings.shared.shuntChannels = [ch]
        rings.shared.setWantsShuntReports(0, wanted)
        #expect(ch.send(.init(op: .add, group: 0, rule: ShuntDispatchTests.rule(), token: 1)))
        var dispatcher = Dispatcher(config: DispatchConfig(), groups: rings.memories, shared: rings.shared)
        var source = MemorySource(frames, live: true)
        dispatcher.run(&source)
        var lane = rings.consumers[0].lane(0)
        var packets = 0
        var reports: [lb_shunt_end] = []
        while let p = lane.next() {
            if p.descriptor.flags & LB_F_SHUNT_END != 0 {
                #expect(p.bytes.count == MemoryLayout<lb_shunt_end>.size)
                var r = lb_shunt_end()
                withUnsafeMutableBytes(of: &r) { $0.copyMemory(from: p.bytes) }
                reports.append(r)
                #expect(packets == 5, "the report comes after the flow's packets")
            } else {
                packets += 1
            }
        }
        #expect(packets == 5)
        guard wanted else { #expect(reports.isEmpty); return }
        try #require(reports.count == 1)
        let r = reports[0]
        // 10.0.0.1:40000 < 10.9.9.9:443, so a is the client: 40 data segments each way,
        // IP bytes 20 + 20 + 100 each
        #expect(r.a_port == 40000 && r.b_port == 443 && r.proto == 6 && r.reason == 4 && r.directions == 3)
        #expect(r.packets_ab == 40 && r.packets_ba == 40 && r.ip_bytes_ab == 40 * 140 && r.ip_bytes_ba == 40 * 140)
        #expect(r.last_ns >= r.added_ns)
        // ring b:0 asked for nothing and got every packet
        #expect(rings.drain(1) == frames.count)
    }
}
