import Foundation
import Glibc
import LBCore
import LBGen
import Testing

/// `lb shunt` against a running lb: a bulk TCP flow shunted for one group stops reaching that
/// group's worker (its SYN, FIN and RST still arrive), the other group gets everything, the
/// counts add up in the final stats, and bad requests are refused and counted.
@Suite struct ShuntTests {
    static let client: IPv4 = "10.0.0.1", server: IPv4 = "10.9.9.9"

    /// A bulk TCP flow (and a small UDP flow beside it) at 1 ms per packet.
    static func trace(_ path: String, dataPackets: Int) throws {
        var packets: [(timestampNanos: UInt64, bytes: [UInt8])] = []
        var t: UInt64 = 1_700_000_000_000_000_000
        func add(_ layers: [Layer]) { packets.append((t, PacketBuilder.build(layers))); t += 1_000_000 }
        func seg(_ fromClient: Bool, _ flags: TCPFlags, size: Int = 1000) -> [Layer] {
            [.ethernet(), .ipv4(src: fromClient ? client : server, dst: fromClient ? server : client),
             .tcp(sport: fromClient ? 40000 : 443, dport: fromClient ? 443 : 40000, flags: flags), .filler(size)]
        }
        add(seg(true, .syn, size: 0)); add(seg(false, [.syn, .ack], size: 0)); add(seg(true, .ack, size: 0))
        for i in 0..<dataPackets {
            add(seg(i % 4 != 3, [.psh, .ack]))
            if i % 50 == 0 { add([.ethernet(), .ipv4(src: "10.0.0.2", dst: "10.0.0.53"), .udp(sport: 3333, dport: 53), .filler(40)]) }
        }
        add(seg(true, [.fin, .ack], size: 0)); add(seg(false, [.fin, .ack], size: 0)); add(seg(true, .rst, size: 0))
        try Data(Pcap.file(linkType: 1, nanosecond: false, packets: packets)).write(to: URL(fileURLWithPath: path))
    }

    @Test func shuntAddListDelOnARunningLB() throws {
        let scratch = try Scratch("shunt")
        let trace = scratch.path + "/bulk.pcap"
        try Self.trace(trace, dataPackets: 6000)
        let total = try readCapture(trace).count
        let runDir = scratch.path + "/run"
        let lb = try Proc(Ops.lb, ["-i", "pcap:" + trace, "-p", "a:1", "-p", "b:1", "--run-dir", runDir, "-w", "20", "--replay-rate", "2000"],
                          in: scratch.path, label: "lb")
        let catA = try Proc(Ops.lb, ["cat", "a:0", "-w", scratch.path + "/a.pcap", "--run-dir", runDir], in: scratch.path, label: "cat-a")
        let catB = try Proc(Ops.lb, ["cat", "b:0", "-w", scratch.path + "/b.pcap", "--run-dir", runDir], in: scratch.path, label: "cat-b")
        func shunt(_ args: [String]) throws -> (Int32, String, String) {
            try Proc.run(Ops.lb, ["shunt"] + args + ["--run-dir", runDir], in: scratch.path, label: "shunt-\(args[0])")
        }
        let flow = ["--proto", "tcp", "--src", "10.0.0.1", "--sport", "40000", "--dst", "10.9.9.9", "--dport", "443"]
        #expect(try eventually(20) { (try? Ops.stats(runDir: runDir, in: scratch.path)["a:0"]?["packets_forwarded"] as? Int ?? 0) ?? 0 > 200 })

        let (s1, out1, err1) = try shunt(["add", "a"] + flow)
        #expect(s1 == 0 && out1.contains("added"), "\(out1) \(err1)")
        let (s2, out2, _) = try shunt(["list", "a", "--json"])
        #expect(s2 == 0 && out2.split(separator: "\n").count == 1 && out2.contains("\"a_port\":40000"), "\(out2)")
        // refused, with a reason, and counted by lb
        let (s3, _, err3) = try shunt(["add", "a", "--proto", "tcp", "--src", "not-an-address", "--dst", "10.9.9.9"])
        #expect(s3 == 1 && err3.contains("not an IPv4 or IPv6 address"), "\(err3)")
        let (s4, _, err4) = try shunt(["del", "b"] + flow)
        #expect(s4 == 1 && err4.contains("no such flow"), "\(err4)")
        let (s5, _, err5) = try shunt(["add", "nosuch"] + flow)
        #expect(s5 == 1 && err5.contains("no group 'nosuch'") && err5.contains("groups: a, b"), "\(err5)")
        usleep(800_000)
        let (s6, out6, err6) = try shunt(["del", "a"] + flow)
        #expect(s6 == 0 && out6.contains("removed") && out6.contains("packets_a_to_b"), "\(out6) \(err6)")

        #expect(try lb.wait(seconds: 60) == 0, "\(lb.stderr)")
        #expect(try catA.wait(seconds: 20) == 0 && catB.wait(seconds: 20) == 0)
        let stats = try LBStats(lb.stdout)
        let shunted = stats.int("a:0", "shunted_packets") ?? -1
        let a = try readCapture(scratch.path + "/a.pcap"), b = try readCapture(scratch.path + "/b.pcap")
        #expect(b.count == total && stats.int("b:0", "shunted_packets") == 0)
        #expect(shunted > 100 && a.count + shunted == total, "a \(a.count) + shunted \(shunted) vs \(total)")
        #expect(stats.int("a:0", "packets_forwarded") == a.count)
        // the control packets all reached a, and the UDP flow beside the shunted one too
        func control(_ frames: [CapturedFrame]) -> Int { frames.filter { $0.bytes.count > 47 && $0.bytes[23] == 6 && $0.bytes[47] & 0x07 != 0 }.count }
        func udp(_ frames: [CapturedFrame]) -> Int { frames.filter { $0.bytes.count > 23 && $0.bytes[23] == 17 }.count }
        #expect(control(a) == 5 && control(b) == 5)
        #expect(udp(a) == udp(b) && udp(a) == 120)
        let lbLine = stats.aggregate
        func named(_ field: String, _ key: String) -> Int { ((lbLine[field] as? [String: Any])?[key] as? NSNumber)?.intValue ?? -1 }
        #expect(named("shunt_added", "a") == 1 && named("shunt_removed", "a") == 1 && named("shunt_entries", "a") == 0)
        #expect(named("shunt_ended", "a") == 1 && named("shunt_added", "b") == 0)
        #expect(named("shunt_requests_refused", "malformed") == 1 && named("shunt_requests_refused", "not_found") == 1)
    }
}

/// The dumbno-compatible UDP listener: Zeek's NetControl dumbno plugin sends one JSON request
/// per direction to UDP 9000 and waits for "ok"; lb takes the same requests for the groups it
/// is told, from loopback (and addresses allowed), and refuses and counts the rest.
@Suite(.serialized) struct DumbnoTests {
    /// Sends one datagram from `source` (nil: loopback) to 127.0.0.1:port; returns the answer.
    static func ask(_ json: String, port: UInt16, from source: String? = nil) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        if let source {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            inet_pton(AF_INET, source, &a.sin_addr)
            let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            guard r == 0 else { return "bind failed: \(errno)" }
        }
        var to = sockaddr_in()
        to.sin_family = sa_family_t(AF_INET)
        to.sin_port = port.bigEndian
        inet_pton(AF_INET, source == nil ? "127.0.0.1" : source!, &to.sin_addr)
        let bytes = Array(json.utf8)
        _ = withUnsafePointer(to: &to) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var buf = [UInt8](repeating: 0, count: 512)
        let n = recv(fd, &buf, buf.count, 0)
        return n > 0 ? String(decoding: buf[..<n], as: UTF8.self) : nil
    }

    @Test func zeekNetControlRequestsOverUDP() throws {
        let scratch = try Scratch("dumbno")
        let trace = scratch.path + "/bulk.pcap"
        try ShuntTests.trace(trace, dataPackets: 6000)
        let total = try readCapture(trace).count
        // a non-loopback address of this host, for a sender lb must refuse
        // (a veth end: this kernel has no dummy devices)
        let dummy = "lbdn\(getpid() % 100000)", foreign = "198.51.100.77"
        _ = try Proc.run("/usr/sbin/ip", ["link", "add", dummy, "type", "veth", "peer", "name", dummy + "p"], in: scratch.path, label: "ip-add")
        defer { _ = try? Proc.run("/usr/sbin/ip", ["link", "del", dummy], in: scratch.path, label: "ip-del") }
        let (a1, _, e1) = try Proc.run("/usr/sbin/ip", ["addr", "add", foreign + "/32", "dev", dummy], in: scratch.path, label: "ip-addr")
        let (a2, _, e2) = try Proc.run("/usr/sbin/ip", ["link", "set", dummy, "up"], in: scratch.path, label: "ip-up")
        try #require(a1 == 0 && a2 == 0, "\(e1) \(e2)")

        let runDir = scratch.path + "/run"
        let lb = try Proc(Ops.lb, ["-i", "pcap:" + trace, "-p", "a:1", "-p", "b:1", "--run-dir", runDir, "-w", "20", "--replay-rate", "2000",
                                   "--shunt-udp", "0.0.0.0:0", "--shunt-udp-groups", "a"], in: scratch.path, label: "lb")
        let catA = try Proc(Ops.lb, ["cat", "a:0", "-w", scratch.path + "/a.pcap", "--run-dir", runDir], in: scratch.path, label: "cat-a")
        let catB = try Proc(Ops.lb, ["cat", "b:0", "-w", scratch.path + "/b.pcap", "--run-dir", runDir], in: scratch.path, label: "cat-b")
        var port: UInt16 = 0
        #expect(eventually(10) {
            guard let r = lb.stderr.range(of: "on udp 0.0.0.0:") else { return false }
            port = UInt16(lb.stderr[r.upperBound...].prefix { $0.isNumber }) ?? 0
            return port != 0
        }, "\(lb.stderr)")
        #expect(try eventually(20) { (try? Ops.stats(runDir: runDir, in: scratch.path)["a:0"]?["packets_forwarded"] as? Int ?? 0) ?? 0 > 200 })

        // the plugin's two requests (SHUNT_CONN): orig -> resp, then resp -> orig
        #expect(Self.ask(#"{"src":"10.0.0.1","dst":"10.9.9.9","sport":40000,"dport":443,"proto":"tcp"}"#, port: port) == "ok")
        #expect(Self.ask(#"{"src":"10.9.9.9","dst":"10.0.0.1","sport":443,"dport":40000,"proto":"tcp"}"#, port: port) == "ok")
        // refused: malformed JSON, a host-pair rule, a non-loopback sender
        #expect(Self.ask(#"{"src":"10.0.0.1","dst":"#, port: port)?.hasPrefix("error:") == true)
        #expect(Self.ask(#"{"src":"10.0.0.1","dst":"10.9.9.9","proto":"ip"}"#, port: port)?.hasPrefix("error:") == true)
        let refusedForeign = Self.ask(#"{"src":"10.0.0.1","dst":"10.9.9.9","sport":40000,"dport":443,"proto":"tcp"}"#, port: port, from: foreign)
        #expect(refusedForeign?.contains("not allowed") == true, "\(refusedForeign ?? "no answer")")

        #expect(try lb.wait(seconds: 60) == 0, "\(lb.stderr)")
        #expect(try catA.wait(seconds: 20) == 0 && catB.wait(seconds: 20) == 0)
        let stats = try LBStats(lb.stdout)
        let shunted = stats.int("a:0", "shunted_packets") ?? -1
        let a = try readCapture(scratch.path + "/a.pcap"), b = try readCapture(scratch.path + "/b.pcap")
        #expect(b.count == total && shunted > 100 && a.count + shunted == total, "a \(a.count) shunted \(shunted) total \(total)")
        func named(_ field: String, _ key: String) -> Int { ((stats.aggregate[field] as? [String: Any])?[key] as? NSNumber)?.intValue ?? -1 }
        #expect(named("shunt_added", "a") == 1)             // the second direction joined the first entry
        #expect(named("shunt_requests_refused", "malformed") == 2 && named("shunt_requests_refused", "not_allowed") == 1)
        #expect(named("shunt_added", "b") == 0)
    }
}
