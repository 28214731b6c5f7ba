import LBFlow
import LBGen
import Testing

/// Content gaps (`missed_bytes`, history `g`/`G`) appear only where Zeek finds them: an ACK for
/// bytes never seen. Each case here is a transfer Zeek sees complete, so Zeek writes
/// missed_bytes 0 and no gap letter (TCP_Reassembler::Undelivered, DataBlockList::Trim).
@Suite("Content gaps")
struct ContentGapTests {
    /// A bulk transfer from the client, acknowledged every `ackEvery` segments.
    static func bulk(_ c: inout Conversation, segments: Int, size: Int = 1448, ackEvery: Int = 2) {
        c.handshake()
        for i in 1...segments {
            c.dataFromClient(size)
            if i % ackEvery == 0 { c.ackFromServer() }
        }
        c.ackFromServer()
        c.close()
    }

    static func clean(_ r: ConnRecord) -> Bool {
        r.missedBytes == 0 && !r.history.string.contains("g") && !r.history.string.contains("G") && r.connState == "SF"
    }

    /// Cause found (zeek btest core.tunnels.geneve-47101: a 14196-byte GENEVE packet, missed_bytes
    /// 14080 here, 0 in Zeek): lb stores at most --slot-size bytes (9216 here; 65535 by default
    /// now, which covers GRO/TSO segments, but a smaller slot must still work) of a packet and marks
    /// it LB_F_TRUNCATED; flowlog took the cut payload for a snaplen-truncated one, did not
    /// reassemble it, and the ACK revealed a gap. The capture holds the packet whole, so Zeek
    /// reassembles it.
    @Test("a segment longer than lb's slot size (a GRO/TSO capture) is no gap: plain, in GENEVE with options, in VXLAN",
          arguments: ["plain", "geneve", "vxlan"])
    func segmentLongerThanSlot(_ encap: String) throws {
        var c = Conversation(cport: 43000)
        switch encap {
        case "geneve":
            c.outer = [.ethernet(), .ipv4(src: "127.0.0.1", dst: "127.0.0.1"), .udp(sport: 47101, dport: 6081),
                       .geneve(vni: 0x1092, options: [GeneveOption(data: [1, 2, 3, 4, 5, 6, 7, 8])]), .ethernet()]
        case "vxlan":
            c.outer = [.ethernet(), .ipv4(src: "192.168.0.1", dst: "192.168.0.2"), .udp(sport: 50001, dport: 4789),
                       .vxlan(vni: 7), .ethernet()]
        default: break
        }
        c.handshake()
        c.dataFromClient(517)
        c.ackFromServer()
        c.dataFromClient(14080)          // 14 KB in one captured segment, longer than the 9216-byte slot
        c.ackFromServer()
        c.dataFromClient(4358)
        c.ackFromServer()
        c.close()
        #expect(c.frames.contains { $0.bytes.count > 9216 })
        let (records, _) = try flowlogThroughLB("gap-slot-" + encap, c.frames, lbArgs: ["--slot-size", "9216"])
        #expect(records.count == 1)
        guard let r = records.first else { return }
        #expect(r["missed_bytes"] == "0", "\(connRow(r))")
        #expect(r["history"] == "ShADaFf", "\(connRow(r))")
        #expect(r["orig_bytes"] == "\(517 + 14080 + 4358)")
        #expect(r["conn_state"] == "SF")
    }

    /// Measured, not a cause: sequence numbers that wrap past 2^32 in either direction, with
    /// the SYN on the last sequence number, the first data byte on 0, or a segment across the
    /// wrap; Zeek's relative numbering (get_relative_seq, ToRelativeSeqSpace) covers them.
    @Test("sequence numbers wrapping past 2^32 (client or server side, at the SYN or inside a segment) leave no gap",
          arguments: [UInt32(0xFFFF_FFFF), UInt32(0xFFFF_FFFE), UInt32(0xFFFF_FFFF - 1000), UInt32(0xFFFF_FFFF - 1448), UInt32(0xFFFF_0000)] as [UInt32])
    func sequenceWrap(_ isn: UInt32) {
        var client = Conversation()
        client.cseq = isn
        Self.bulk(&client, segments: 60)
        let rc = track(client.frames).records
        #expect(rc.count == 1 && Self.clean(rc[0]) && rc[0].origBytes == 60 * 1448,
                "\(rc.map { "\($0.history.string) \($0.missedBytes) \($0.origBytes)" })")
        var server = Conversation()
        server.sseq = isn
        server.handshake()
        for _ in 0..<60 { server.dataFromServer(1448); server.ackFromClient() }
        server.close()
        let rs = track(server.frames).records
        #expect(rs.count == 1 && Self.clean(rs[0]) && rs[0].respBytes == 60 * 1448,
                "\(rs.map { "\($0.history.string) \($0.missedBytes) \($0.respBytes)" })")
    }

    /// Measured, not a cause: a scaled window with 45 segments (65 KB) in flight between ACKs,
    /// retransmissions overlapping acknowledged data, out-of-order segments and seven holes
    /// filled late.
    @Test("window scaling, overlapping retransmissions, reordering and many holes leave no gap")
    func retransmissionAndReordering() {
        var ws = Conversation()
        ws.synOptions = [1, 3, 3, 7]
        Self.bulk(&ws, segments: 200, ackEvery: 45)
        // three segments, an ACK into the middle of the second, then the rest resent as one
        var rx = Conversation()
        rx.handshake()
        let b = rx.cseq
        for _ in 0..<3 { rx.dataFromClient(1000) }
        rx.add("a", rx.tcpFrame(fromClient: false, flags: .ack, seq: rx.sseq, ack: b &+ 1500, payload: 0))
        rx.add("D", rx.tcpFrame(fromClient: true, flags: .ack, seq: b &+ 1000, ack: rx.sseq, payload: 2000))
        rx.ackFromServer()
        rx.close()
        // segments 0, 2, 4, ... 12 first, then 1, 3, ... 11
        var holes = Conversation()
        holes.handshake()
        let h = holes.cseq
        for k in [0, 2, 4, 6, 8, 10, 12, 1, 3, 5, 7, 9, 11] {
            holes.add("D", holes.tcpFrame(fromClient: true, flags: .ack, seq: h &+ UInt32(k * 1000), ack: holes.sseq, payload: 1000))
        }
        holes.cseq = h &+ 13000
        holes.ackFromServer()
        holes.close()
        for (name, c, bytes) in [("wscale", ws, 200 * 1448), ("rxmt", rx, 3000), ("holes", holes, 13000)] {
            let r = track(c.frames).records
            #expect(r.count == 1 && Self.clean(r[0]) && r[0].origBytes == UInt64(bytes),
                    "\(name): \(r.map { "\($0.history.string) \($0.missedBytes) \($0.origBytes)" })")
        }
    }

    /// Measured, not a cause: inner frames padded to Ethernet's 60 bytes or followed by 4
    /// trailing bytes, GENEVE with options or carrying IPv4 directly, outer padding.
    @Test("padded and variously encapsulated tunnel frames leave no gap", arguments: [0, 1, 2, 3])
    func tunnelFraming(_ variant: Int) throws {
        var c = Conversation(cport: UInt16(43100 + variant))
        Self.bulk(&c, segments: 30)
        let oe: Layer = .ethernet(), o4: Layer = .ipv4(src: "192.168.0.1", dst: "192.168.0.2")
        let frames = c.frames.map { f -> (timestampNanos: UInt64, bytes: [UInt8]) in
            var inner = f.bytes
            let out: [UInt8]
            switch variant {
            case 0:
                while inner.count < 60 { inner.append(0) }
                out = PacketBuilder.build(oe, o4, .udp(sport: 50000, dport: 6081),
                                          .geneve(vni: 1, options: [GeneveOption(data: Array(repeating: 9, count: 12))]), .payload(inner))
            case 1:
                out = PacketBuilder.build(oe, o4, .udp(sport: 50000, dport: 6081), .geneve(vni: 1, proto: 0x0800), .payload(Array(inner[14...])))
            case 2:
                inner += [0xDE, 0xAD, 0xBE, 0xEF]
                out = PacketBuilder.build(oe, o4, .udp(sport: 50001, dport: 4789), .vxlan(vni: 1), .payload(inner))
            default:
                out = PacketBuilder.build(oe, o4, .udp(sport: 50000, dport: 6081), .geneve(vni: 1), .payload(inner)) + [0, 0, 0, 0]
            }
            return (f.timestampNanos, out)
        }
        let (records, _) = try flowlogThroughLB("gap-tunnel-\(variant)", frames)
        #expect(records.map(connRow) == ["10.0.0.1 \(43100 + variant) 10.0.0.2 8080 tcp 0.051000 43440 0 SF 0 ShADaFf 34 44800 19 760 6"])
    }

    /// A transfer of 5 GiB (sequence numbers wrap twice; the ISN is close to 2^32, so the first
    /// wrap comes before 2^31 bytes, where Zeek's relative numbering would underflow):
    /// 65000-byte segments, each acknowledged, built in place and fed to the table directly.
    @Test("a 5 GiB transfer whose sequence numbers wrap twice: no gap, exact size")
    func fiveGiB() {
        var config = FlowConfig()
        config.ignoreChecksums = true
        var table = ConnTable(config: config, seed: 1)
        var c = Conversation()
        c.cseq = 0xF000_0000
        c.handshake()
        var ts = c.ts
        func feed(_ bytes: [UInt8]) {
            ts += 10_000
            bytes.withUnsafeBytes { table.process($0, l3: 14, wireLength: $0.count, ts: ts) }
        }
        for f in c.frames { feed(f.bytes) }
        let segment = 65000
        var data = c.tcpFrame(fromClient: true, flags: .ack, seq: 0, ack: c.sseq, payload: segment)
        var ack = c.tcpFrame(fromClient: false, flags: .ack, seq: c.sseq, ack: 0, payload: 0)
        func put(_ v: UInt32, _ b: inout [UInt8], at o: Int) {
            b[o] = UInt8(v >> 24); b[o + 1] = UInt8(v >> 16 & 0xFF); b[o + 2] = UInt8(v >> 8 & 0xFF); b[o + 3] = UInt8(v & 0xFF)
        }
        let segments = (5 << 30) / segment
        for _ in 0..<segments {
            put(c.cseq, &data, at: 14 + 20 + 4)
            feed(data)
            c.cseq &+= UInt32(segment)
            put(c.cseq, &ack, at: 14 + 20 + 8)
            feed(ack)
        }
        c.frames = []
        c.close()
        for f in c.frames { feed(f.bytes) }
        table.flushAll()
        let r = table.finished
        #expect(r.count == 1)
        #expect(r.first?.origBytes == UInt64(segments * segment))
        #expect(r.first.map(Self.clean) == true, "\(r.map { "\($0.connState) \($0.history.string) \($0.missedBytes)" })")
        // every ACK advances, but the first: the 65000-byte first segment is more than
        // tcp_max_initial_window with no data acknowledged, so it was trimmed at once
        #expect(table.loss.gaps == 0 && table.loss.acks == UInt64(segments - 1), "\(table.loss.acks) acks")
    }
}
