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
