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
            AMSDUSubframe(packet: Self.udp("10.0.0.1", 5000, "10.0.0.2", 7000, payload: 20)),
            AMSDUSubframe(packet: Self.udp("10.0.0.1", 5000, "10.0.0.2", 7000, payload: 30)),
            AMSDUSubframe(packet: Self.udp("10.0.0.3", 6000, "10.0.0.4", 7000, payload: 10)),
        ])])
        let reply = PacketBuilder.build(outer + [.amsdu([AMSDUSubframe(da: .a, sa: .b, packet: Self.udp("10.0.0.2", 7000, "10.0.0.1", 5000, payload: 50))])])
        let run = try ThroughLB.run([(Self.t0, first), (Self.t0 + 10_000_000, reply)], workers: 3, tag: "amsdu")
        #expect(run.rows(Self.fields) == [
            "10.0.0.1 5000 10.0.0.2 7000 udp 0.010000 50 50 SF Dd 2 106 1 78",
            "10.0.0.3 6000 10.0.0.4 7000 udp - - - S0 D 1 38 0 0",
        ], "\(run.rows(Self.fields).joined(separator: "\n"))")
        #expect(run.stat("amsdu_subframes") == 2)        // subframes after the first of each frame
    }
}

/// Every link layer Zeek decodes, and every layer-2 encapsulation, carrying the same TCP and
/// UDP exchanges: flowlog behind lb logs exactly the connections the exchanges make (written
/// below from TCP's and UDP's rules), whatever carries them.
@Suite struct LinkTypeFlowTests {
    static let fields = LinkLayerFlowTests.fields

    /// A TCP connection (handshake, 100 bytes each way... then close) and a UDP exchange, 1 ms apart.
    static func exchanges() -> [(timestampNanos: UInt64, bytes: [UInt8])] {
        var c = Conversation(client: "10.0.0.1", server: "10.0.0.2", cport: 40000, sport: 8080)
        c.handshake()
        c.dataFromClient(100)
        c.dataFromServer(200)
        c.close()
        var u = Conversation(client: "10.0.0.3", server: "10.0.0.4", cport: 6000, sport: 7777, ts: c.ts)
        u.udp(fromClient: true, payload: 30)
        u.udp(fromClient: false, payload: 60)
        return c.frames + u.frames
    }

    /// TCP: S h A D d F a f A, 1 ms apart — orig 5 packets (40+40+140+40+40 IP bytes), resp 4
    /// (40+240+40+40); the duration ends at the second FIN (7 ms): Zeek moves a connection's
    /// last time only while one side has not closed (TCPSessionAdapter::DeliverPacket).
    /// UDP: one datagram each way (28 + payload IP bytes).
    static let expected = [
        "10.0.0.1 40000 10.0.0.2 8080 tcp 0.007000 100 200 SF ShADdFaf 5 300 4 360",
        "10.0.0.3 6000 10.0.0.4 7777 udp 0.001000 30 60 SF Dd 1 58 1 88",
    ]

    @Test(arguments: LinkFraming.allCases)
    func linkTypes(_ link: LinkFraming) throws {
        let frames = Self.exchanges().map { ($0.timestampNanos, link.frame(fromEthernet: $0.bytes)!) }
        let run = try ThroughLB.run(frames, linkType: link.linkType, workers: 3, tag: "link-" + link.rawValue)
        #expect(run.rows(Self.fields) == Self.expected, "\(link): \(run.rows(Self.fields))")
        #expect(run.stat("non_ip_packets") == 0 && run.stat("packets_unparsed") == 0)
    }

    /// PPP without the address and control bytes, and with a compressed protocol field.
    @Test(arguments: [(false, false), (false, true)])
    func pppVariants(addressControl: Bool, compressed: Bool) throws {
        let frames = Self.exchanges().map { f in
            (f.timestampNanos, PacketBuilder.build(.ppp(addressControl: addressControl, compressed: compressed), .ip(Array(f.bytes[14...]))))
        }
        let run = try ThroughLB.run(frames, linkType: 9, workers: 2, tag: "ppp-variant")
        #expect(run.rows(Self.fields) == Self.expected, "\(run.rows(Self.fields))")
    }

    @Test(arguments: EthernetEncap.allCases)
    func encapsulations(_ encap: EthernetEncap) throws {
        let frames = Self.exchanges().map { ($0.timestampNanos, encap.frame($0.bytes)) }
        let run = try ThroughLB.run(frames, workers: 3, tag: "encap-" + encap.rawValue)
        #expect(run.rows(Self.fields) == Self.expected, "\(encap): \(run.rows(Self.fields))")
        #expect(run.stat("non_ip_packets") == 0)
    }
}
