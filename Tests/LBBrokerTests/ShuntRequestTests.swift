@testable import LBBroker
import LBCore
import Testing

/// Shunt requests come from whoever may reach a group's socket or the dumbno port: the parsers
/// refuse anything malformed with a message, and never crash on any bytes.
@Suite struct ShuntRequestTests {
    @Test func wellFormedRequestsParse() throws {
        let r = try ShuntRequest.parse("add proto=tcp src=10.0.0.1 sport=40000 dst=2001:db8::1 dport=443 dir=forward idle=60 hard=0.5 vlan=7")
        #expect(r.op == .add && r.proto == 6 && r.src.port == 40000 && r.dst.port == 443 && r.forwardOnly && r.idleSeconds == 60)
        #expect(try ShuntRequest.parse(r.line) == r)
        #expect(try ShuntRequest.parse("list").op == .list)
        let d = try ShuntRequest.parse("del proto=udp src=10.0.0.1 dst=10.0.0.2")
        #expect(d.op == .del && d.proto == 17)
        let f = try ShuntRequest.parse("add frame=" + String(repeating: "00", count: 14) + " dir=both")
        #expect(f.frame?.count == 14)
    }

    @Test(arguments: [
        "", "remove proto=tcp", "add", "add src=10.0.0.1 dst=10.0.0.2", "add proto=tcp src=10.0.0.1",
        "add proto=xyz src=1.2.3.4 dst=1.2.3.5", "add proto=tcp src=1.2.3.4 dst=1.2.3.5 sport=70000",
        "add proto=tcp src=1.2.3.4 dst=1.2.3.5 dir=sideways", "add proto=tcp src=1.2.3.4 dst=1.2.3.5 idle=-1",
        "add proto=tcp src=1.2.3.4 dst=1.2.3.5 vlan=4096", "add proto=tcp src=1.2.3.4 src=1.2.3.5 dst=1.1.1.1",
        "del proto=tcp src=1.2.3.4 dst=1.2.3.5 idle=5", "list extra", "add frame=zz", "add frame=00",
        "add frame=\(String(repeating: "00", count: 300))", "add proto=tcp src=1.2.3.4 dst=1.2.3.5 nosuch=1",
        "add =1 proto=tcp",
    ])
    func malformedRequestsAreRefusedWithAReason(_ text: String) {
        do {
            _ = try ShuntRequest.parse(text)
            Issue.record("'\(text)' parsed")
        } catch {
            #expect(!error.description.isEmpty)
        }
    }

    @Test func dumbnoRequests() throws {
        let ok = try ShuntService.parseDumbno(Array(#"{"src": "10.0.0.1", "dst": "10.9.9.9", "sport": 40000, "dport": 443, "proto": "tcp"}"#.utf8), idle: 60)
        #expect(ok.forwardOnly && ok.proto == 6 && ok.idleSeconds == 60 && ok.src.port == 40000)
        let nulls = try ShuntService.parseDumbno(Array(#"{"src":"10.0.0.1","dst":"10.9.9.9","sport":null,"dport":null,"proto":"icmp"}"#.utf8), idle: 1)
        #expect(nulls.proto == 1 && nulls.src.port == 0)
        for bad in [#"{"src":"10.0.0.1","dst":"10.9.9.9"}"#, #"{"src":"10.0.0.1","dst":"10.9.9.9","proto":"ip"}"#,
                    #"{"src":1,"dst":"10.9.9.9","proto":"tcp"}"#, #"{"src":"10.0.0.1","dst":"10.9.9.9","proto":"tcp","sport":1.5}"#,
                    #"[1,2]"#, #"{"src":"10.0.0.1","src":"x"}"#, #"{"a":{"b":1}}"#, "", "{", #"{"src":"10.0.0.1"} x"#] {
            #expect(throws: BrokerError.self, "\(bad)") { try ShuntService.parseDumbno(Array(bad.utf8), idle: 60) }
        }
    }

    /// Random bytes and mutations of good requests: refused or parsed, never a crash.
    @Test func anyBytesAreSafe() {
        var rng: UInt64 = 0x5EED
        func next() -> UInt64 { rng = rng &* 6364136223846793005 &+ 1442695040888963407; return rng >> 33 }
        let seeds = [Array(#"{"src":"10.0.0.1","dst":"10.9.9.9","sport":40000,"dport":443,"proto":"tcp"}"#.utf8),
                     Array("add proto=tcp src=10.0.0.1 sport=40000 dst=10.9.9.9 dport=443 dir=both idle=60".utf8)]
        var parsed = 0
        for i in 0..<20_000 {
            var b = seeds[i % 2]
            if i % 5 == 0 {
                b = (0..<Int(next() % 200)).map { _ in UInt8(truncatingIfNeeded: next()) }
            } else {
                for _ in 0..<(1 + Int(next() % 4)) {
                    let at = Int(next() % UInt64(max(1, b.count)))
                    switch next() % 3 {
                    case 0 where !b.isEmpty: b[at] = UInt8(truncatingIfNeeded: next())
                    case 1 where !b.isEmpty: b.remove(at: at)
                    default: b.insert(UInt8(truncatingIfNeeded: next()), at: min(at, b.count))
                    }
                }
            }
            if (try? ShuntService.parseDumbno(b, idle: 60)) != nil { parsed += 1 }
            if let text = String(validating: b, as: UTF8.self), (try? ShuntRequest.parse(text)) != nil { parsed += 1 }
            _ = FlatJSON.parse(b)
        }
        #expect(parsed > 0)
    }
}
