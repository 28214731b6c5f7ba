import LBCore

// A deterministic generator of realistic traffic for benchmarks, demos and tests: TCP sessions
// with correct sequence numbers, DNS-like UDP exchanges, ICMP echo, IPv6, fragmented UDP
// datagrams, and a share of flows mirrored in VXLAN or GENEVE the way cloud mirroring sends
// them (each direction of one inner flow in its own outer UDP flow). Every packet carries its
// ground truth: the inner flow it belongs to.

/// What to generate.
public struct SynthConfig: Sendable {
    public enum Mode: Sendable {
        /// flows of every kind, by `shares`
        case mixed
        /// minimum-size (60 bytes + FCS = 64) Ethernet/IPv4/UDP frames of `flows` distinct flows
        case udp64
        /// the mix, every flow wrapped in VXLAN (AWS traffic mirroring)
        case vxlanOnly
        /// TCP flows where 2% of them (at least one) carry 90% of the packets, in full-size
        /// segments: the backups and downloads that shunting is for
        case elephants
    }

    /// Sizes of data-carrying frames (inner Ethernet frame, without FCS).
    public enum SizeDistribution: Sendable {
        case fixed(Int)
        case uniform(ClosedRange<Int>)
        /// simple IMIX: 60, 590 and 1514 bytes in the ratio 7:4:1
        case imix
    }

    /// Relative weights of the flow kinds and the shares of IPv6 and tunnelled flows.
    public struct Shares: Sendable {
        public var tcp = 0.6
        public var udp = 0.2
        public var icmp = 0.1
        public var fragmentedUDP = 0.1
        /// fraction of flows over IPv6
        public var ipv6 = 0.25
        /// fraction of flows mirrored in VXLAN, and in GENEVE
        public var vxlan = 0.15
        public var geneve = 0.1
        public init() {}
    }

    public var seed: UInt64 = 1
    public var flows = 100
    /// packets in total (exactly)
    public var packets = 2000
    public var mode: Mode = .mixed
    public var shares = Shares()
    public var sizes: SizeDistribution = .imix
    /// timestamp of the first packet
    public var startNanos: UInt64 = 1_700_000_000_000_000_000
    /// mean gap between two packets of one flow
    public var meanGapNanos: UInt64 = 200_000
    /// flows start spread over this interval (nil: 20 µs per packet)
    public var spreadNanos: UInt64? = nil

    public init(seed: UInt64 = 1, flows: Int = 100, packets: Int = 2000, mode: Mode = .mixed) {
        self.seed = seed; self.flows = flows; self.packets = packets; self.mode = mode
    }
}

/// The kind of an inner flow.
public enum SynthFlowKind: Sendable {
    case tcp, udp, icmp, fragmentedUDP
}

/// One generated frame (Ethernet) with its ground truth.
public struct SynthPacket: Sendable {
    public var timestampNanos: UInt64
    public var bytes: [UInt8]
    /// the inner flow (ports 0 for ICMP)
    public var flow: FlowTuple
    /// index of the flow, in 0..<flows
    public var flowIndex: Int
    public var kind: SynthFlowKind
    /// the tunnel around the packet (.none, .vxlan or .geneve)
    public var encap: EncapKind
    /// the inner packet is an IP fragment; `firstFragment` when its offset is 0
    public var isFragment: Bool
    public var firstFragment: Bool
    /// sent by the flow's client (the side that started it)
    public var fromClient: Bool
}

extension Array where Element == SynthPacket {
    /// The frames with their timestamps, as `Pcap.file` takes them.
    public var trace: [(timestampNanos: UInt64, bytes: [UInt8])] { map { ($0.timestampNanos, $0.bytes) } }
}

public enum TrafficSynth {
    /// Generates `config.packets` frames in increasing timestamp order.
    public static func generate(_ config: SynthConfig) -> [SynthPacket] {
        var rng = SeededRNG(seed: config.seed)
        let total = max(0, config.packets)
        guard total > 0 else { return [] }
        if config.mode == .udp64 { return udp64(config, total: total, rng: &rng) }

        let flowCount = max(1, min(config.flows, total))
        var config = config
        if config.mode == .elephants {
            config.shares.tcp = 1; config.shares.udp = 0; config.shares.icmp = 0; config.shares.fragmentedUDP = 0
        }
        let budgets = config.mode == .elephants ? elephantBudget(total, into: flowCount, rng: &rng)
                                                : splitBudget(total, into: flowCount, rng: &rng)
        let spread = config.spreadNanos ?? UInt64(total) * 20_000
        var out: [SynthPacket] = []
        out.reserveCapacity(total)
        for i in 0..<flowCount {
            let flow = FlowPlan(index: i, config: config, rng: &rng)
            let start = spread > 0 ? UInt64.random(in: 0..<spread, using: &rng) : 0
            flow.emit(budget: budgets[i], start: config.startNanos &+ start, rng: &rng, into: &out)
        }
        // Merge by time (stable, so a flow's own order survives equal times), then make the
        // timestamps strictly increasing.
        let order = out.indices.sorted { (out[$0].timestampNanos, $0) < (out[$1].timestampNanos, $1) }
        var merged = order.map { out[$0] }
        for i in merged.indices.dropFirst() where merged[i].timestampNanos <= merged[i - 1].timestampNanos {
            merged[i].timestampNanos = merged[i - 1].timestampNanos + 1
        }
        return merged
    }

    /// Splits `total` packets over `n` flows: heavy-tailed sizes, each at least 1, summing to total.
    static func splitBudget(_ total: Int, into n: Int, rng: inout SeededRNG) -> [Int] {
        let weights = (0..<n).map { _ in
            let u = Double.random(in: 0.05..<1, using: &rng)
            return 1 / (u * u)              // a Pareto-like tail: a few big flows, many small ones
        }
        let sum = weights.reduce(0, +)
        let spare = total - n
        var budgets = weights.map { 1 + Int(Double(spare) * $0 / sum) }
        var left = total - budgets.reduce(0, +)
        var i = 0
        while left > 0 { budgets[i % n] += 1; left -= 1; i += 1 }
        return budgets
    }

    /// 90% of the packets over the first 2% of the flows (at least one), the rest over the
    /// others, at least one each.
    static func elephantBudget(_ total: Int, into n: Int, rng: inout SeededRNG) -> [Int] {
        let big = max(1, n * 2 / 100)
        let small = n - big
        let smallTotal = small == 0 ? 0 : max(small, total / 10)
        let bigTotal = total - smallTotal
        var budgets = (0..<big).map { k in bigTotal / big + (k < bigTotal % big ? 1 : 0) }
        if small > 0 {
            var rest = splitBudget(smallTotal, into: small, rng: &rng)
            rest.shuffle(using: &rng)
            budgets += rest
        }
        return budgets
    }

    static func udp64(_ config: SynthConfig, total: Int, rng: inout SeededRNG) -> [SynthPacket] {
        let n = max(1, min(config.flows, total))
        struct F { var src: IPv4; var dst: IPv4; var sport: UInt16; var dport: UInt16; var forward = true }
        var flows = (0..<n).map { _ in
            F(src: IPv4(0x0A00_0000 | UInt32.random(in: 1..<0x00FF_FFFF, using: &rng)),
              dst: IPv4(0xC0A8_0000 | UInt32.random(in: 1..<0xFFFF, using: &rng)),
              sport: UInt16.random(in: 1024...65535, using: &rng), dport: UInt16.random(in: 1...65535, using: &rng))
        }
        let gap = max(1, config.meanGapNanos / 1000)
        var out: [SynthPacket] = []
        out.reserveCapacity(total)
        for i in 0..<total {
            let fi = i % n
            let f = flows[fi]
            flows[fi].forward.toggle()
            let (s, d, sp, dp) = f.forward ? (f.src, f.dst, f.sport, f.dport) : (f.dst, f.src, f.dport, f.sport)
            let bytes = PacketBuilder.build(.ethernet(dst: hostMAC(.v4(d)), src: hostMAC(.v4(s))),
                                            .ipv4(src: s, dst: d, id: UInt16(truncatingIfNeeded: i)),
                                            .udp(sport: sp, dport: dp), .filler(18))
            out.append(SynthPacket(timestampNanos: config.startNanos &+ UInt64(i) &* gap, bytes: bytes,
                                   flow: FlowTuple(src: .v4(f.src), sport: f.sport, dst: .v4(f.dst), dport: f.dport, proto: 17),
                                   flowIndex: fi, kind: .udp, encap: .none, isFragment: false, firstFragment: false,
                                   fromClient: f.forward))
        }
        return out
    }

    static func hostMAC(_ a: IPAddress) -> MAC {
        let h = a.keyHalves
        return MAC(0x0200_0000_0000 | (h.lo ^ h.hi ^ (h.lo >> 32)) & 0xFFFF_FFFF)
    }
}

/// One flow: its endpoints, its kind and its tunnel, and the packets it sends.
struct FlowPlan {
    let index: Int
    let kind: SynthFlowKind
    let client: IPAddress
    let server: IPAddress
    let cport: UInt16
    let sport: UInt16
    let encap: EncapKind
    /// outer endpoints of the mirror session: source, target, a source port per direction, VNI
    let outerSrc: IPv4
    let outerDst: IPv4
    let outerPortC: UInt16
    let outerPortS: UInt16
    let vni: UInt32
    let config: SynthConfig

    init(index: Int, config: SynthConfig, rng: inout SeededRNG) {
        self.index = index
        self.config = config
        let s = config.shares
        let weights = [s.tcp, s.udp, s.icmp, s.fragmentedUDP].map { max(0, $0) }
        var pick = Double.random(in: 0..<max(1e-9, weights.reduce(0, +)), using: &rng)
        var k = 0
        while k < 3 && pick >= weights[k] { pick -= weights[k]; k += 1 }
        kind = [SynthFlowKind.tcp, .udp, .icmp, .fragmentedUDP][k]
        let v6 = rng.chance(s.ipv6)
        if v6 {
            client = .v6(IPv6(hi: 0x2001_0DB8_0000_0000 | UInt64.random(in: 0...0xFFFF, using: &rng) << 16,
                              lo: rng.next()))
            server = .v6(IPv6(hi: 0x2001_0DB8_FFFF_0000 | UInt64.random(in: 0...0xFF, using: &rng), lo: rng.next()))
        } else {
            client = .v4(IPv4(0x0A00_0000 | UInt32.random(in: 1..<0x00FF_FFFF, using: &rng)))
            server = .v4(IPv4(0xC0A8_0000 | UInt32.random(in: 1..<0xFFFF, using: &rng)))
        }
        cport = UInt16.random(in: 32768...60999, using: &rng)
        switch kind {
        case .tcp: sport = [80, 443, 22, 25, 8080, 3306][Int.random(in: 0..<6, using: &rng)]
        case .udp: sport = rng.chance(0.8) ? 53 : 123
        case .icmp: sport = 0
        case .fragmentedUDP: sport = [2049, 5353, 5001][Int.random(in: 0..<3, using: &rng)]
        }
        if config.mode == .vxlanOnly {
            encap = .vxlan
        } else {
            let u = Double.random(in: 0..<1, using: &rng)
            encap = u < s.vxlan ? .vxlan : u < s.vxlan + s.geneve ? .geneve : .none
        }
        outerSrc = IPv4(0xAC1F_0000 | UInt32.random(in: 0x100..<0xFF00, using: &rng))
        outerDst = "172.31.0.10"
        outerPortC = UInt16.random(in: 32768...60999, using: &rng)
        var ps = UInt16.random(in: 32768...60999, using: &rng)
        if ps == outerPortC { ps &+= 1 }
        outerPortS = ps
        vni = UInt32.random(in: 1...0xFFFFFF, using: &rng)
    }

    var proto: UInt8 {
        switch kind {
        case .tcp: 6
        case .udp, .fragmentedUDP: 17
        case .icmp: client.isIPv6 ? 58 : 1
        }
    }

    var truth: FlowTuple {
        FlowTuple(src: client, sport: kind == .icmp ? 0 : cport, dst: server, dport: kind == .icmp ? 0 : sport, proto: proto)
    }

    func frameSize(_ rng: inout SeededRNG) -> Int {
        switch config.sizes {
        case .fixed(let n): return n
        case .uniform(let r): return Int.random(in: r, using: &rng)
        case .imix:
            let u = Int.random(in: 0..<12, using: &rng)
            return u < 7 ? 60 : u < 11 ? 590 : 1514
        }
    }

    /// Payload bytes for a frame of the drawn size, given the headers in front of it.
    func payloadSize(headers: Int, max maxPayload: Int, _ rng: inout SeededRNG) -> Int {
        min(maxPayload, max(1, frameSize(&rng) - 14 - headers))
    }

    var ipHeader: Int { client.isIPv6 ? 40 : 20 }

    /// The IP header layer for a packet from the client (or the server).
    func ip(fromClient: Bool, id: UInt16) -> Layer {
        let (s, d) = fromClient ? (client, server) : (server, client)
        switch (s, d) {
        case (.v4(let a), .v4(let b)): return .ipv4(src: a, dst: b, id: id, ttl: fromClient ? 64 : 58, df: kind == .tcp)
        case (.v6(let a), .v6(let b)): return .ipv6(src: a, dst: b, hopLimit: fromClient ? 64 : 58)
        default: preconditionFailure("mixed address families")
        }
    }

    /// Wraps an inner IP packet (bytes from the IP header on) in Ethernet and the flow's tunnel.
    func frame(ipPacket: [UInt8], fromClient: Bool) -> [UInt8] {
        let (s, d) = fromClient ? (client, server) : (server, client)
        let inner = PacketBuilder.build(.ethernet(dst: TrafficSynth.hostMAC(d), src: TrafficSynth.hostMAC(s)), .ip(ipPacket))
        switch encap {
        case .vxlan, .geneve:
            let tunnel: Layer = encap == .vxlan ? .vxlan(vni: vni) : .geneve(vni: vni)
            return PacketBuilder.build(
                .ethernet(dst: "02:aa:00:00:00:01", src: "02:aa:00:00:00:02"),
                .ipv4(src: outerSrc, dst: outerDst, id: UInt16(truncatingIfNeeded: index), ttl: 255),
                .udp(sport: fromClient ? outerPortC : outerPortS, dport: encap == .vxlan ? 4789 : 6081, checksum: false),
                tunnel, .payload(inner))
        default:
            return inner
        }
    }

    func emit(budget: Int, start: UInt64, rng: inout SeededRNG, into out: inout [SynthPacket]) {
        var t = start
        var id = UInt16.random(in: 0...UInt16.max, using: &rng)
        let truth = self.truth
        func push(_ ip: [UInt8], fromClient: Bool, fragment: Bool = false, first: Bool = false, rng: inout SeededRNG) {
            out.append(SynthPacket(timestampNanos: t, bytes: frame(ipPacket: ip, fromClient: fromClient), flow: truth,
                                   flowIndex: index, kind: kind, encap: encap, isFragment: fragment,
                                   firstFragment: fragment && first, fromClient: fromClient))
            let mean = max(2, config.meanGapNanos)
            t &+= UInt64.random(in: 1...(2 * mean), using: &rng)
            id &+= 1
        }
        switch kind {
        case .tcp: tcp(budget, push: push, id: { id }, rng: &rng)
        case .udp:
            for i in 0..<budget {
                let c = i % 2 == 0
                let n = c ? Int.random(in: 28...60, using: &rng) : payloadSize(headers: ipHeader + 8, max: 1200, &rng)
                push(PacketBuilder.build(ip(fromClient: c, id: id), .udp(sport: c ? cport : sport, dport: c ? sport : cport),
                                         .filler(n)), fromClient: c, rng: &rng)
            }
        case .icmp:
            let echoID = UInt16.random(in: 1...UInt16.max, using: &rng)
            for i in 0..<budget {
                let c = i % 2 == 0
                let seq = UInt16(truncatingIfNeeded: i / 2 + 1)
                let echo: Layer = client.isIPv6 ? .icmp6Echo(id: echoID, seq: seq, reply: !c) : .icmpEcho(id: echoID, seq: seq, reply: !c)
                push(PacketBuilder.build(ip(fromClient: c, id: id), echo, .filler(56)), fromClient: c, rng: &rng)
            }
        case .fragmentedUDP:
            var left = budget
            var v6id = UInt32.random(in: 1...UInt32.max, using: &rng)
            while left > 0 {
                if left == 1 {                      // a small reply, not fragmented
                    push(PacketBuilder.build(ip(fromClient: false, id: id), .udp(sport: sport, dport: cport), .filler(40)),
                         fromClient: false, rng: &rng)
                    left -= 1
                    continue
                }
                let pieces = min(left, Int.random(in: 2...4, using: &rng))
                let fragSize = client.isIPv6 ? 1232 : 1480
                let dgram = PacketBuilder.build(ip(fromClient: true, id: id), .udp(sport: cport, dport: sport),
                                                .filler(fragSize * (pieces - 1) + Int.random(in: 1...fragSize - 8, using: &rng)))
                v6id &+= 1
                let order: FragmentOrder = rng.chance(0.25) ? .reversed : .inOrder
                let frags = client.isIPv6
                    ? Fragmenter.ipv6(dgram, size: fragSize, id: v6id, order: order)
                    : Fragmenter.ipv4(dgram, size: fragSize, order: order)
                for f in frags {
                    let first = client.isIPv6 ? fragmentOffset6(f) == 0 : f[6] & 0x1F == 0 && f[7] == 0
                    push(f, fromClient: true, fragment: true, first: first, rng: &rng)
                }
                left -= frags.count
            }
        }
    }

    private func fragmentOffset6(_ p: [UInt8]) -> Int {
        // the generator puts the fragment header right after the IPv6 header
        Int(p[42]) << 8 | Int(p[43] & 0xF8)
    }

    /// A TCP session: handshake, data both ways with correct sequence numbers, FIN/ACK close.
    /// With a budget under 6 it is cut short after the first `budget` packets.
    func tcp(_ budget: Int, push: (_ ip: [UInt8], _ fromClient: Bool, _ fragment: Bool, _ first: Bool, _ rng: inout SeededRNG) -> Void,
             id: () -> UInt16, rng: inout SeededRNG) {
        var cseq = UInt32.random(in: 0...UInt32.max, using: &rng)
        var sseq = UInt32.random(in: 0...UInt32.max, using: &rng)
        let mss = client.isIPv6 ? 1440 : 1460
        var sent = 0
        func seg(_ c: Bool, _ flags: TCPFlags, _ len: Int, _ rng: inout SeededRNG) {
            guard sent < budget else { return }
            let ip = ip(fromClient: c, id: id())
            let tcp: Layer = c
                ? .tcp(sport: cport, dport: sport, seq: cseq, ack: flags.contains(.ack) ? sseq : 0, flags: flags, window: 64240)
                : .tcp(sport: sport, dport: cport, seq: sseq, ack: flags.contains(.ack) ? cseq : 0, flags: flags, window: 65160)
            push(PacketBuilder.build(ip, tcp, .filler(len)), c, false, false, &rng)
            let adv = UInt32(len) &+ (flags.contains(.syn) || flags.contains(.fin) ? 1 : 0)
            if c { cseq &+= adv } else { sseq &+= adv }
            sent += 1
        }
        seg(true, .syn, 0, &rng)
        seg(false, [.syn, .ack], 0, &rng)
        seg(true, .ack, 0, &rng)
        let data = max(0, budget - 6)
        for i in 0..<data {
            let c = i == 0 || rng.chance(0.3)
            seg(c, [.psh, .ack], payloadSize(headers: ipHeader + 20, max: mss, &rng), &rng)
        }
        seg(true, [.fin, .ack], 0, &rng)
        seg(false, [.fin, .ack], 0, &rng)
        seg(true, .ack, 0, &rng)
    }
}
