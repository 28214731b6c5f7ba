import LBCore
import Testing

/// `udp::` strings: Zeek's examples parse to what Zeek means; Zeek's error cases are refused.
@Suite struct UDPGrammarTests {
    @Test(arguments: [
        ("udp::127.0.0.1:4789", "127.0.0.1", false, 4789, DatagramEncap.vxlan, UInt32(1)),
        ("udp::0.0.0.0:4789:vxlan", "0.0.0.0", false, 4789, .vxlan, 1),
        ("udp::[::1]:6081:geneve:dlt=raw", "::1", true, 6081, .geneve, 101),
        ("udp::0.0.0.0:6081:geneve+vxlan", "0.0.0.0", false, 6081, .geneveVXLAN, 1),
        ("udp::0.0.0.0:10000:raw", "0.0.0.0", false, 10000, .skip(0), 1),
        ("udp::[::]:4242:skip=16:dlt=raw", "::", true, 4242, .skip(16), 101),
        ("udp::[::]:4789:vxlan", "::", true, 4789, .vxlan, 1),
        ("udp::10.1.2.3:65535:dlt=ppp:skip=4", "10.1.2.3", false, 65535, .skip(4), 9),
        ("udp::[fe80::1:2]:1:geneve", "fe80::1:2", true, 1, .geneve, 1),
        ("udp::[2001:db8::192.0.2.1]:4789", "2001:db8::192.0.2.1", true, 4789, .vxlan, 1),
    ])
    func parses(_ text: String, _ address: String, _ v6: Bool, _ port: Int, _ encap: DatagramEncap, _ link: UInt32) throws {
        let s = try DatagramSpec.parse(text)
        #expect(s.address == address)
        #expect(s.isIPv6 == v6)
        #expect(s.addressBytes.count == (v6 ? 16 : 4))
        #expect(Int(s.port) == port)
        #expect(s.encap == encap)
        #expect(s.linkType == link)
        // the canonical form parses back to the same spec
        #expect(try DatagramSpec.parse(s.description) == s)
    }

    @Test func addressBytes() throws {
        #expect(try DatagramSpec.parse("udp::192.0.2.7:1").addressBytes == [192, 0, 2, 7])
        #expect(try DatagramSpec.parse("udp::[2001:db8::1]:1").addressBytes
                == [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        #expect(try DatagramSpec.parse("udp::[::ffff:10.0.0.1]:1").addressBytes
                == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1])
    }

    @Test(arguments: [
        ("udp::0.0.0.0:4789:vxlan:geneve", "encapsulation already set"),
        ("udp::0.0.0.0:4789:skip=1:skip=2", "encapsulation already set"),
        ("udp::0.0.0.0:4789:raw:dlt=raw:dlt=ppp", "dlt already set"),
        ("udp::0.0.0.0:0", "invalid port"),
        ("udp::0.0.0.0:-1", "invalid port"),
        ("udp::0.0.0.0:65536", "invalid port"),
        ("udp::0.0.0.0", "missing port"),
        ("udp::0.0.0.0:", "invalid port"),
        ("udp::1.2.3:4789", "invalid IPv4"),
        ("udp::256.1.1.1:4789", "invalid IPv4"),
        ("udp::localhost:4789", "invalid IPv4"),
        ("udp::::1:4789", "invalid IPv4"),
        ("udp::[::1::2]:4789", "invalid IPv6"),
        ("udp::[12345::]:4789", "invalid IPv6"),
        ("udp::[1:2:3:4:5:6:7:8:9]:4789", "invalid IPv6"),
        ("udp::[::1:4789", "missing ]"),
        ("udp::[::1]4789", "missing port"),
        ("udp::0.0.0.0:4789:VXLAN", "invalid option"),
        ("udp::0.0.0.0:4789:skip=", "invalid option"),
        ("udp::0.0.0.0:4789:skip=x", "invalid option"),
        ("udp::0.0.0.0:4789:dlt=en10MB", "invalid option"),
        ("udp::0.0.0.0:4789:vxlan:dlt=raw", "Ethernet"),
        ("udp:0.0.0.0:4789", "starts with udp::"),
    ])
    func refuses(_ text: String, _ why: String) {
        do {
            let s = try DatagramSpec.parse(text)
            Issue.record("\(text) parsed as \(s)")
        } catch {
            #expect(error.description.contains(why), "\(text): \(error)")
        }
    }
}
