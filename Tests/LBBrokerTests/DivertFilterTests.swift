import LBBroker
import Testing

@Suite struct DivertFilterTests {
    typealias R = DivertFilter.Rule

    @Test func cloudMirroringTargets() throws {
        #expect(try DivertFilter("udp dst port 4789").rules == [R(proto: 17, dport: 4789)])
        #expect(try DivertFilter("udp dst port 4789 or udp dst port 6081").rules == [R(proto: 17, dport: 4789), R(proto: 17, dport: 6081)])
        #expect(try DivertFilter("UDP DST PORT 4789 || gre").rules == [R(proto: 17, dport: 4789), R(proto: 47, dport: 0)])
    }

    @Test func protocolsAndPorts() throws {
        #expect(try DivertFilter("proto 47").rules == [R(proto: 47, dport: 0)])
        #expect(try DivertFilter("ip proto 50").rules == [R(proto: 50, dport: 0)])
        #expect(try DivertFilter("ip proto gre").rules == [R(proto: 47, dport: 0)])
        #expect(try DivertFilter("tcp").rules == [R(proto: 6, dport: 0)])
        #expect(try DivertFilter("dst port 53").rules == [R(proto: 0, dport: 53)])
        #expect(try DivertFilter("sctp dst port 2905").rules == [R(proto: 132, dport: 2905)])
    }

    @Test func refusedWithAReason() {
        for bad in ["", "udp port 4789", "udp src port 1", "udp dst port 0", "udp dst port 70000", "udp dst", "icmp dst port 5",
                    "proto", "proto banana", "udp or", "udp and tcp", "host 10.0.0.1",
                    Array(repeating: "tcp", count: 17).joined(separator: " or ")] {
            #expect(throws: BrokerError.self, "\(bad)") { try DivertFilter(bad) }
        }
    }
}
