import CLBXdp
@testable import LBBroker
import Testing

/// The warning lb gives when a multi-queue NIC spreads UDP over its queues by ports.
@Suite struct RSSAdviceTests {
    @Test func warnsWithTheFixForEachFamilyHashedOnPorts() throws {
        let both = try #require(AFXDPIngress.rssAdvice(iface: "eth1", udp4: 1, udp6: 1))
        #expect(both.contains("ethtool -N eth1 rx-flow-hash udp4 sd"))
        #expect(both.contains("ethtool -N eth1 rx-flow-hash udp6 sd"))
        let v6 = try #require(AFXDPIngress.rssAdvice(iface: "eth1", udp4: 0, udp6: 1))
        #expect(!v6.contains("udp4"))
        #expect(v6.contains("fragments"))
    }

    @Test func saysNothingWhenAddressesOnlyOrUnknown() {
        #expect(AFXDPIngress.rssAdvice(iface: "eth1", udp4: 0, udp6: 0) == nil)
        #expect(AFXDPIngress.rssAdvice(iface: "veth0", udp4: -95, udp6: -95) == nil)   // EOPNOTSUPP
    }

    /// The ioctl itself: loopback has no RSS, and the driver says so (an error, not a guess).
    @Test func loopbackHasNoRSSHash() {
        #expect(lbx_udp_rss_uses_ports("lo", 0) < 0)
        #expect(lbx_udp_rss_uses_ports("no-such-if0", 0) < 0)
    }
}
