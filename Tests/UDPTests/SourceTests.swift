import Glibc
import LBBroker
import LBCore
import LBGen
import LBSys
import LBTestSupport
import Testing

/// UDPSource in this process, on loopback: what it hands the dispatcher decodes and hashes
/// exactly like the same packet read from a capture, and every drop is counted.
@Suite(.serialized) struct UDPSourceTests {
    final class Opened {
        var source: UDPSource
        let stats: UDPStats
        let frames = UnsafeMutablePointer<Frame>.allocate(capacity: 64)
        let spec: DatagramSpec
        init(_ text: String, rcvbuf: Int = 1 << 20, maxDatagram: Int = UDPSource.maxPayload) throws {
            var spec = try DatagramSpec.parse(text)
            spec.port = 0     // any free port
            stats = UDPStats(top: 10)
            self.spec = spec
            source = try UDPSource(spec, rcvbuf: rcvbuf, reusePort: false, batch: 64, tunnelPorts: DecodeConfig.defaultTunnelPorts,
                                   stats: stats, maxDatagram: maxDatagram, log: { _ in })
        }
        deinit { frames.deallocate() }

        /// The decoder lb would use: the listening port carries the tunnel (as `lb run` sets up).
        var decoder: Decoder {
            var ports = DecodeConfig.defaultTunnelPorts
            if let k = spec.encap.tunnelKind { ports.append(TunnelPort(source.port, k)) }
            return Decoder(DecodeConfig(tunnelPorts: ports))
        }

        /// Receives until `count` frames came or 2 s passed; gives copies of them.
        func receive(_ count: Int) -> [(bytes: [UInt8], link: UInt32, ts: UInt64)] {
            var out: [(bytes: [UInt8], link: UInt32, ts: UInt64)] = []
            let deadline = Sys.monoNanos() + 2_000_000_000
            while out.count < count && Sys.monoNanos() < deadline {
                let n = source.receive(into: frames, max: 64)
                for i in 0..<n { out.append((Array(frames[i].bytes), frames[i].linkType, frames[i].timestampNanos)) }
            }
            return out
        }
    }

    static func vxlanFrames() throws -> [CapturedFrame] {
        try ["vxlan.pcap", "vxlan-encapsulated-http.pcap"].flatMap { try readCapture(Paths.corpus + "/traces/tunnels/" + $0) }
    }

    /// Corpus VXLAN frames, their UDP payloads sent as datagrams: same inner packet, same hash,
    /// same VNI as the pcap path; the tunnel endpoints are the datagram's.
    @Test(arguments: ["127.0.0.1", "::1"])
    func sameHashAsThePcapPath(_ address: String) throws {
        let o = try Opened(address.contains(":") ? "udp::[\(address)]:1:vxlan" : "udp::\(address):1:vxlan")
        let frames = try Self.vxlanFrames()
        #expect(frames.count >= 20)
        let sender = try DatagramSender(to: address, port: o.source.port)
        for f in frames {
            guard let u = udpPayload(f.bytes), u.dport == 4789 else { throw TestFailure("not a VXLAN frame in the corpus trace") }
            try sender.send(u.payload)
        }
        let got = o.receive(frames.count)
        #expect(got.count == frames.count)
        let decoder = Decoder(DecodeConfig())
        let lbDecoder = o.decoder
        let before = Sys.wallNanos()
        for (f, g) in zip(frames, got) {
            let a = f.bytes.withUnsafeBytes { decoder.decode($0, link: .ethernet) }
            let b = g.bytes.withUnsafeBytes { lbDecoder.decode($0, link: LinkType(rawValue: g.link)!) }
            #expect(decoder.flowHash(a) == decoder.flowHash(b))
            #expect(a.key == b.key && a.vni == b.vni && a.encap == .vxlan && b.encap == .vxlan && a.depth == b.depth)
            #expect(a.error == b.error)
            let ia = Array(f.bytes[a.start..<a.end]), ib = Array(g.bytes[b.start..<b.end])
            #expect(ia == ib, "the delivered inner packet differs")
            // the outer flow is the datagram's: loopback to loopback, the sender's port to ours
            #expect(b.outer.sport == sender.port && b.outer.dport == o.source.port && b.outer.proto == 17)
            #expect(b.outer.isIPv6 == address.contains(":"))
            #expect(b.outer.srcLo == b.outer.dstLo && b.outer.srcLo == (address.contains(":") ? 1 : FlowKey.v4Mapped(0x7F00_0001)))
            // a kernel receive timestamp, not the capture's
            #expect(g.ts > before - 10_000_000_000 && g.ts <= Sys.wallNanos())
        }
        #expect(o.stats.get("datagrams") == UInt64(frames.count))
    }

    /// An IPv4 sender reaching a dual-stack [::] socket is an IPv4 outer flow.
    @Test func dualStackSeesIPv4() throws {
        let o = try Opened("udp::[::]:1:vxlan")
        let sender = try DatagramSender(to: "127.0.0.1", port: o.source.port)
        try sender.send(UDPValidationTests.vxlan())
        let got = o.receive(1)
        try #require(got.count == 1)
        let d = got[0].bytes.withUnsafeBytes { o.decoder.decode($0, link: .ethernet) }
        #expect(d.encap == .vxlan && !d.outer.isIPv6)
        #expect(d.outer.srcLo == FlowKey.v4Mapped(0x7F00_0001) && d.outer.dstLo == FlowKey.v4Mapped(0x7F00_0001))
        #expect(d.outer.dport == o.source.port)
    }

    /// Malformed datagrams are counted by reason and never handed on; good ones around them are.
    @Test func malformedAreCountedNotDelivered() throws {
        let o = try Opened("udp::127.0.0.1:1:vxlan", maxDatagram: 2048)
        let sender = try DatagramSender(to: "127.0.0.1", port: o.source.port)
        try sender.send(UDPValidationTests.vxlan(1))
        try sender.send([0x08, 0, 0])                                       // short
        try sender.send(UDPValidationTests.vxlan(2, flags: 0))              // no I flag
        try sender.send(UDPValidationTests.vxlan(3, flags: 0x48))           // reserved bit
        try sender.send([0x08, 0, 0, 0, 0, 0, 5, 0] + [UInt8](repeating: 0, count: 3000))   // too long for a slot
        try sender.send([])                                                 // empty
        try sender.send(UDPValidationTests.vxlan(4))
        let got = o.receive(2)
        #expect(got.count == 2)
        #expect(o.receive(1).isEmpty)
        #expect(o.stats.get("datagrams") == 7)
        #expect(o.stats.get("short") == 2)
        #expect(o.stats.get("vxlan_no_i_flag") == 1)
        #expect(o.stats.get("vxlan_reserved_bits") == 1)
        #expect(o.stats.get("too_long") == 1)
        #expect(o.stats.vnis().map(\.vni).sorted() == [1, 4])
    }

    /// skip=N with dlt=raw: the bytes after N are the packet, of link type raw.
    @Test func skipAndRaw() throws {
        let o = try Opened("udp::127.0.0.1:1:skip=4:dlt=raw")
        let sender = try DatagramSender(to: "127.0.0.1", port: o.source.port)
        let ip = PacketBuilder.build(.ipv4(src: "10.0.0.1", dst: "10.0.0.2"), .udp(sport: 1, dport: 2))
        try sender.send([9, 9, 9, 9] + ip)
        try sender.send([9, 9])
        let got = o.receive(1)
        try #require(got.count == 1)
        #expect(got[0].bytes == ip && got[0].link == 101)
        #expect(o.stats.get("short") == 1)
    }

    /// dlt=ppp: IPv4/IPv6 behind a PPP header (with or without FF 03, compressed or not) are
    /// delivered as raw IP; other PPP protocols are counted (ppp_not_ip).
    @Test func pppAfterSkip() throws {
        let o = try Opened("udp::127.0.0.1:1:skip=2:dlt=ppp")
        let sender = try DatagramSender(to: "127.0.0.1", port: o.source.port)
        let ip4 = PacketBuilder.build(.ipv4(src: "10.0.0.1", dst: "10.0.0.2"), .udp(sport: 1, dport: 2))
        let ip6 = PacketBuilder.build(.ipv6(src: "2001:db8::1", dst: "2001:db8::2"), .udp(sport: 1, dport: 2))
        try sender.send([0, 0, 0xFF, 0x03, 0x00, 0x21] + ip4)
        try sender.send([0, 0, 0x21] + ip4)
        try sender.send([0, 0, 0x00, 0x57] + ip6)
        try sender.send([0, 0, 0xFF, 0x03, 0xC0, 0x21, 1, 1, 0, 4])     // LCP
        try sender.send([0, 0, 0xFF, 0x03])                             // no protocol field
        let got = o.receive(3)
        try #require(got.count == 3)
        #expect(got[0].bytes == ip4 && got[1].bytes == ip4 && got[2].bytes == ip6)
        #expect(got.allSatisfy { $0.link == 101 })
        #expect(o.stats.get("ppp_not_ip") == 2)
        let d = got[2].bytes.withUnsafeBytes { o.decoder.decode($0, link: .raw) }
        #expect(d.error == .none && d.key.proto == 17 && d.synthType == 0x86DD)
    }

    /// A socket buffer too small for a burst: the kernel drops, SO_RXQ_OVFL reports it, and
    /// received + dropped is what was sent.
    @Test func kernelDropsAreCounted() throws {
        let o = try Opened("udp::127.0.0.1:1:vxlan", rcvbuf: 4096)
        let sender = try DatagramSender(to: "127.0.0.1", port: o.source.port)
        let d = UDPValidationTests.vxlan()
        for _ in 0..<500 { try sender.send(d) }
        let got = o.receive(500)
        _ = o.receive(1)      // one more round: the drop count rides on the next datagram's control data
        try sender.send(d)
        let last = o.receive(1)
        let drops = o.stats.get("kernel_drops") ?? 0
        #expect(drops > 0)
        #expect(UInt64(got.count + last.count) + drops == 501)
    }
}
