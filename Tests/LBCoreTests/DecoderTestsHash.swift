import LBCore
import LBGen
import Testing

// End to end from frame to worker: the two directions of one inner connection, each in its own
// outer tunnel (as cloud mirroring sends them), decode to keys that hash alike, so they reach
// the same worker; and the generator's traffic keeps every flow on one worker.

/// A tunnel around an inner packet; `reply` picks the other direction's outer header.
struct Wrapping: CustomTestStringConvertible, Sendable {
    let name: String
    let wrap: @Sendable (_ inner: [Layer], _ reply: Bool) -> [Layer]
    var testDescription: String { name }

    static let all: [Wrapping] = [
        Wrapping(name: "plain") { inner, _ in [.ethernet()] + inner },
        Wrapping(name: "vlan") { inner, _ in [.ethernet(), .vlan(id: 5)] + inner },
        Wrapping(name: "mpls") { inner, r in [.ethernet(), .mpls(labels: [r ? 20 : 10])] + inner },
        Wrapping(name: "pppoe") { inner, _ in [.ethernet(), .pppoe()] + inner },
        // AWS traffic mirroring: the two directions in different outer UDP source ports
        Wrapping(name: "vxlan") { inner, r in
            outer4 + [.udp(sport: r ? 51111 : 40000, dport: 4789), .vxlan(vni: 7), .ethernet()] + inner
        },
        // a mirror session per ENI: different outer source addresses too
        Wrapping(name: "vxlan-two-sessions") { inner, r in
            [.ethernet(), .ipv4(src: r ? "172.31.9.9" : Addr.o4, dst: Addr.t4), .udp(sport: r ? 3333 : 4444, dport: 4789),
             .vxlan(vni: r ? 8 : 7), .ethernet()] + inner
        },
        Wrapping(name: "geneve") { inner, r in
            outer4 + [.udp(sport: r ? 1 : 2, dport: 6081), .geneve(vni: 7, options: r ? [GeneveOption()] : []), .ethernet()] + inner
        },
        Wrapping(name: "geneve+vxlan") { inner, r in
            outer4 + [.udp(sport: r ? 1 : 2, dport: 6081), .geneve(vni: 7, proto: 0x0800), .ipv4(src: "172.31.0.5", dst: "172.31.0.10"),
                      .udp(sport: r ? 3 : 4, dport: 4789), .vxlan(vni: 42), .ethernet()] + inner
        },
        Wrapping(name: "gre") { inner, r in outer4 + [.gre(key: r ? 2 : 1)] + inner },
        Wrapping(name: "erspan2") { inner, r in outer4 + [.gre(seq: r ? 9 : 1), .erspan2(session: 3), .ethernet()] + inner },
        Wrapping(name: "erspan3") { inner, _ in outer4 + [.gre(seq: 1), .erspan3(session: 3), .ethernet()] + inner },
        Wrapping(name: "gre-udp") { inner, r in outer4 + [.udp(sport: r ? 1 : 2, dport: 4754), .gre()] + inner },
        Wrapping(name: "ipip") { inner, r in (r ? outer6 : outer4) + inner },
        Wrapping(name: "gtpu") { inner, r in outer4 + [.udp(sport: 2152, dport: 2152), .gtpu(teid: r ? 0x100 : 0x200)] + inner },
        Wrapping(name: "pptp") { inner, r in outer4 + [.pptp(callID: r ? 1 : 2, seq: 1), .ppp()] + inner },
    ]
}

@Suite("Decoder + hash: flows stay together")
struct DecoderHashTests {
    static let flows: [(forward: [Layer], reply: [Layer])] = [
        (inner4, [.ipv4(src: Addr.s4, dst: Addr.c4), .tcp(sport: 80, dport: 1234, seq: 500, ack: 120, flags: .ack)]),
        (inner6, [.ipv6(src: Addr.s6, dst: Addr.c6), .udp(sport: 53, dport: 5353), .filler(90)]),
        ([.ipv4(src: Addr.c4, dst: Addr.s4), .icmpEcho(id: 3, seq: 1)], [.ipv4(src: Addr.s4, dst: Addr.c4), .icmpEcho(id: 3, seq: 1, reply: true)]),
    ]

    @Test(arguments: Wrapping.all)
    func bothDirectionsHashAlike(w: Wrapping) {
        for (fwd, rep) in Self.flows {
            let a = decodeFrame(build(w.wrap(fwd, false)))
            let b = decodeFrame(build(w.wrap(rep, true)))
            #expect(a.error == .none && b.error == .none)
            #expect(a.key == reversed(b.key))
            for mode in [TupleMode.five, .three, .two] {
                #expect(hashOf(a.key, mode) == hashOf(b.key, mode))
            }
            // the worker index out of 8 and 13 agrees
            for n in [8, 13] { #expect(bucket(hashOf(a.key), n) == bucket(hashOf(b.key), n)) }
        }
    }

    @Test func icmpErrorFollowsItsFlowThroughTunnels() {
        let flow = decodeFrame(build(Wrapping.all[4].wrap(inner4, false)))
        let error = decodeFrame(build(Wrapping.all[5].wrap([.ipv4(src: "198.51.100.1", dst: Addr.c4), .icmpUnreachable(quoteLimit: 28)] + inner4, true)))
        #expect(hashOf(flow.key) == hashOf(error.key))
    }

    @Test func outerHashingWouldSplitTheFlow() {
        // what an outer-header hash (AF_PACKET fan-out, NIC RSS, netmap lb) sees
        let a = decodeFrame(build(Wrapping.all[4].wrap(inner4, false)), config: DecodeConfig(tunnelPorts: []))
        let b = decodeFrame(build(Wrapping.all[4].wrap(inner4, true)), config: DecodeConfig(tunnelPorts: []))
        #expect(hashOf(a.key) != hashOf(b.key))
    }

    @Test func synthesizedTrafficKeepsEveryFlowOnOneWorker() {
        let dec = Decoder()
        var cfg = SynthConfig(seed: 11, flows: 120, packets: 4000)
        cfg.shares.vxlan = 0.3
        cfg.shares.geneve = 0.2
        let packets = TrafficSynth.generate(cfg)
        var workerOfFlow: [FlowTuple: Int] = [:]
        var checked = 0
        for p in packets {
            let d = decodeFrame(p.bytes, decoder: dec)
            #expect(d.error == .none)
            #expect(d.encap == p.encap)
            guard !p.isFragment || p.firstFragment else { continue }   // the fragment table's job
            #expect(FlowTuple(d.key) == p.flow, "\(p.flow) decoded as \(FlowTuple(d.key))")
            let w = bucket(hashOf(d.key), 13)
            if let prev = workerOfFlow[p.flow] { #expect(prev == w) } else { workerOfFlow[p.flow] = w }
            checked += 1
        }
        #expect(checked > packets.count / 2)
        #expect(workerOfFlow.count > 100)
    }
}
