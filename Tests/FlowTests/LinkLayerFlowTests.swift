import Foundation
import LBCore
import LBGen
import Testing

/// What Zeek logs for traffic inside link layers and encapsulations lb removes: the same
/// connections as for the plain packets. Expected lines are written from the protocols (UDP
/// sizes from the datagrams, Zeek's UDP states), never from flowlog's output.
@Suite struct LinkLayerFlowTests {
    static let fields = ["id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "duration", "orig_bytes", "resp_bytes",
                         "conn_state", "history", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes"]
    static let t0: UInt64 = 1_700_000_000_000_000_000

    static func udp(_ s: IPv4, _ sp: UInt16, _ d: IPv4, _ dp: UInt16, payload: Int) -> [UInt8] {
        PacketBuilder.build(.ipv4(src: s, dst: d), .udp(sport: sp, dport: dp), .filler(payload))
    }

    /// 802.11 A-MSDU inside Aruba's GRE: each subframe is a packet of its own, as Zeek's
    /// IEEE802_11 analyzer makes it. Two subframes of one flow and one of another in the first
    /// frame; the reply 10 ms later in a second frame.
    @Test func amsduSubframesInArubaGRE() throws {
        let outer: [Layer] = [.ethernet(), .ipv4(src: "192.0.2.1", dst: "192.0.2.2", proto: 47), .gre(proto: 0x8240), .wifiData()]
        let first = PacketBuilder.build(outer + [.amsdu([
            AMSDUSubframe(packet: Self.udp("10.0.0.1", 5000, "10.0.0.2", 53, payload: 20)),
            AMSDUSubframe(packet: Self.udp("10.0.0.1", 5000, "10.0.0.2", 53, payload: 30)),
            AMSDUSubframe(packet: Self.udp("10.0.0.3", 6000, "10.0.0.4", 53, payload: 10)),
        ])])
        let reply = PacketBuilder.build(outer + [.amsdu([AMSDUSubframe(da: .a, sa: .b, packet: Self.udp("10.0.0.2", 53, "10.0.0.1", 5000, payload: 50))])])
        let run = try ThroughLB.run([(Self.t0, first), (Self.t0 + 10_000_000, reply)], workers: 3, tag: "amsdu")
        #expect(run.rows(Self.fields) == [
            "10.0.0.1 5000 10.0.0.2 53 udp 0.010000 50 50 SF Dd 2 106 1 78",
            "10.0.0.3 6000 10.0.0.4 53 udp - - - S0 D 1 38 0 0",
        ], "\(run.rows(Self.fields).joined(separator: "\n"))")
        #expect(run.stat("amsdu_subframes") == 2)        // subframes after the first of each frame
    }
}
