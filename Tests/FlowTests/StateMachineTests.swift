import LBFlow
import LBGen
import Testing

/// Connection tracking in-process: Zeek's conn_state, history, byte and packet counts, flips,
/// timeouts and gaps for hand-built exchanges.
@Suite("Flow state machine")
struct StateMachineTests {
    @Test("a complete TCP connection is SF with Zeek's history and sizes from sequence numbers")
    func completeConnection() {
        var c = Conversation()
        c.handshake()
        c.dataFromClient(100)
        c.ackFromServer()
        c.dataFromServer(300)
        c.ackFromClient()
        c.close()
        let (recs, table) = track(c.frames)
        #expect(recs.count == 1)
        let r = recs[0]
        #expect(r.connState == "SF")
        #expect(r.history.string == "ShADadFf")
        #expect(r.origBytes == 100)
        #expect(r.respBytes == 300)
        #expect(r.origPkts == 6)
        #expect(r.respPkts == 5)
        #expect(r.origIPBytes == 6 * 40 + 100)
        #expect(r.respIPBytes == 5 * 40 + 300)
        #expect(r.origP == 40000 && r.respP == 8080)
        #expect(r.missedBytes == 0)
        // duration stops at the last packet before both sides closed: the final ACK is not in it
        let first = c.frames[0].timestampNanos, lastFin = c.frames[c.frames.count - 2].timestampNanos
        #expect(r.duration == lastFin - first)
        #expect(table.loss.gaps == 0)
        #expect(table.loss.acks > 0)
    }

    @Test("an unanswered SYN is S0; a SYN answered by RST is REJ")
    func attemptAndReject() {
        var a = Conversation()
        a.syn()
        #expect(track(a.frames).records.map { "\($0.connState) \($0.history.string)" } == ["S0 S"])
        var b = Conversation()
        b.syn()
        b.rstFromServer()
        #expect(track(b.frames).records.map { "\($0.connState) \($0.history.string)" } == ["REJ Sr"])
    }

    @Test("a connection first seen at its SYN-ACK is flipped once an ACK follows")
    func synAckFirst() {
        var c = Conversation(sport: 9999)          // not a likely server port
        c.cseq &+= 1
        c.synAck()
        c.ackFromClient()
        c.dataFromClient(10)
        let r = track(c.frames).records
        #expect(r.count == 1)
        #expect(r[0].origH == IPAddr(v4: c.client.value))
        #expect(r[0].history.string.hasPrefix("^h"))
        #expect(r[0].origPkts == 2 && r[0].respPkts == 1)
    }

    @Test("midstream data from a likely server port is oriented towards the server")
    func likelyServerPort() {
        var c = Conversation(sport: 80)
        c.dataFromServer(50)
        let r = track(c.frames).records
        #expect(r.count == 1)
        #expect(r[0].respP == 80)
        #expect(r[0].history.string == "^d")
        #expect(r[0].connState == "OTH")
        var none = FlowConfig()
        none.likelyServerPorts = LikelyServerPorts()
        let r2 = track(c.frames, config: none).records
        #expect(r2[0].origP == 80 && r2[0].history.string == "D")
    }

    @Test("UDP request/response is SF Dd; a reply alone from port 53 is SHR ^d")
    func udp() {
        var c = Conversation(sport: 53)
        c.udp(fromClient: true, payload: 30)
        c.udp(fromClient: false, payload: 90)
        let r = track(c.frames).records
        #expect(r.map { "\($0.connState) \($0.history.string) \($0.origBytes) \($0.respBytes)" } == ["SF Dd 30 90"])
        var d = Conversation(sport: 53)
        d.udp(fromClient: false, payload: 90)
        #expect(track(d.frames).records.map { "\($0.connState) \($0.history.string) \($0.respPkts)" } == ["SHR ^d 1"])
    }

    @Test("ICMP echo: one pseudo-connection, ports are type and counterpart, bytes are ICMP payload")
    func icmpEcho() {
        var c = Conversation()
        c.ping(reply: false)
        c.ping(reply: true)
        let r = track(c.frames).records
        #expect(r.count == 1)
        #expect(r[0].transport == .icmp && r[0].origP == 8 && r[0].respP == 0)
        #expect(r[0].origBytes == 56 && r[0].respBytes == 56)
        #expect(r[0].origIPBytes == 84 && r[0].connState == "OTH")
    }

    @Test("UDP inactivity: packets 61 s apart make two connections, 59 s apart one")
    func inactivity() {
        var c = Conversation(sport: 5000)
        c.udp(fromClient: true, payload: 10)
        c.add("u", c.frames[0].bytes, gapMicros: 61_000_000)
        #expect(track(c.frames).records.count == 2)
        var d = Conversation(sport: 5000)
        d.udp(fromClient: true, payload: 10)
        d.add("u", d.frames[0].bytes, gapMicros: 59_000_000)
        #expect(track(d.frames).records.count == 1)
    }

    @Test("a missing data segment shows as a content gap when it is acknowledged")
    func gap() {
        var c = Conversation()
        c.handshake()
        c.dataFromClient(100)
        c.ackFromServer()
        c.dataFromClient(200)            // dropped below
        c.dataFromClient(100)
        c.ackFromServer()
        c.close()
        var frames = c.frames
        frames.remove(at: 5)
        let (r, table) = track(frames)
        #expect(r.count == 1)
        #expect(r[0].missedBytes == 200)
        #expect(r[0].history.string.contains("G"))
        #expect(r[0].origBytes == 400)
        #expect(table.loss.gaps == 1)
        #expect(table.loss.acks == 2)
    }

    @Test("tcp_attempt_delay: an unanswered SYN's connection ends after 5 s; a later retransmission starts another")
    func attemptTimer() {
        var c = Conversation()
        c.syn()
        let syn = c.frames[0]
        let frames = [syn, (syn.timestampNanos + 3_000_000_000, syn.bytes), (syn.timestampNanos + 9_000_000_000, syn.bytes)]
        let r = track(frames).records.sorted { $0.ts < $1.ts }
        #expect(r.map(\.origPkts) == [2, 1])
        #expect(r.allSatisfy { $0.connState == "S0" && $0.history.string == "S" })
    }

    @Test("a reused port after a close starts a new connection")
    func reuse() {
        var c = Conversation()
        c.handshake()
        c.close()
        c.cseq &+= 100_000
        c.add("x", [], gapMicros: 10_000_000)
        c.frames.removeLast(); c.labels.removeLast()
        c.handshake()
        let r = track(c.frames).records
        #expect(r.count == 2)
    }

    @Test("a packet older than the first (misordered trace) leaves duration unset, as in Zeek")
    func misordered() {
        var c = Conversation(sport: 5000)
        c.udp(fromClient: true, payload: 10)
        c.udp(fromClient: false, payload: 10)
        c.frames[1].timestampNanos = c.frames[0].timestampNanos - 1_000_000
        let r = track(c.frames).records
        #expect(r.count == 1 && r[0].duration == nil && r[0].origPkts == 1 && r[0].respPkts == 1)
    }

    @Test("a bad TCP checksum is counted in the history, not in the packets")
    func badChecksum() {
        var c = Conversation()
        c.syn()
        var f = c.frames[0]
        f.bytes[f.bytes.count - 20 + 16] ^= 0xFF     // TCP checksum
        let r = track([f]).records
        #expect(r.count == 1)
        #expect(r[0].history.string == "C" && r[0].origPkts == 0)
        var ignore = FlowConfig()
        ignore.ignoreChecksums = true
        #expect(track([f], config: ignore).records[0].history.string == "S")
    }

    @Test("IP fragments are reassembled: one packet of the datagram's length, as Zeek counts it",
          arguments: [false, true])
    func fragments(v6: Bool) {
        let udp: [Layer] = [.udp(sport: 5000, dport: 5001), .filler(3000)]
        let frames: [[UInt8]]
        if v6 {
            let datagram = PacketBuilder.build([.ipv6(src: "2001:db8::1", dst: "2001:db8::2")] + udp)
            frames = Fragmenter.ipv6(datagram, size: 1200, id: 77, order: .reversed).map { PacketBuilder.build(.ethernet(), .ip($0)) }
        } else {
            let datagram = PacketBuilder.build([.ipv4(src: "10.0.0.1", dst: "10.0.0.2", id: 99)] + udp)
            frames = Fragmenter.ipv4(datagram, size: 1200, order: .reversed).map { PacketBuilder.build(.ethernet(), .ip($0)) }
        }
        #expect(frames.count == 3)
        var t: UInt64 = 1_700_000_000_000_000_000
        let (recs, table) = track(frames.map { t += 1000; return (t, $0) })
        #expect(recs.count == 1)
        #expect(recs.first?.origPkts == 1)
        #expect(recs.first?.origIPBytes == UInt64(3008 + (v6 ? 40 : 20)))
        #expect(recs.first?.history.string == "D")
        #expect(table.stats.fragments == 3 && table.stats.reassembled == 1)
        // a datagram missing a fragment is never analysed
        let (none, _) = track(Array(frames.dropFirst()).map { t += 1000; return (t, $0) })
        #expect(none.isEmpty)
    }

    @Test("malformed packets are counted drops, never crashes")
    func malformed() {
        var rng = SeededRNG(seed: 42)
        var table = ConnTable(seed: 1)
        var c = Conversation()
        c.handshake()
        c.dataFromClient(100)
        let base = c.frames.map(\.bytes)
        for i in 0..<20_000 {
            var b = base[i % base.count]
            let cut = Int(rng.next() % UInt64(b.count + 1))
            b = Array(b.prefix(cut))
            for _ in 0..<3 where !b.isEmpty { b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            b.withUnsafeBytes { table.process($0, l3: 14, wireLength: Int(rng.next() % 2000), ts: UInt64(i) * 1000) }
        }
        table.flushAll()
        let s = table.stats
        #expect(s.packets == 20_000)
        // every packet is tracked or counted under exactly one reason
        #expect(s.tracked + s.notIP + s.truncated + s.badHeader + s.badIPChecksum + s.fragments + s.otherProtocol + s.tableFull == 20_000)
        #expect(s.truncated > 0)
    }

    @Test("conn.log TSV and JSON carry Zeek's columns")
    func formats() throws {
        var c = Conversation()
        c.handshake()
        c.close()
        let r = track(c.frames).records[0]
        #expect(ConnLog.fields.count == ConnLog.types.count)
        #expect(r.uid.string.hasPrefix("C") && r.uid.string.count > 10)
        #expect(String(decoding: Fmt.seconds(1_500_000_000_123_456_789), as: UTF8.self) == "1500000000.123457")
        #expect(String(decoding: Fmt.double(10), as: UTF8.self) == "10.0")
        #expect(String(decoding: Fmt.double(33.3333333), as: UTF8.self) == "33.333333")
        #expect(String(decoding: Fmt.addr(IPAddr(v4: 0x0A00_0001)), as: UTF8.self) == "10.0.0.1")
        #expect(String(decoding: Fmt.addr(IPAddr(hi: 0x2001_0db8_0000_0000, lo: 1)), as: UTF8.self) == "2001:db8::1")
    }
}
