import LBFlow
import LBGen
import Testing

/// A UDP packet with a bad checksum ends Zeek's UDPAnalyzer::DeliverPacket before it reaches
/// the conn-size analyzer: it adds the history letter C, not a packet nor bytes (zeek btest
/// core.tunnels.vxlan-unknown-internal-packet: `C 0 0 0 0`).
@Suite("UDP checksums")
struct UDPChecksumTests {
    @Test("a bad UDP checksum: history C, no packet counted; a good one after it counts")
    func badChecksum() {
        var c = Conversation(sport: 9000)
        c.udp(fromClient: true, payload: 20)
        c.frames[0].bytes[14 + 20 + 6] ^= 0x5A            // the UDP checksum
        let r = track(c.frames).records
        #expect(r.map { "\($0.history.string) \($0.origPkts) \($0.origIPBytes) \($0.connState)" } == ["C 0 0 OTH"])
        c.udp(fromClient: true, payload: 20)
        let r2 = track(c.frames).records
        #expect(r2.map { "\($0.history.string) \($0.origPkts) \($0.origIPBytes) \($0.origBytes)" } == ["CD 1 48 20"])
    }
}
