import Foundation
import LBCore
import LBGen
import Testing

/// No false content gaps: a complete TCP transfer, however long and however carried, has
/// missed_bytes 0 and no gap letter in its history (flowlog's gaps feed the capture loss the
/// workers report to lb, so a false gap is a false alarm). Each case is one suspected cause.
@Suite struct GapTests {
    static let fields = ["id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "orig_bytes", "resp_bytes",
                         "conn_state", "history", "missed_bytes", "orig_pkts", "resp_pkts"]

    enum Carrier { case plain, vxlan, geneve, geneveOptions, vlanPadded }

    /// A transfer of `segments` segments of `size` bytes from client to server, acked every
    /// second segment, the client's sequence numbers starting at `isn`; optional window scaling
    /// and retransmissions that overlap acknowledged data.
    static func transfer(segments: Int, size: Int, isn: UInt32, wscale: Bool = false, overlaps: Bool = false,
                         carrier: Carrier = .plain, cport: UInt16 = 40000) -> [(timestampNanos: UInt64, bytes: [UInt8])] {
        var frames: [(timestampNanos: UInt64, bytes: [UInt8])] = []
        var t: UInt64 = 1_700_000_000_000_000_000
        let c: IPv4 = "10.0.0.1", s: IPv4 = "10.0.0.2"
        func wrap(_ inner: [Layer]) -> [UInt8] {
            let outer: [Layer] = [.ethernet(), .ipv4(src: "192.0.2.1", dst: "192.0.2.2")]
            switch carrier {
            case .plain: return PacketBuilder.build([.ethernet()] + inner)
            case .vlanPadded: return PacketBuilder.build([.ethernet(), .vlan(id: 5)] + inner)
            case .vxlan: return PacketBuilder.build(outer + [.udp(sport: 50000, dport: 4789), .vxlan(vni: 9), .ethernet()] + inner)
            case .geneve: return PacketBuilder.build(outer + [.udp(sport: 50000, dport: 6081), .geneve(vni: 9), .ethernet()] + inner)
            case .geneveOptions:
                return PacketBuilder.build(outer + [.udp(sport: 50000, dport: 6081), .geneve(vni: 9, options: [GeneveOption(data: [1, 2, 3, 4, 5, 6, 7, 8]), GeneveOption(optionClass: 0x0108, type: 1, data: [9, 9, 9, 9])]), .ethernet()] + inner)
            }
        }
        func seg(_ fromClient: Bool, _ flags: TCPFlags, seq: UInt32, ack: UInt32, payload: Int, options: [UInt8] = []) {
            t += 100_000
            var l: [Layer] = [.ipv4(src: fromClient ? c : s, dst: fromClient ? s : c),
                              .tcp(sport: fromClient ? cport : 80, dport: fromClient ? 80 : cport, seq: seq, ack: ack, flags: flags,
                                   window: wscale ? 512 : 65535, options: options)]
            if payload > 0 { l.append(.filler(payload)) }
            frames.append((t, wrap(l)))
        }
        let ws: [UInt8] = wscale ? [1, 3, 3, 7] : []
        var cs = isn, ss: UInt32 = 77
        seg(true, .syn, seq: cs, ack: 0, payload: 0, options: ws); cs &+= 1
        seg(false, [.syn, .ack], seq: ss, ack: cs, payload: 0, options: ws); ss &+= 1
        seg(true, .ack, seq: cs, ack: ss, payload: 0)
        for i in 0..<segments {
            seg(true, [.psh, .ack], seq: cs, ack: ss, payload: size)
            cs &+= UInt32(size)
            if overlaps && i % 10 == 9 {
                // retransmit the last segment and a bit before it: already acked data overlaps
                seg(true, [.psh, .ack], seq: cs &- UInt32(size) &- 100, ack: ss, payload: size + 100)
            }
            if i % 2 == 1 { seg(false, .ack, seq: ss, ack: cs, payload: 0) }
        }
        seg(true, [.fin, .ack], seq: cs, ack: ss, payload: 0); cs &+= 1
        seg(false, [.fin, .ack], seq: ss, ack: cs, payload: 0); ss &+= 1
        seg(true, .ack, seq: cs, ack: ss, payload: 0)
        return frames
    }

    func check(_ frames: [(timestampNanos: UInt64, bytes: [UInt8])], bytes: Int, tag: String) throws -> [String] {
        let run = try ThroughLB.run(frames, workers: 2, tag: tag)
        return run.rows(Self.fields)
    }

    @Test(arguments: [(UInt32(1000), "plain"), (UInt32.max - 500_000, "wrap")])
    func longTransfer(isn: UInt32, tag: String) throws {
        let n = 3000, size = 1460
        let rows = try check(Self.transfer(segments: n, size: size, isn: isn), bytes: n * size, tag: "long-" + tag)
        #expect(rows == ["10.0.0.1 40000 10.0.0.2 80 tcp \(n * size) 0 SF ShADaFf 0 \(n + 4) \(n / 2 + 2)"], "\(rows)")
    }

    /// Window scaling (both sides offer shift 7, windows of 512 << 7) and retransmissions
    /// that overlap data already acknowledged.
    @Test(arguments: [(true, false), (false, true), (true, true)])
    func scaledWindowsAndOverlaps(wscale: Bool, overlaps: Bool) throws {
        let n = 2000, size = 1000
        let rows = try check(Self.transfer(segments: n, size: size, isn: 4_000_000_000, wscale: wscale, overlaps: overlaps),
                             bytes: n * size, tag: "scaled")
        let retransmits = overlaps ? n / 10 : 0
        // a retransmission is history 'T' (Zeek's HIST_RXMIT), scaled: again at 10 and 100
        let history = overlaps ? "ShADaTTTFf" : "ShADaFf"
        #expect(rows == ["10.0.0.1 40000 10.0.0.2 80 tcp \(n * size) 0 SF \(history) 0 \(n + 4 + retransmits) \(n / 2 + 2)"], "\(rows)")
    }

    /// Segments larger than lb's default slot: a capture taken on a host with GRO/TSO holds
    /// packets of up to 64 kB, which Zeek reads whole.
    @Test func offloadSizedSegments() throws {
        let n = 200, size = 60_000
        let rows = try check(Self.transfer(segments: n, size: size, isn: 5), bytes: n * size, tag: "gro")
        #expect(rows == ["10.0.0.1 40000 10.0.0.2 80 tcp \(n * size) 0 SF ShADaFf 0 \(n + 4) \(n / 2 + 2)"], "\(rows)")
    }

    /// The same transfer inside the tunnels lb removes, and behind a VLAN tag.
    @Test(arguments: [Carrier.vxlan, .geneve, .geneveOptions, .vlanPadded])
    func carriedTransfer(carrier: Carrier) throws {
        let n = 1000, size = 1400
        let rows = try check(Self.transfer(segments: n, size: size, isn: 1, carrier: carrier), bytes: n * size, tag: "carried")
        #expect(rows == ["10.0.0.1 40000 10.0.0.2 80 tcp \(n * size) 0 SF ShADaFf 0 \(n + 4) \(n / 2 + 2)"], "\(rows)")
    }
}
