import LBFlow
import LBGen
import Testing

/// Zeek's DNS analyzer (loaded with the DNS scripts, attached to UDP connections to 53, 137,
/// 5353, 5355) removes a session that has been idle for dns_session_timeout (10 s) less a 1 s
/// allowance, checked when its timer fires (start + 10 s, then every 10 s from each firing),
/// so a client that reuses its port for a later query starts a new connection.
@Suite struct DNSTimeoutTests {
    static func exchange(at offsets: [Double]) -> [(timestampNanos: UInt64, bytes: [UInt8])] {
        let t0: UInt64 = 1_700_000_000_000_000_000
        return offsets.enumerated().map { i, s in
            let query = i % 2 == 0
            let l: [Layer] = [.ethernet(), .ipv4(src: query ? "10.0.0.1" : "10.0.0.53", dst: query ? "10.0.0.53" : "10.0.0.1"),
                              .udp(sport: query ? 5353 : 53, dport: query ? 53 : 5353), .filler(30)]
            return (t0 + UInt64(s * 1e9), PacketBuilder.build(l))
        }
    }

    static func config(_ services: String) throws -> FlowConfig {
        var c = FlowConfig()
        c.likelyServerPorts = try LikelyServerPorts(parsing: services)
        return c
    }

    @Test func aSilenceSplitsTheSessionWhenDNSIsLoaded() throws {
        // query, answer 0.1 s later, then 16 s of silence, then query and answer again
        let frames = Self.exchange(at: [0, 0.1, 16.1, 16.2])
        let dns = track(frames, config: try Self.config("dns")).records
        #expect(dns.count == 2 && dns.allSatisfy { $0.origPkts == 1 && $0.respPkts == 1 })
        let none = track(frames, config: try Self.config("none")).records
        #expect(none.count == 1 && none[0].origPkts == 2)
        let standard = track(frames, config: FlowConfig()).records
        #expect(standard.count == 2)
    }

    @Test func theTimerLooksAgainFromEachFiring() throws {
        // packets at 0 and 9.5 s; the timer due at 10 s fires with the packet at 15 s (5.5 s
        // idle: kept, next firing at 25 s); at 25 s the session has been idle 10 s: removed,
        // so the packet at 25 s starts a new connection
        let frames = Self.exchange(at: [0, 9.5, 15, 25])
        let r = track(frames, config: try Self.config("dns")).records
        #expect(r.count == 2)
        #expect(r.map { Int($0.origPkts + $0.respPkts) }.sorted() == [1, 3])
    }
}

/// Protocol analyzers Zeek attaches by port that flip a connection (DNS.cc's first_message
/// rule, ntp-analyzer.pac's flipped_ rule), and the order in which Zeek then counts the packet.
@Suite struct AnalyzerFlipTests {
    static let t0: UInt64 = 1_700_000_000_000_000_000

    static func udp(_ s: IPv4, _ sp: UInt16, _ d: IPv4, _ dp: UInt16, _ payload: [UInt8], at: Double) -> (timestampNanos: UInt64, bytes: [UInt8]) {
        (t0 + UInt64(at * 1e9), PacketBuilder.build(.ethernet(), .ipv4(src: s, dst: d), .udp(sport: sp, dport: dp), .payload(payload)))
    }

    /// A DNS header with the QR bit and opcode given, and some question bytes.
    static func dns(response: Bool, opcode: UInt8 = 0) -> [UInt8] {
        [0x12, 0x34, (response ? 0x80 : 0) | opcode << 3, 0, 0, 1, 0, 0, 0, 0, 0, 0] + Array(repeating: 0x61, count: 20)
    }

    @Test func aDNSResponseSeenFirstFlipsBetweenServers() throws {
        var cfg = FlowConfig()
        cfg.likelyServerPorts = try LikelyServerPorts(parsing: "dns")
        // server to server on 53/53 (no port decides): the response comes first, the query 1 s later
        let frames = [Self.udp("10.0.0.1", 53, "10.0.0.2", 53, Self.dns(response: true), at: 0),
                      Self.udp("10.0.0.2", 53, "10.0.0.1", 53, Self.dns(response: false), at: 1)]
        let r = track(frames, config: cfg).records
        try #require(r.count == 1)
        // flipped: the querier 10.0.0.2 is the originator; the flipping packet counts as orig
        #expect(r[0].origH == IPAddr(v4: 0x0A00_0002) && r[0].history.string == "D^")
        #expect(r[0].origPkts == 2 && r[0].respPkts == 0)
        // no flip without the DNS scripts, nor for a query first, nor to a multicast address
        var none = FlowConfig()
        none.likelyServerPorts = try LikelyServerPorts(parsing: "none")
        #expect(track(frames, config: none).records.first?.origH == IPAddr(v4: 0x0A00_0001))
        let mdns = [Self.udp("10.0.0.1", 5353, "224.0.0.251", 5353, Self.dns(response: true), at: 0)]
        #expect(track(mdns, config: cfg).records.first?.origH == IPAddr(v4: 0x0A00_0001))
    }

    /// An opcode the DNS analyzer does not know: weird DNS_unknown_opcode and history X.
    @Test func anUnknownDNSOpcodeMarksTheConnection() throws {
        var cfg = FlowConfig()
        cfg.likelyServerPorts = try LikelyServerPorts(parsing: "dns")
        let r = track([Self.udp("10.0.0.1", 40000, "10.0.0.53", 53, Self.dns(response: false, opcode: 7), at: 0)], config: cfg).records
        #expect(r.first?.history.string == "DX")
    }

    @Test func anNTPServerReplySeenFirstFlipsOnce() throws {
        var cfg = FlowConfig()
        cfg.likelyServerPorts = try LikelyServerPorts(parsing: "ntp")
        func ntp(_ mode: UInt8) -> [UInt8] { [0x20 | mode] + Array(repeating: 0, count: 47) }
        let frames = [Self.udp("17.253.4.253", 123, "192.168.1.95", 123, ntp(4), at: 0),
                      Self.udp("192.168.1.95", 123, "17.253.4.253", 123, ntp(3), at: 0.959285),
                      Self.udp("17.253.4.253", 123, "192.168.1.95", 123, ntp(4), at: 1)]
        let r = track(frames, config: cfg).records
        try #require(r.count == 1)
        #expect(r[0].origH == IPAddr(v4: 0xC0A8_015F) && r[0].history.string == "D^d")
        // the first reply counted on the originator's side after the flip (as Zeek's misordered-ntp baseline shows)
        #expect(r[0].origPkts == 2 && r[0].respPkts == 1 && r[0].origBytes == 96 && r[0].respBytes == 48)
    }
}
