import LBFlow
import LBGen
import Testing

/// Orientation of connections seen without their SYN, by Zeek's rules: TCPAnalyzer::
/// WantConnection (likely_server_ports, at the first packet), TCP_Endpoint::CheckHistory (a
/// connection begun by a SYN-ACK flips at its first 'A' or 'D', history "^h"), and the endpoint
/// states that follow from UpdateInactiveState.
@Suite("Orientation")
struct OrientationTests {
    static func row(_ r: ConnRecord) -> String {
        "\(r.origP)>\(r.respP) \(r.connState) \(r.history.string) \(r.origPkts)/\(r.respPkts) \(r.origBytes)/\(r.respBytes) missed=\(r.missedBytes)"
    }

    @Test("SYN-ACK first from a port that is not a likely server port: flipped at the ACK, then Zeek's states and timeout")
    func synAckFirst() {
        var c = Conversation(sport: 9999)
        c.cseq &+= 1                    // the SYN was sent, not seen
        c.synAck()                      // server -> client: the connection's originator for now
        c.ackFromClient()               // 'A' while the history is "H": flip, history "^h" + 'A'
        c.dataFromClient(10)
        // two minutes of silence: the client went from inactive to partial while the server was
        // in SYN-ACK-sent (a handshake state), so tcp_inactivity_timeout (5 min) applies
        c.add("-", c.tcpFrame(fromClient: false, flags: [.ack, .psh], seq: c.sseq, ack: c.cseq, payload: 20),
              gapMicros: 120_000_000)
        c.sseq &+= 20
        c.ackFromClient()
        let r = track(c.frames).records
        // client PARTIAL, server still SYN_ACK_SENT: OTH; sizes from sequence numbers; no gaps
        // (neither side cleanly established)
        #expect(r.map(Self.row) == ["40000>9999 OTH ^hADd 3/2 10/20 missed=0"])
        #expect(r.first?.origH == IPAddr(v4: c.client.value))
    }

    /// The SYN-ACK comes from the responder (flipped at creation): the server is established at
    /// once (UpdateInactiveState: a responder's SYN-ACK), the client's ACK then establishes the
    /// client: S1.
    @Test("SYN-ACK first from a likely server port: flipped at once (^h), not again at the ACK")
    func synAckFromServerPort() {
        var c = Conversation(sport: 80)
        c.cseq &+= 1
        c.synAck()
        c.ackFromClient()
        c.dataFromClient(10)
        let r = track(c.frames).records
        #expect(r.map(Self.row) == ["40000>80 S1 ^hAD 2/1 10/0 missed=0"])
    }

    @Test("midstream between two likely server ports: flipped only towards the lower port")
    func bothLikely() {
        // first packet 443 -> 80 (both likely, source higher): kept
        var a = Conversation(cport: 443, sport: 80)
        a.dataFromClient(100)
        a.ackFromServer()
        #expect(track(a.frames).records.map(Self.row) == ["443>80 OTH Da 1/1 100/0 missed=0"])
        // first packet 80 -> 443: flipped
        var b = Conversation(cport: 80, sport: 443)
        b.dataFromClient(100)
        b.ackFromServer()
        #expect(track(b.frames).records.map(Self.row) == ["443>80 OTH ^dA 1/1 0/100 missed=0"])
    }

    @Test("a SYN-ACK answered by a RST (a stealth scan) is never flipped")
    func synAckThenReset() {
        var c = Conversation(sport: 9999)
        c.cseq &+= 1
        c.synAck()
        c.add("R", c.tcpFrame(fromClient: true, flags: .rst, seq: c.cseq, ack: 0, payload: 0))
        let r = track(c.frames).records
        #expect(r.first?.origP == 9999 && r.first?.history.string == "Hr")
    }

    @Test("likely_server_ports: Zeek's registered server ports; the packet-analysis tunnel ports even with none")
    func likelyServerPorts() throws {
        let std = LikelyServerPorts.standard
        for p: UInt16 in [79, 465, 514, 1883, 80, 443, 22] { #expect(std.tcp.contains(p), "\(p)/tcp") }
        for p: UInt16 in [4011, 67, 4754, 4789, 6081, 53] { #expect(std.udp.contains(p), "\(p)/udp") }
        // pop3 has DPD signatures only; 68/udp is DHCP's client port; DNS over QUIC is not added
        #expect(!std.tcp.contains(110) && !std.udp.contains(68) && !std.udp.contains(853))
        let none = try LikelyServerPorts(parsing: "none")
        #expect(none.tcp.isEmpty && none.udp == [4789, 6081, 4754, 3544, 5072, 2152, 2123])
        let http = try LikelyServerPorts(parsing: "http")
        #expect(http.tcp.contains(8080) && http.udp.contains(4789) && !http.tcp.contains(22))
    }
}
