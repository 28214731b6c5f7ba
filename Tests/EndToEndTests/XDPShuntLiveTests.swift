import Foundation
import LBCore
import LBGen
import Testing

/// Shunting on a live AF_XDP input (issue 16 item 4): `lb shunt add` on the only group puts
/// the flow into lb's XDP program, which drops its data packets before lb sees them — counted
/// as `shunted` in the ingress counters and credited to the shunt's entry — while its SYN, FIN
/// and RST, and every other flow, still reach the ring.
@Suite(.serialized) struct XDPShuntLiveTests {
    static let client: IPv4 = "10.0.0.1", server: IPv4 = "10.9.9.9"

    /// `lb shunt add GROUP` with the trace's TCP flow: it must be added.
    static func shuntBulkFlow(_ group: String, _ run: LBRun, in dir: String) throws {
        let flow = ["--proto", "tcp", "--src", "\(client)", "--sport", "40000", "--dst", "\(server)", "--dport", "443", "--run-dir", run.runDir]
        let (s, out, err) = try Proc.run(Tool.lb, ["shunt", "add", group] + flow, in: dir, label: "shunt")
        #expect(s == 0 && out.contains("added"), "\(out) \(err)")
    }

    /// SYN, SYN-ACK, ACK, `data` segments (3 of 4 from the client), FIN, FIN, RST; a UDP flow beside it.
    static func trace(_ path: String, data: Int) throws -> (total: Int, shuntable: Int) {
        var frames: [(timestampNanos: UInt64, bytes: [UInt8])] = []
        var t: UInt64 = 1_700_000_000_000_000_000
        var shuntable = 0
        func add(_ b: [UInt8]) { t += 1_000_000; frames.append((t, b)) }
        func seg(_ fromClient: Bool, _ flags: TCPFlags, size: Int = 800) {
            var l: [Layer] = [.ethernet(), .ipv4(src: fromClient ? client : server, dst: fromClient ? server : client),
                              .tcp(sport: fromClient ? 40000 : 443, dport: fromClient ? 443 : 40000, flags: flags)]
            if size > 0 { l.append(.filler(size)) }
            if flags.rawValue & 0x07 == 0 { shuntable += 1 }
            add(PacketBuilder.build(l))
        }
        seg(true, .syn, size: 0); seg(false, [.syn, .ack], size: 0); seg(true, .ack, size: 0)
        for i in 0..<data {
            seg(i % 4 != 3, [.psh, .ack])
            if i % 40 == 0 { add(PacketBuilder.build(.ethernet(), .ipv4(src: "10.0.0.2", dst: "10.0.0.53"), .udp(sport: 3333, dport: 9999), .filler(40))) }
        }
        seg(true, [.fin, .ack], size: 0); seg(false, [.fin, .ack], size: 0); seg(true, .rst, size: 0)
        try Data(LBCore.Pcap.file(linkType: 1, nanosecond: false, packets: frames)).write(to: URL(fileURLWithPath: path))
        return (frames.count, shuntable)
    }

    @Test func theXDPProgramDropsAFlowShuntedInEveryGroup() throws {
        let veth = try VethPair()
        defer { veth.remove() }
        let scratch = try ScratchDirectory("live-shunt")
        let file = scratch.path + "/bulk.pcap"
        let (total, shuntable) = try Self.trace(file, data: 2000)
        var run = LBRun(dir: scratch.path, groups: [("t", 1)])
        try LiveIngressTests.startLB(&run, veth: veth, input: "af_xdp:\(veth.a)")
        defer { if let lb = run.lb { lb.signal(SIGKILL) } }
        try run.startConsumers()
        try LiveIngressTests.waitFor(run, "consumer attached")
        try Self.shuntBulkFlow("t", run, in: scratch.path)
        let sent = try veth.replay([file], pps: 5000)
        #expect(sent.packets == total)
        usleep(600_000)                              // the control thread credits the drops every 200 ms
        let (ls, list, lerr) = try Proc.run(Tool.lb, ["shunt", "list", "t", "--json", "--run-dir", run.runDir], in: scratch.path, label: "list")
        #expect(ls == 0, "\(lerr)")
        let entry = try JSONSerialization.jsonObject(with: Data(list.split(separator: "\n").first.map(String.init)?.utf8 ?? "{}".utf8)) as? [String: Any]
        let credited = ((entry?["packets_a_to_b"] as? NSNumber)?.intValue ?? -1) + ((entry?["packets_b_to_a"] as? NSNumber)?.intValue ?? -1)
        #expect(credited == shuntable, "the entry counts the program's drops: \(list)")
        let stats = try LiveIngressTests.stop(run)
        #expect(stats.int("ingress", "xdp", "shunted") == shuntable, "\(stats["ingress"] ?? "")")
        #expect(stats.int("packets_received") == total - shuntable)
        #expect(stats.int("shunt_xdp_added") == 1)
        // the ring got the flow's SYN/FIN/RST and the UDP flow, nothing else
        let frames = try readCapture(run.files(run.rings[0])[0])
        #expect(frames.count == total - shuntable)
        let control = frames.filter { $0.bytes.count > 47 && $0.bytes[23] == 6 }
        #expect(control.count == 5 && control.allSatisfy { $0.bytes[47] & 0x07 != 0 })
    }

    /// The same through the dumbno listener: Zeek's NetControl dumbno client sends one JSON
    /// request per direction (here from inside lb's namespace, on its loopback); malformed JSON,
    /// a sender that is not loopback are refused and counted, an unknown group refused.
    @Test func aDumbnoRequestDoesTheSame() throws {
        let veth = try VethPair(addresses: true)
        defer { veth.remove() }
        let scratch = try ScratchDirectory("live-shunt-dumbno")
        let file = scratch.path + "/bulk.pcap"
        let (total, shuntable) = try Self.trace(file, data: 1000)
        var run = LBRun(dir: scratch.path, groups: [("t", 1)])
        try LiveIngressTests.startLB(&run, veth: veth, input: "af_xdp:\(veth.a)",
                                     extra: ["--shunt-udp", "0.0.0.0:19000", "--shunt-udp-groups", "t"])
        defer { if let lb = run.lb { lb.signal(SIGKILL) } }
        try run.startConsumers()
        try LiveIngressTests.waitFor(run, "consumer attached")
        func send(_ json: String, to address: String = "127.0.0.1") throws {
            try VethPair.run("/usr/sbin/ip", ["netns", "exec", veth.nsA, "bash", "-c", "printf '%s' '\(json)' > /dev/udp/\(address)/19000"])
        }
        for (src, dst, sp, dp) in [("10.0.0.1", "10.9.9.9", 40000, 443), ("10.9.9.9", "10.0.0.1", 443, 40000)] {
            try send("{\"src\":\"\(src)\",\"dst\":\"\(dst)\",\"sport\":\(sp),\"dport\":\(dp),\"proto\":\"tcp\"}")
        }
        try send("{\"src\":\"10.0.0.1\",\"dst\":")                        // malformed
        // from the namespace's veth address: not loopback, not --shunt-udp-allow
        try send("{\"src\":\"10.0.0.2\",\"dst\":\"10.0.0.53\",\"sport\":3333,\"dport\":9999,\"proto\":\"udp\"}", to: "10.201.0.1")
        let flow = ["--proto", "udp", "--src", "10.0.0.2", "--sport", "3333", "--dst", "10.0.0.53", "--dport", "9999", "--run-dir", run.runDir]
        let (us, _, uerr) = try Proc.run(Tool.lb, ["shunt", "add", "nosuch"] + flow, in: scratch.path, label: "unknown")
        // each group has its own socket: an unknown group is refused by lb shunt itself, naming those there are
        #expect(us != 0 && uerr.contains("no group 'nosuch'") && uerr.contains("groups: t"), "\(uerr)")
        usleep(300_000)
        let (_, list, _) = try Proc.run(Tool.lb, ["shunt", "list", "t", "--json", "--run-dir", run.runDir], in: scratch.path, label: "list")
        #expect(list.contains("\"directions\":\"both\"") && list.split(separator: "\n").count == 1,
                "both requests make one entry for both directions, the refused ones none: \(list)")
        let sent = try veth.replay([file], pps: 5000)
        #expect(sent.packets == total)
        let stats = try LiveIngressTests.stop(run)
        #expect(stats.int("ingress", "xdp", "shunted") == shuntable, "\(stats["ingress"] ?? "")")
        #expect(stats.int("packets_received") == total - shuntable)
        #expect(stats.int("shunt_added", "t") == 1)
        #expect(stats.int("shunt_requests_refused", "malformed") == 1)
        #expect(stats.int("shunt_requests_refused", "not_allowed") == 1)
    }

    /// A flow shunted in one group of two is still delivered to the other: the program must not
    /// drop it (the first group's data path stops it, before any copy into its rings).
    @Test func aFlowShuntedInOneGroupOfTwoStaysInUserSpace() throws {
        let veth = try VethPair()
        defer { veth.remove() }
        let scratch = try ScratchDirectory("live-shunt-two")
        let file = scratch.path + "/bulk.pcap"
        let (total, shuntable) = try Self.trace(file, data: 400)
        var run = LBRun(dir: scratch.path, groups: [("t", 1), ("u", 1)])
        try LiveIngressTests.startLB(&run, veth: veth, input: "af_xdp:\(veth.a)")
        defer { if let lb = run.lb { lb.signal(SIGKILL) } }
        try run.startConsumers()
        try LiveIngressTests.waitFor(run, "consumer attached")
        try Self.shuntBulkFlow("t", run, in: scratch.path)
        let sent = try veth.replay([file], pps: 5000)
        #expect(sent.packets == total)
        let stats = try LiveIngressTests.stop(run)
        #expect(stats.int("ingress", "xdp", "shunted") == 0, "\(stats["ingress"] ?? "")")
        #expect(stats.int("packets_received") == total)
        #expect(stats.int("shunt_xdp_added") == 0 && stats.int("shunt_xdp_flows") == 0)
        let t = try readCapture(run.files(run.rings[0])[0]), u = try readCapture(run.files(run.rings[1])[0])
        #expect(t.count == total - shuntable && u.count == total)
    }
}
