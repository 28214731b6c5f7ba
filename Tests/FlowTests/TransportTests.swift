import Foundation
import LBGen
import Testing

/// Transports other than TCP, UDP, ICMP and IGMP (which Zeek's own IGMP packet analyzer takes,
/// without a connection): Zeek's Unknown_IP_Transport analyzer logs each as a
/// connection keyed on the two addresses and the protocol (ports 0, proto `unknown_transport`,
/// `ip_proto` the number), oriented by its first packet, timed out after
/// unknown_ip_inactivity_timeout (1 min), conn_state OTH, no history, no payload sizes (0 when
/// the connection lasted, unset when it did not), packets and IP bytes counted both ways.
@Suite struct TransportTests {
    static let fields = ["id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "duration", "orig_bytes", "resp_bytes",
                         "conn_state", "history", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes", "ip_proto"]

    @Test func otherTransportsAreConnections() throws {
        var frames: [(timestampNanos: UInt64, bytes: [UInt8])] = []
        var t: UInt64 = 1_700_000_000_000_000_000
        func add(_ layers: [Layer], after ms: UInt64 = 10) { t += ms * 1_000_000; frames.append((t, PacketBuilder.build(layers))) }
        func ip(_ s: IPv4, _ d: IPv4, _ proto: UInt8, payload: Int) -> [Layer] {
            [.ethernet(), .ipv4(src: s, dst: d, proto: proto), .filler(payload)]
        }
        // SCTP: 3 packets each way (ports in the header; Zeek keys on addresses only)
        for i in 0..<3 {
            add([.ethernet(), .ipv4(src: "10.1.0.1", dst: "10.1.0.2"), .sctp(sport: 2905, dport: 2906 + UInt16(i)), .filler(20)])
            add([.ethernet(), .ipv4(src: "10.1.0.2", dst: "10.1.0.1"), .sctp(sport: 2906, dport: 2905), .filler(60)])
        }
        add(ip("10.2.0.1", "224.0.0.5", 89, payload: 44))           // OSPF hello, twice, 10 s apart
        add(ip("10.2.0.1", "224.0.0.5", 89, payload: 44), after: 10_000)
        add(ip("10.3.0.1", "224.0.0.18", 112, payload: 20))         // VRRP, once
        add(ip("10.4.0.1", "224.0.0.22", 2, payload: 16))           // IGMP, once
        add(ip("10.5.0.1", "224.0.0.13", 103, payload: 30))         // PIM, then again 61 s later:
        add(ip("10.5.0.1", "224.0.0.13", 103, payload: 30), after: 61_000)   // past the 1 min timeout, a new connection
        let run = try ThroughLB.run(frames, workers: 3, tag: "transports")
        let want = [
            "10.1.0.1 0 10.1.0.2 0 unknown_transport 0.050000 0 0 OTH - 3 156 3 276 132",
            "10.2.0.1 0 224.0.0.5 0 unknown_transport 10.000000 0 0 OTH - 2 128 0 0 89",
            "10.3.0.1 0 224.0.0.18 0 unknown_transport - - - OTH - 1 40 0 0 112",
            "10.5.0.1 0 224.0.0.13 0 unknown_transport - - - OTH - 1 50 0 0 103",
            "10.5.0.1 0 224.0.0.13 0 unknown_transport - - - OTH - 1 50 0 0 103",
        ].sorted()
        #expect(run.rows(Self.fields) == want, "\(run.rows(Self.fields).joined(separator: "\n"))")
    }
}
