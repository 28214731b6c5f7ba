import Foundation
import Testing

/// Two network namespaces joined by a veth pair, named with the `lbx` prefix, the pid and a
/// counter: lbx-PID-N-a holds `a` (lb's side), lbx-PID-N-b holds `b` (the sender's side).
/// IPv6 is off (no router solicitations), the MTU fits the corpus's largest frame (9100 bytes).
/// Removed in deinit (deleting a namespace deletes its end of the veth).
final class VethPair {
    nonisolated(unsafe) static var counter = 0
    let nsA: String, nsB: String, a: String, b: String

    init(addresses: Bool = false, queues: Int = 1) throws {
        VethPair.counter += 1
        let tag = "\(getpid() % 100000)\(VethPair.counter)"
        nsA = "lbx-\(tag)-a"
        nsB = "lbx-\(tag)-b"
        a = "lbx\(tag)a"
        b = "lbx\(tag)b"
        do {
            try Self.ip(["netns", "add", nsA])
            try Self.ip(["netns", "add", nsB])
            try Self.ip(["link", "add", a, "netns", nsA, "numrxqueues", "\(queues)", "numtxqueues", "\(queues)", "type", "veth",
                         "peer", "name", b, "netns", nsB, "numrxqueues", "\(queues)", "numtxqueues", "\(queues)"])
            for (ns, dev) in [(nsA, a), (nsB, b)] {
                try Self.run("/usr/sbin/ip", ["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
                try Self.ip(["-n", ns, "link", "set", "lo", "up"])
                try Self.ip(["-n", ns, "link", "set", dev, "mtu", "9200", "up"])
            }
            if addresses {
                try Self.ip(["-n", nsA, "addr", "add", "10.201.0.1/24", "dev", a])
                try Self.ip(["-n", nsB, "addr", "add", "10.201.0.2/24", "dev", b])
            }
        } catch {
            remove()
            throw error
        }
    }

    deinit { remove() }

    func remove() {
        _ = try? Self.run("/usr/sbin/ip", ["netns", "del", nsA], check: false)
        _ = try? Self.run("/usr/sbin/ip", ["netns", "del", nsB], check: false)
    }

    static func ip(_ args: [String]) throws { try run("/usr/sbin/ip", args) }

    @discardableResult
    static func run(_ path: String, _ args: [String], check: Bool = true, seconds: Double = 60) throws -> (Int32, String, String) {
        let dir = NSTemporaryDirectory()
        let t = try Tool(path, args, in: dir, label: "lbx-\(UUID().uuidString.prefix(8))")
        let status = try t.wait(seconds: seconds)
        let out = t.stdout, err = t.stderr
        try? FileManager.default.removeItem(atPath: t.stdoutPath)
        try? FileManager.default.removeItem(atPath: t.stderrPath)
        if check && status != 0 { throw TestFailure("\(path) \(args.joined(separator: " ")) exited \(status): \(err)") }
        return (status, out, err)
    }

    /// The XDP program shown by `ip link show` on `a`, or nil.
    func xdpOnA() throws -> String? {
        let (_, out, _) = try Self.run("/usr/sbin/ip", ["-n", nsA, "link", "show", a])
        return out.contains("xdp") ? out : nil
    }

    /// Sends pcap files through `b` with tcpreplay; returns (packets, bytes) it sent.
    /// With `cpu`, tcpreplay runs on that CPU.
    func replay(_ files: [String], pps: Int, cpu: Int? = nil) throws -> (packets: Int, bytes: Int) {
        let pin = cpu.map { ["taskset", "-c", "\($0)"] } ?? []
        let (status, out, err) = try Self.run("/usr/sbin/ip", ["netns", "exec", nsB] + pin + ["tcpreplay", "-i", b, "--pps", "\(pps)"] + files,
                                              check: false, seconds: 240)
        guard status == 0 else { throw TestFailure("tcpreplay failed: \(out) \(err)") }
        // "Actual: 5968 packets (1554392 bytes) sent in ..." and "Failed packets: 0"
        func number(after word: String, in text: String) -> Int? {
            guard let r = text.range(of: word) else { return nil }
            let digits = text[r.upperBound...].drop(while: { $0 == " " }).prefix(while: { $0.isNumber })
            return Int(digits)
        }
        guard let packets = number(after: "Actual:", in: out), let bytes = number(after: "packets (", in: out) else {
            throw TestFailure("cannot read tcpreplay's summary: \(out)")
        }
        let failed = number(after: "Failed packets:", in: out) ?? 0
        guard failed == 0 else { throw TestFailure("tcpreplay could not send \(failed) packets: \(out)") }
        return (packets, bytes)
    }
}

/// Live ingress end to end: lb on one end of a veth pair, the Zeek corpus sent through the other.
@Suite(.serialized) struct LiveIngressTests {
    /// The corpus traces a veth can carry: classic pcap with Ethernet frames.
    static func ethernetTraces() throws -> [String] {
        let root = Corpus.root + "/traces"
        guard let walker = FileManager.default.enumerator(atPath: root) else { throw TestFailure("no corpus at \(root)") }
        var out: [String] = []
        for case let rel as String in walker where rel.hasSuffix(".pcap") {
            let path = root + "/" + rel
            guard let h = FileManager.default.contents(atPath: path), h.count >= 24 else { continue }
            let magic = h.prefix(4)
            let little = magic == Data([0xd4, 0xc3, 0xb2, 0xa1]) || magic == Data([0x4d, 0x3c, 0xb2, 0xa1])
            let big = magic == Data([0xa1, 0xb2, 0xc3, 0xd4]) || magic == Data([0xa1, 0xb2, 0x3c, 0x4d])
            guard little || big else { continue }
            let b = [UInt8](h[20..<24])
            let link = little ? UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24
                              : UInt32(b[3]) | UInt32(b[2]) << 8 | UInt32(b[1]) << 16 | UInt32(b[0]) << 24
            if link == 1 { out.append(path) }
        }
        guard out.count >= 20 else { throw TestFailure("only \(out.count) Ethernet traces in \(root)") }
        return out.sorted()
    }

    /// Builds lb's XDP program if it is not built yet (scripts/setup normally has).
    static func buildXDPObject() throws {
        let (status, _, err) = try VethPair.run("/bin/bash", [Corpus.repoRoot + "/bpf/build.sh"], check: false, seconds: 120)
        guard status == 0 else { throw TestFailure("bpf/build.sh failed: \(err)") }
    }

    /// lb inside namespace a, its consumers outside (the control sockets are files).
    static func startLB(_ run: inout LBRun, veth: VethPair, input: String, extra: [String] = []) throws {
        try buildXDPObject()
        run.lb = try Tool("/usr/sbin/ip", ["netns", "exec", veth.nsA, Tool.lb, "-i", input] + run.groupArgs
                          + ["-w", "30", "--run-dir", run.runDir] + extra,
                          in: run.dir, label: "lb", environment: ["LB_XDP_OBJECT": Corpus.repoRoot + "/.build/bpf/lb_xdp.o"])
    }

    /// Waits until lb's stderr contains `text` `count` times (lb logs each consumer attach).
    static func waitFor(_ run: LBRun, _ text: String, count: Int = 1, seconds: Double = 30) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let err = run.lb!.stderr
            if err.components(separatedBy: text).count - 1 >= count { return }
            if !run.lb!.child.isRunning { throw TestFailure("lb exited early: \(err)") }
            usleep(50_000)
        }
        throw TestFailure("lb did not log '\(text)' within \(seconds) s: \(run.lb!.stderr)")
    }

    /// SIGTERM, then lb and the consumers must exit 0; returns lb's final stats.
    static func stop(_ run: LBRun) throws -> [String: Any] {
        usleep(500_000)              // the last packets reach the rings
        run.lb!.signal(SIGTERM)
        return try run.finish(seconds: 60)
    }

    @Test("af_xdp native, af_xdp generic, af_packet: the corpus through a veth", arguments: ["native", "generic", "af_packet"])
    func corpusThroughVeth(_ mode: String) throws {
        let veth = try VethPair()
        defer { veth.remove() }
        let scratch = try ScratchDirectory("live-\(mode)")
        var run = LBRun(dir: scratch.path, groups: [("t", 2)])
        let input = mode == "af_packet" ? "af_packet:\(veth.a)" : "af_xdp:\(veth.a)"
        try Self.startLB(&run, veth: veth, input: input, extra: mode == "af_packet" ? [] : ["--xdp-mode", mode])
        defer { if let lb = run.lb { lb.signal(SIGKILL) } }
        try run.startConsumers()
        try Self.waitFor(run, "consumer attached", count: 2)
        if mode != "af_packet" {
            #expect(run.lb!.stderr.contains("\(mode) XDP"), "lb says which XDP mode it uses: \(run.lb!.stderr)")
        }
        let sent = try veth.replay(try Self.ethernetTraces(), pps: 4000)
        let stats = try Self.stop(run)

        #expect(stats.int("packets_received") == sent.packets, "lb received \(stats.int("packets_received")) of \(sent.packets) packets sent")
        #expect(stats.int("bytes_received") == sent.bytes, "lb received \(stats.int("bytes_received")) of \(sent.bytes) bytes sent")
        #expect(stats.int("packets_dropped") == 0)
        if mode == "af_packet" {
            #expect(stats.int("ingress", "af_packet", "tp_drops") == 0)
            #expect(stats.int("ingress", "af_packet", "tp_packets") == sent.packets)
            #expect(stats.int("ingress", "af_packet", "vlan_tags_restored") > 0, "the corpus has VLAN-tagged frames")
        } else {
            #expect(stats.int("ingress", "xdp", "diverted") == sent.packets, "the XDP program diverted every packet")
            #expect(stats.int("ingress", "xsk", "rx_dropped") == 0)
            #expect(stats.int("ingress", "xsk", "rx_ring_full") == 0)
            #expect(stats.int("ingress", "xsk", "truncated_frames") == 0)
            #expect(stats.int("ingress", "xsk", "multi_buffer_frames") > 0, "the corpus has frames above one 2 KiB UMEM frame")
        }
        // every packet in exactly one ring of the group, no flow split (tshark's reading)
        let expected = sent.packets - stats.int("fragments", "merged") + stats.int("amsdu_subframes")
        try LifecycleTests.checkGroups(run, expected: expected, dir: scratch.path)
        #expect(try veth.xdpOnA() == nil, "no XDP program is left on \(veth.a) after SIGTERM")
    }

    @Test func divertOnlyVXLANWhileHostTrafficWorks() throws {
        let veth = try VethPair(addresses: true)
        defer { veth.remove() }
        let scratch = try ScratchDirectory("live-divert")
        var run = LBRun(dir: scratch.path, groups: [("t", 2)])
        try Self.startLB(&run, veth: veth, input: "af_xdp:\(veth.a)", extra: ["--divert", "udp dst port 4789"])
        defer { if let lb = run.lb { lb.signal(SIGKILL) } }
        try run.startConsumers()
        try Self.waitFor(run, "consumer attached", count: 2)

        // the host's own traffic on the same interface keeps working: ping and a TCP connection
        let (ping, pingOut, _) = try VethPair.run("/usr/sbin/ip", ["netns", "exec", veth.nsB, "ping", "-c", "3", "-i", "0.2", "-W", "2", "10.201.0.1"], check: false)
        #expect(ping == 0, "ping through the diverting interface: \(pingOut)")
        let server = try Tool("/usr/sbin/ip", ["netns", "exec", veth.nsA, "nc", "-l", "-N", "10.201.0.1", "7777"], in: scratch.path, label: "nc-server")
        defer { server.signal(SIGKILL) }
        usleep(300_000)
        let message = "hello through lb's XDP program"
        let clientInput = scratch.path + "/nc-in"
        try message.write(toFile: clientInput, atomically: true, encoding: .utf8)
        let (nc, _, ncErr) = try VethPair.run("/bin/sh", ["-c", "ip netns exec \(veth.nsB) nc -N -w 5 10.201.0.1 7777 < \(clientInput)"], check: false)
        #expect(nc == 0, "TCP client: \(ncErr)")
        _ = try? server.wait(seconds: 10)
        #expect(server.stdout == message, "the TCP server got '\(server.stdout)'")

        // VXLAN to port 4789 lands in the rings, decapsulated
        let vxlan = Corpus.root + "/traces/tunnels/vxlan.pcap"
        let vxlanPackets = try LBRun.count(vxlan, dir: scratch.path)
        let sent = try veth.replay([vxlan], pps: 500)
        #expect(sent.packets == vxlanPackets)
        let stats = try Self.stop(run)
        #expect(stats.int("packets_received") == vxlanPackets, "only the VXLAN packets reach lb: \(stats.int("packets_received"))")
        #expect(stats.int("decapsulated", "vxlan") == vxlanPackets)
        #expect(stats.int("ingress", "xdp", "diverted") == vxlanPackets)
        // 3 echo requests; SYN, ACK, data, FIN at least; ARP is counted as passed_not_ip
        #expect(stats.int("ingress", "xdp", "passed_to_kernel") >= 3 + 4, "ping and TCP went to the kernel")
        try LifecycleTests.checkGroups(run, expected: vxlanPackets, dir: scratch.path)
        for r in run.rings {
            for f in run.files(r) where try LBRun.count(f, dir: scratch.path) > 0 {
                let (_, out, _) = try VethPair.run("/usr/bin/tcpdump", ["-nn", "-r", f, "udp port 4789"], check: false)
                #expect(out.isEmpty, "\(f) still holds VXLAN packets: \(out)")
            }
        }
    }

    @Test func terminatedLeavesNothingKilledIsReplacedSecondRefused() throws {
        let veth = try VethPair()
        defer { veth.remove() }
        let scratch = try ScratchDirectory("live-lifecycle")
        let trace = Corpus.root + "/traces/wikipedia.pcap"

        // 0. a program of ours attached by netlink (an older lb, or by hand) is replaced
        try Self.buildXDPObject()
        try VethPair.ip(["-n", veth.nsA, "link", "set", "dev", veth.a, "xdpgeneric", "obj", Corpus.repoRoot + "/.build/bpf/lb_xdp.o", "sec", "xdp.frags"])
        #expect(try veth.xdpOnA()?.contains("xdpgeneric") == true)

        // 1. SIGTERM detaches the program
        var first = LBRun(dir: scratch.path + "/1", groups: [("t", 2)])
        try FileManager.default.createDirectory(atPath: first.dir, withIntermediateDirectories: true)
        try Self.startLB(&first, veth: veth, input: "af_xdp:\(veth.a)", extra: ["-w", "0"])
        try Self.waitFor(first, "af_xdp:")
        #expect(try veth.xdpOnA() != nil, "lb attached its program")
        #expect(try veth.xdpOnA()?.contains("xdpgeneric") == false, "lb replaced the program left behind (native now)")
        // 2. a second lb on the same interface gets a clear error
        let second = try Tool("/usr/sbin/ip", ["netns", "exec", veth.nsA, Tool.lb, "-i", "af_xdp:\(veth.a)", "-p", "u:2", "-w", "0",
                                               "--run-dir", scratch.path + "/run2"], in: scratch.path, label: "lb-second",
                              environment: ["LB_XDP_OBJECT": Corpus.repoRoot + "/.build/bpf/lb_xdp.o"])
        let secondStatus = try second.wait(seconds: 30)
        #expect(secondStatus != 0)
        #expect(second.stderr.contains("another lb (pid \(first.lb!.pid)) already runs on \(veth.a)"), "\(second.stderr)")
        first.lb!.signal(SIGTERM)
        #expect(try first.lb!.wait(seconds: 30) == 0)
        #expect(try veth.xdpOnA() == nil, "no XDP program after SIGTERM")

        // 3. SIGKILL: the next lb starts and works
        var killed = LBRun(dir: scratch.path + "/2", groups: [("t", 2)])
        try FileManager.default.createDirectory(atPath: killed.dir, withIntermediateDirectories: true)
        try Self.startLB(&killed, veth: veth, input: "af_xdp:\(veth.a)", extra: ["-w", "0"])
        try Self.waitFor(killed, "af_xdp:")
        killed.lb!.signal(SIGKILL)
        _ = try killed.lb!.wait(seconds: 30)

        var next = LBRun(dir: scratch.path + "/3", groups: [("t", 2)])
        try FileManager.default.createDirectory(atPath: next.dir, withIntermediateDirectories: true)
        try Self.startLB(&next, veth: veth, input: "af_xdp:\(veth.a)")
        defer { if let lb = next.lb { lb.signal(SIGKILL) } }
        try next.startConsumers()
        try Self.waitFor(next, "consumer attached", count: 2)
        let sent = try veth.replay([trace], pps: 1000)
        let stats = try Self.stop(next)
        #expect(stats.int("packets_received") == sent.packets)
        try LifecycleTests.checkGroups(next, expected: sent.packets, dir: next.dir)
    }

    /// What the socket accepted before a stop is taken on the way out: lb is stopped (SIGSTOP)
    /// while traces are sent, so they wait in the kernel's ring; then SIGTERM and SIGCONT, and
    /// lb's final counts cover every packet its socket held. ssh.pcap has frames above one
    /// UMEM frame: each comes as several buffers and makes a short batch with more waiting
    /// (lb once took those for an empty ring and napped, falling behind the wire).
    @Test(arguments: ["native", "af_packet"]) func stopTakesWhatTheSocketHolds(_ mode: String) throws {
        let veth = try VethPair()
        defer { veth.remove() }
        let scratch = try ScratchDirectory("live-stop-\(mode)")
        var run = LBRun(dir: scratch.path, groups: [("t", 2)])
        try Self.startLB(&run, veth: veth, input: mode == "af_packet" ? "af_packet:\(veth.a)" : "af_xdp:\(veth.a)")
        defer { if let lb = run.lb { lb.signal(SIGCONT); lb.signal(SIGKILL) } }
        try run.startConsumers()
        try Self.waitFor(run, "consumer attached", count: 2)
        run.lb!.signal(SIGSTOP)
        let sent = try veth.replay([Corpus.root + "/traces/ssh/ssh.pcap", Corpus.root + "/traces/smtp.pcap"], pps: 5000)
        usleep(500_000)             // AF_PACKET: the kernel retires the last block on its timeout
        run.lb!.signal(SIGTERM)
        run.lb!.signal(SIGCONT)
        let stats = try run.finish(seconds: 60)
        let received = stats.int("packets_received")
        #expect(stats.int("packets_dropped") == 0)
        if mode == "af_packet" {
            // TPACKET_V3 retires a block every 5 ms while packets come: a stopped reader's 32
            // blocks last 160 ms at this rate, then the kernel drops (counted in tp_drops)
            let kernel = stats.int("ingress", "af_packet", "tp_packets"), drops = stats.int("ingress", "af_packet", "tp_drops")
            #expect(kernel == sent.packets)
            #expect(received > 0 && received == kernel - drops, "lb took \(received) of the \(kernel - drops) its socket held")
        } else {
            #expect(received == sent.packets, "lb took \(received) of \(sent.packets) on its way out")
            #expect(stats.int("ingress", "xsk", "rx_ring_full") == 0)
            #expect(stats.int("ingress", "xsk", "multi_buffer_frames") > 0)
        }
        try LifecycleTests.checkGroups(run, expected: received, dir: scratch.path)
    }

    @Test func keepsReceivingAsAnOrdinaryUser() throws {
        let veth = try VethPair()
        defer { veth.remove() }
        let scratch = try ScratchDirectory("live-user")
        var run = LBRun(dir: scratch.path, groups: [("t", 2)])
        run.consumerEnvironment = ["LB_USER": "nobody"]   // consumers check that lb's socket and rings are nobody's
        // the consumers wait for the sockets before lb starts, so they connect the moment lb
        // listens: a socket listening as root, even briefly, is refused (as it once was)
        try run.startConsumers()
        defer { for c in run.consumers.values { c.signal(SIGKILL) } }
        try Self.startLB(&run, veth: veth, input: "af_xdp:\(veth.a)", extra: ["--user", "nobody", "-o", "1"])
        defer { if let lb = run.lb { lb.signal(SIGKILL) } }
        do { try Self.waitFor(run, "consumer attached", count: 2) } catch {
            throw TestFailure("\(error); consumers: \(run.consumers.values.map(\.stderr))")
        }
        try Self.waitFor(run, "running as nobody")
        let status = try String(contentsOfFile: "/proc/\(run.lb!.pid)/status", encoding: .utf8)
        let uidLine = status.split(separator: "\n").first { $0.hasPrefix("Uid:") } ?? ""
        let nobody = getpwnam("nobody").map { $0.pointee.pw_uid } ?? 65534
        #expect(uidLine.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().allSatisfy { $0 == "\(nobody)" },
                "lb runs as nobody: \(uidLine)")
        let capLine = status.split(separator: "\n").first { $0.hasPrefix("CapEff:") } ?? ""
        #expect(capLine.hasSuffix("0000000000000000"), "no capability left: \(capLine)")
        let trace = Corpus.root + "/traces/smtp.pcap"
        let sent = try veth.replay([trace], pps: 1000)
        usleep(1_200_000)            // one periodic stats line with the ingress counters
        let stats = try Self.stop(run)
        #expect(stats.int("packets_received") == sent.packets)
        #expect(stats.int("ingress", "xdp", "diverted") == sent.packets, "the XDP counters are readable after --user")
        try LifecycleTests.checkGroups(run, expected: sent.packets, dir: scratch.path)
        #expect(try veth.xdpOnA() == nil, "no XDP program after SIGTERM of an lb running as nobody")
    }

    /// Two RX queues: two sockets, two dispatch threads (pinned), two lanes in every ring; the
    /// traces are sent twice, from each CPU.
    @Test func twoQueuesTwoLanes() throws {
        let veth = try VethPair(queues: 2)
        defer { veth.remove() }
        let scratch = try ScratchDirectory("live-queues")
        var run = LBRun(dir: scratch.path, groups: [("t", 2)])
        try Self.startLB(&run, veth: veth, input: veth.a, extra: ["--cpus", "0,1", "--xdp-frames", "4096"])
        defer { if let lb = run.lb { lb.signal(SIGKILL) } }
        try run.startConsumers()
        try Self.waitFor(run, "consumer attached", count: 2)
        #expect(run.lb!.stderr.contains("queue(s) 0,1"), "\(run.lb!.stderr)")
        #expect(run.lb!.stderr.contains("per queue 4096 UMEM frames of 2048 bytes, an RX ring of 2048"), "\(run.lb!.stderr)")
        let traces = [Corpus.root + "/traces/smtp.pcap", Corpus.root + "/traces/tunnels/gtp/gtp2_different_udp_port.pcap",
                      Corpus.root + "/traces/wikipedia.pcap"]
        let first = try veth.replay(traces, pps: 2000, cpu: 0)
        let second = try veth.replay(traces, pps: 2000, cpu: 1)
        let stats = try Self.stop(run)
        let sent = first.packets + second.packets
        #expect(stats.int("packets_received") == sent)
        // the sending veth picks a TX queue per flow (its hash), the peer receives on the same
        // number: both queues get packets, and together all of them
        let q0 = stats.int("ingress", "queue_packets", "0"), q1 = stats.int("ingress", "queue_packets", "1")
        #expect(q0 > 0 && q1 > 0, "both queues received packets: \(q0), \(q1)")
        #expect(q0 + q1 == sent)
        try LifecycleTests.checkGroups(run, expected: sent - stats.int("fragments", "merged"), dir: scratch.path)
    }

    /// lb has the kernel run the interface's NAPI from a timer while it serves it (the sysfs
    /// knobs gro_flush_timeout and napi_defer_hard_irqs) and puts the old values back at exit;
    /// --napi-defer 0 leaves them alone, and AF_PACKET never touches them.
    @Test func napiDeferIsSetWhileRunningAndRestored() throws {
        let veth = try VethPair()
        defer { veth.remove() }
        let scratch = try ScratchDirectory("live-napi")
        func knobs() throws -> String {
            let (_, out, _) = try VethPair.run("/usr/sbin/ip", ["netns", "exec", veth.nsA, "cat", "/sys/class/net/\(veth.a)/gro_flush_timeout",
                                                               "/sys/class/net/\(veth.a)/napi_defer_hard_irqs"])
            return out.split(separator: "\n").joined(separator: " ")
        }
        #expect(try knobs() == "0 0")
        for (k, (input, extra, during)) in [("af_xdp:\(veth.a)", [String](), "200000 2"), ("af_xdp:\(veth.a)", ["--napi-defer", "50"], "50000 2"),
                                             ("af_xdp:\(veth.a)", ["--napi-defer", "0"], "0 0"), ("af_packet:\(veth.a)", [], "0 0")].enumerated() {
            var run = LBRun(dir: scratch.path + "/\(k)", groups: [("t", 1)])
            try FileManager.default.createDirectory(atPath: run.dir, withIntermediateDirectories: true)
            try Self.startLB(&run, veth: veth, input: input, extra: ["-w", "0"] + extra)
            defer { if let lb = run.lb { lb.signal(SIGKILL) } }
            try Self.waitFor(run, input.hasPrefix("af_xdp") ? "af_xdp:\(veth.a): \(extra == ["--napi-defer", "0"] ? "native" : "NAPI")" : "af_packet")
            usleep(200_000)
            #expect(try knobs() == during, "\(input) \(extra): \(run.lb!.stderr)")
            run.lb!.signal(SIGTERM)
            #expect(try run.lb!.wait(seconds: 30) == 0)
            #expect(try knobs() == "0 0", "restored after \(input) \(extra)")
        }
    }

    /// --xdp-frames sizes the UMEM and the RX ring: a power of two within bounds, only for live
    /// input; anything else is refused before lb touches an interface.
    @Test func xdpFramesIsCheckedBeforeAnythingStarts() throws {
        let scratch = try ScratchDirectory("live-frames")
        for (args, message) in [(["-i", "af_xdp:lo", "--xdp-frames", "3000"], "'3000' is invalid for '--xdp-frames <xdp-frames>': use a power of two from 1024 to 1048576"),
                                (["-i", "af_xdp:lo", "--xdp-frames", "512"], "'512' is invalid for '--xdp-frames <xdp-frames>': use a power of two"),
                                (["-i", "af_xdp:lo", "--xdp-frames", "2097152"], "'2097152' is invalid for '--xdp-frames <xdp-frames>': use a power of two"),
                                (["-i", "pcap:/dev/null", "--xdp-frames", "4096"], "are for live interfaces")] {
            let t = try Tool(Tool.lb, args + ["--run-dir", scratch.path], in: scratch.path, label: "frames")
            #expect(try t.wait(seconds: 60) != 0, "\(args)")
            #expect(t.stderr.contains(message), "\(args): \(t.stderr)")
        }
    }

    /// lb needs only CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF and CAP_IPC_LOCK: started by setpriv
    /// as nobody with exactly those (no root, no CAP_SYS_ADMIN, no CAP_PERFMON), it attaches,
    /// receives and detaches.
    @Test func fourCapabilitiesAreEnough() throws {
        let veth = try VethPair()
        defer { veth.remove() }
        let scratch = try ScratchDirectory("live-caps")
        var run = LBRun(dir: scratch.path, groups: [("t", 2)])
        run.consumerEnvironment = ["LB_USER": "nobody"]
        try FileManager.default.createDirectory(atPath: run.runDir, withIntermediateDirectories: true)
        chown(run.runDir, 65534, 65534)   // lb (nobody) must own its run directory
        try Self.buildXDPObject()
        let caps = "-all,+net_admin,+net_raw,+bpf,+ipc_lock"
        run.lb = try Tool("/usr/sbin/ip", ["netns", "exec", veth.nsA, "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                           "--inh-caps=\(caps)", "--ambient-caps=\(caps)", "--bounding-set=\(caps)",
                                           Tool.lb, "-i", "af_xdp:\(veth.a)", "-p", "t:2", "-w", "30", "--run-dir", run.runDir],
                          in: run.dir, label: "lb", environment: ["LB_XDP_OBJECT": Corpus.repoRoot + "/.build/bpf/lb_xdp.o"])
        defer { if let lb = run.lb { lb.signal(SIGKILL) } }
        try run.startConsumers()
        try Self.waitFor(run, "consumer attached", count: 2)
        let status = try String(contentsOfFile: "/proc/\(run.lb!.pid)/status", encoding: .utf8)
        let capLine = status.split(separator: "\n").first { $0.hasPrefix("CapEff:") } ?? ""
        #expect(capLine.hasSuffix("0000008000007000"), "CAP_NET_ADMIN, CAP_NET_RAW, CAP_IPC_LOCK and CAP_BPF only: \(capLine)")
        #expect(try veth.xdpOnA() != nil)
        let sent = try veth.replay([Corpus.root + "/traces/tunnels/gtp/gtp1_gn_normal_incl_fragmentation.pcap"], pps: 1000)
        let stats = try Self.stop(run)
        #expect(stats.int("packets_received") == sent.packets)
        try LifecycleTests.checkGroups(run, expected: sent.packets - stats.int("fragments", "merged"), dir: scratch.path)
        #expect(try veth.xdpOnA() == nil)
    }

    /// On an interface whose driver has no native XDP (a bridge), `--xdp-mode auto` falls back
    /// to generic mode and says so; `--xdp-mode native` refuses with the reason.
    @Test func fallsBackToGenericWithAMessage() throws {
        let veth = try VethPair()
        defer { veth.remove() }
        let bridge = "lbx\(getpid() % 100000)br"
        try VethPair.ip(["-n", veth.nsA, "link", "add", bridge, "type", "bridge"])
        try VethPair.ip(["-n", veth.nsA, "link", "set", bridge, "up"])
        let scratch = try ScratchDirectory("live-fallback")
        try Self.buildXDPObject()
        let env = ["LB_XDP_OBJECT": Corpus.repoRoot + "/.build/bpf/lb_xdp.o"]
        let native = try Tool("/usr/sbin/ip", ["netns", "exec", veth.nsA, Tool.lb, "-i", "af_xdp:\(bridge)", "--xdp-mode", "native",
                                               "-w", "0", "--run-dir", scratch.path + "/run1"], in: scratch.path, label: "lb-native", environment: env)
        #expect(try native.wait(seconds: 30) != 0)
        #expect(native.stderr.contains("cannot attach the XDP program to \(bridge) in native mode"), "\(native.stderr)")

        var run = LBRun(dir: scratch.path, groups: [("t", 2)])
        run.lb = try Tool("/usr/sbin/ip", ["netns", "exec", veth.nsA, Tool.lb, "-i", bridge, "-p", "t:2", "-w", "0", "--run-dir", run.runDir],
                          in: scratch.path, label: "lb", environment: env)
        defer { if let lb = run.lb { lb.signal(SIGKILL) } }
        try Self.waitFor(run, "af_xdp:\(bridge): generic XDP")
        #expect(run.lb!.stderr.contains("native XDP is not available"), "\(run.lb!.stderr)")
        #expect(run.lb!.stderr.contains("falling back to generic (SKB) mode"))
        let (_, link, _) = try VethPair.run("/usr/sbin/ip", ["-n", veth.nsA, "link", "show", bridge])
        #expect(link.contains("xdpgeneric"), "\(link)")
        run.lb!.signal(SIGTERM)
        #expect(try run.lb!.wait(seconds: 30) == 0)
        let (_, after, _) = try VethPair.run("/usr/sbin/ip", ["-n", veth.nsA, "link", "show", bridge])
        #expect(!after.contains("xdp"))
    }

    /// AF_PACKET: the interface goes down and up while lb runs; the socket's error is read and
    /// counted (not returned by poll() forever), and lb receives again after the interface is up.
    @Test func afPacketSurvivesInterfaceDownAndUp() throws {
        let veth = try VethPair()
        defer { veth.remove() }
        let scratch = try ScratchDirectory("live-down")
        var run = LBRun(dir: scratch.path, groups: [("t", 2)])
        try Self.startLB(&run, veth: veth, input: "af_packet:\(veth.a)")
        defer { if let lb = run.lb { lb.signal(SIGKILL) } }
        try run.startConsumers()
        try Self.waitFor(run, "consumer attached", count: 2)
        try VethPair.ip(["-n", veth.nsA, "link", "set", veth.a, "down"])
        usleep(300_000)
        try VethPair.ip(["-n", veth.nsA, "link", "set", veth.a, "up"])
        usleep(300_000)
        let sent = try veth.replay([Corpus.root + "/traces/smtp.pcap"], pps: 1000)
        let stats = try Self.stop(run)
        #expect(stats.int("packets_received") == sent.packets)
        #expect(stats.int("ingress", "af_packet", "socket_errors") >= 1, "the ENETDOWN was seen and counted")
        try LifecycleTests.checkGroups(run, expected: sent.packets, dir: scratch.path)
    }
}
