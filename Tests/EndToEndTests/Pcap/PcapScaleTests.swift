import Foundation
import Testing

/// liblbpcap at scale and under loss: eight tcpdumps split a million packets, and a stopped
/// tcpdump on a live ring reports exactly the drops lb counts for that ring.
@Suite(.serialized) struct PcapScaleTests {
    /// `lb -i pcap:T -p p:8 -p c:8`: eight `tcpdump -i lb:p:K -w K.pcap` and eight `lb cat c:K`.
    /// Together the tcpdumps hold every packet of T exactly once (by time stamp, which lb gen makes
    /// unique), each ring's file is record for record lb cat's, nothing is dropped, and no flow
    /// (named by tshark, inner flows of tunnels, fragments with their datagram) is in two files.
    @Test func eightTcpdumpsSplitAMillionPackets() throws {
        try Pcap.requireBuilt()
        let scratch = try ScratchDirectory("pcap-million")
        let dir = scratch.path
        let trace = dir + "/million.pcap"
        let packets = 1_000_000
        let (gs, _) = try Tool.run(Tool.lb, ["gen", "-w", trace, "--packets", "\(packets)", "--flows", "20000", "--sizes", "60-300"],
                                   in: dir, label: "gen", seconds: 300)
        #expect(gs == 0)
        let input = try Pcap.records(trace)
        #expect(input.count == packets)
        var run = TwinRun(dir: dir, rings: 8)
        try run.start(input: "pcap:" + trace)
        let dumps = try (0..<8).map { k in
            try run.preloaded("/usr/bin/tcpdump", ["-i", "lb:p:\(k)", "-w", dir + "/p\(k).pcap", "-Z", "root"], label: "tcpdump-\(k)")
        }
        let stats = try run.finish(seconds: 300)
        #expect(stats.int("packets_received") == packets)
        #expect(stats.int("fragments", "merged") == 0 && stats.int("amsdu_subframes") == 0, "every input packet is delivered as one")
        let rings = stats["rings"] as? [String: [String: Any]] ?? [:]

        var times: [UInt64: Int] = [:]
        for p in input { times[UInt64(p.sec) << 32 | UInt64(p.frac), default: 0] += 1 }
        var delivered = 0
        var flowsByFile: [PacketFlows] = []
        var firsts: [String: String] = [:]
        for (k, td) in dumps.enumerated() {
            #expect(try td.wait(seconds: 60) == 0, "tcpdump p:\(k): \(td.stderr)")
            let ring = rings["p:\(k)"] ?? [:]
            #expect(ring.int("packets_dropped") == 0, "p:\(k): \(ring)")
            #expect(td.stderr.contains("\(ring.int("packets_forwarded")) packets captured") && td.stderr.contains("0 packets dropped by kernel"),
                    "p:\(k): \(td.stderr)")
            let got = try Pcap.records(dir + "/p\(k).pcap")
            #expect(got == (try Pcap.records(run.catFile(k))), "p:\(k) differs from lb cat's c:\(k)")
            #expect(got.count == ring.int("packets_forwarded"))
            delivered += got.count
            for r in got { times[UInt64(r.sec) << 32 | UInt64(r.frac), default: 0] -= 1 }
            let flows = try PacketFlows.read(dir + "/p\(k).pcap", in: dir, label: "tshark-\(k)")
            firsts.merge(flows.firstFragments) { a, _ in a }
            flowsByFile.append(flows)
        }
        #expect(delivered == packets)
        let unmatched = times.filter { $0.value != 0 }
        #expect(unmatched.isEmpty, "\(unmatched.count) time stamps not delivered exactly as often as in the input, e.g. \(unmatched.prefix(3))")
        var owner: [String: Int] = [:]
        var split: Set<String> = []
        for (k, var flows) in flowsByFile.enumerated() {
            flows.resolve(firsts)
            for f in Set(flows.flows) {
                if let o = owner[f], o != k { split.insert(f) } else { owner[f] = k }
            }
        }
        #expect(owner.count > 15000, "only \(owner.count) flows named")
        #expect(split.isEmpty, "\(split.count) flows in two files, e.g. \(split.prefix(3))")
    }

    /// A live ring whose tcpdump is stopped (SIGSTOP) while traffic flows: lb drops for that
    /// ring and counts it; when the tcpdump goes on and the stream ends, its "dropped by kernel"
    /// line is lb's packets_dropped for the ring, and what it captured plus what was dropped is
    /// what lb placed in the ring. The other ring loses nothing.
    @Test func aStoppedTcpdumpReportsLbsDropsForItsRing() throws {
        try Pcap.requireBuilt()
        let scratch = try ScratchDirectory("pcap-loss")
        let dir = scratch.path
        let trace = dir + "/t.pcap"
        let (gs, _) = try Tool.run(Tool.lb, ["gen", "-w", trace, "--packets", "30000", "--flows", "400", "--sizes", "60-600"],
                                   in: dir, label: "gen")
        #expect(gs == 0)
        let veth = try VethPair()
        defer { veth.remove() }
        let runDir = dir + "/run"
        // small rings so that a stopped reader fills its ring within the replay
        let lb = try Tool("/usr/sbin/ip", ["netns", "exec", veth.nsA, Tool.lb, "-i", "af_packet:" + veth.a, "-p", "p:2",
                                           "--run-dir", runDir, "-w", "30", "--ring-slots", "1024"],
                          in: dir, label: "lb")
        defer { lb.signal(SIGKILL); _ = try? lb.wait(seconds: 10) }
        try Pcap.waitForSocket(runDir, group: "p")
        let env = Pcap.env(runDir: runDir)
        let tds = try (0..<2).map { k in
            try Tool("/usr/bin/tcpdump", ["-i", "lb:p:\(k)", "-w", dir + "/p\(k).pcap", "-Z", "root"], in: dir, label: "tcpdump-\(k)",
                     environment: env)
        }
        defer { for t in tds { t.signal(SIGCONT); t.signal(SIGKILL); _ = try? t.wait(seconds: 5) } }
        let attached = eventually(20) { lb.stderr.contains("p:0: consumer attached") && lb.stderr.contains("p:1: consumer attached") }
        #expect(attached, "\(lb.stderr)")
        tds[0].signal(SIGSTOP)
        let sent = try veth.replay([trace], pps: 20000)
        #expect(sent.packets == 30000)
        usleep(300_000)
        tds[0].signal(SIGCONT)
        usleep(1_500_000)            // the reader drains; lb's ingress counters are published once a second
        lb.signal(SIGTERM)
        #expect(try lb.wait(seconds: 30) == 0, "\(lb.stderr)")
        let stats = try LBStats(lb.stdout).withRings
        let rings = stats["rings"] as? [String: [String: Any]] ?? [:]
        let stopped = rings["p:0"] ?? [:], running = rings["p:1"] ?? [:]
        let dropped = stopped.int("packets_dropped")
        #expect(dropped > 1000, "the stopped reader's ring should have dropped: \(stopped)")
        #expect(running.int("packets_dropped") == 0, "\(running)")
        for (k, td) in tds.enumerated() {
            #expect(try td.wait(seconds: 30) == 0, "tcpdump \(k): \(td.stderr)")
        }
        func line(_ text: String, _ suffix: String) -> Int? {
            text.split(separator: "\n").first { $0.hasSuffix(suffix) }.flatMap { Int($0.split(separator: " ")[0]) }
        }
        let captured = line(tds[0].stderr, "packets captured"), kernelDrops = line(tds[0].stderr, "packets dropped by kernel")
        #expect(kernelDrops == dropped, "tcpdump says \(kernelDrops ?? -1) dropped, lb says \(dropped): \(tds[0].stderr)")
        #expect(captured == stopped.int("packets_forwarded"), "\(tds[0].stderr) vs \(stopped)")
        #expect(line(tds[0].stderr, "packets received by filter") == stopped.int("packets_forwarded") + dropped)
        #expect(line(tds[1].stderr, "packets dropped by kernel") == 0)
        #expect(try Pcap.records(dir + "/p0.pcap").count == stopped.int("packets_forwarded"))
    }
}

/// Two RX queues, two lanes per ring (AF_XDP): the library reads both lanes of its ring and gets
/// the packets lb cat gets from the twin ring (as a set: the lanes interleave as the readers go).
@Suite(.serialized) struct PcapLaneTests {
    @Test func bothLanesOfALiveRing() throws {
        try Pcap.requireBuilt()
        try LiveIngressTests.buildXDPObject()
        let veth = try VethPair(queues: 2)
        defer { veth.remove() }
        let scratch = try ScratchDirectory("pcap-lanes")
        let dir = scratch.path
        let runDir = dir + "/run"
        let lb = try Tool("/usr/sbin/ip", ["netns", "exec", veth.nsA, Tool.lb, "-i", veth.a, "-p", "p:1", "-p", "c:1",
                                           "--run-dir", runDir, "-w", "30", "--cpus", "0,1", "--xdp-frames", "4096"],
                          in: dir, label: "lb", environment: ["LB_XDP_OBJECT": Corpus.repoRoot + "/.build/bpf/lb_xdp.o"])
        defer { lb.signal(SIGKILL); _ = try? lb.wait(seconds: 10) }
        try Pcap.waitForSocket(runDir, group: "p")
        let td = try Tool("/usr/bin/tcpdump", ["-i", "lb:p:0", "-w", dir + "/p0.pcap", "-Z", "root"], in: dir, label: "tcpdump",
                          environment: Pcap.env(runDir: runDir))
        let cat = try Tool(Tool.lb, ["cat", "c:0", "-w", dir + "/c0.pcap", "--run-dir", runDir], in: dir, label: "cat")
        defer { td.signal(SIGKILL); cat.signal(SIGKILL) }
        let attached = eventually(20) { lb.stderr.components(separatedBy: "consumer attached").count == 3 }
        #expect(attached, "\(lb.stderr)")
        #expect(lb.stderr.contains("queue(s) 0,1"), "\(lb.stderr)")
        let traces = [Corpus.root + "/traces/smtp.pcap", Corpus.root + "/traces/wikipedia.pcap"]
        let first = try veth.replay(traces, pps: 2000, cpu: 0)
        let second = try veth.replay(traces, pps: 2000, cpu: 1)
        usleep(500_000)
        lb.signal(SIGTERM)
        #expect(try lb.wait(seconds: 30) == 0, "\(lb.stderr)")
        #expect(try td.wait(seconds: 20) == 0, "\(td.stderr)")
        #expect(try cat.wait(seconds: 20) == 0)
        let stats = try LBStats(lb.stdout).withRings
        let q0 = stats.int("ingress", "queue_packets", "0"), q1 = stats.int("ingress", "queue_packets", "1")
        #expect(q0 > 0 && q1 > 0, "both queues received packets: \(q0), \(q1)")
        let got = try Pcap.records(dir + "/p0.pcap"), want = try Pcap.records(dir + "/c0.pcap")
        #expect(got.count == first.packets + second.packets - stats.int("fragments", "merged"))
        #expect(Dictionary(got.map { ($0, 1) }, uniquingKeysWith: +) == Dictionary(want.map { ($0, 1) }, uniquingKeysWith: +),
                "tcpdump and lb cat got other packets from the two lanes")
    }
}

/// The library's worker report: lb's stats and `lb check` see a tcpdump on a ring as they see
/// `lb cat`, and a stopped one is named by `lb check` as stuck.
@Suite(.serialized) struct PcapHealthTests {
    static func check(_ runDir: String, in dir: String) throws -> (Int32, String) {
        let t = try Tool(Tool.lb, ["check", "--run-dir", runDir, "--interval", "0.3", "--stuck", "1.5,2"],
                         in: dir, label: "check-\(UInt32.random(in: 0...UInt32.max))")
        let s = try t.wait(seconds: 30)
        return (s, t.stdout)
    }

    @Test func lbCheckNamesAStoppedTcpdump() throws {
        try Pcap.requireBuilt()
        let scratch = try ScratchDirectory("pcap-check")
        let dir = scratch.path
        let trace = dir + "/t.pcap"
        let (gs, _) = try Tool.run(Tool.lb, ["gen", "-w", trace, "--packets", "60000", "--flows", "400"], in: dir, label: "gen")
        #expect(gs == 0)
        let runDir = dir + "/run"
        let lb = try Tool(Tool.lb, ["-i", "pcap:" + trace, "-p", "a:3", "--run-dir", runDir, "-w", "60", "--replay-rate", "2000"],
                          in: dir, label: "lb")
        defer { lb.signal(SIGKILL); _ = try? lb.wait(seconds: 10) }
        try Pcap.waitForSocket(runDir, group: "a")
        let env = Pcap.env(runDir: runDir)
        let tds = try (0..<3).map { k in
            try Tool("/usr/bin/tcpdump", ["-i", "lb:a:\(k)", "-w", "/dev/null"], in: dir, label: "tcpdump-\(k)", environment: env)
        }
        defer { for t in tds { t.signal(SIGCONT); t.signal(SIGKILL); _ = try? t.wait(seconds: 5) } }
        var last = (Int32(-1), "")
        let ok = try eventually(20) { last = try Self.check(runDir, in: dir); return last.0 == 0 }
        #expect(ok, "not OK at first: \(last.1)")
        #expect(last.1.hasPrefix("LB OK - 3 rings OK"), "\(last.1)")
        // lb's stats show the library's report for each ring
        let st = try Tool(Tool.lb, ["stats", "--json", "--run-dir", runDir], in: dir, label: "stats")
        #expect(try st.wait(seconds: 20) == 0)
        for k in 0..<3 {
            let line = st.stdout.split(separator: "\n").first { $0.contains("\"interface\":\"a:\(k)\"") } ?? ""
            #expect(line.contains("\"consumer_pid\":\(tds[k].pid)"), "a:\(k): \(line)")
            #expect(line.contains("\"worker_report_pid\":\(tds[k].pid)"), "a:\(k): \(line)")
            // the report's age: the library refreshes it as it reads
            let age = line.split(separator: ",").first { $0.hasPrefix("\"worker_report_age_s\":") }
                .flatMap { Double($0.split(separator: ":")[1]) }
            #expect(age != nil && age! < 2, "a:\(k): \(line)")
        }
        tds[1].signal(SIGSTOP)
        let critical = try eventually(15) { last = try Self.check(runDir, in: dir); return last.0 == 2 }
        #expect(critical, "never CRITICAL: \(last.1)")
        #expect(last.1.hasPrefix("LB CRITICAL - a:1 consumer pid \(tds[1].pid) stuck"), "\(last.1)")
        #expect(last.1.contains("2 of 3 rings OK"), "\(last.1)")
        tds[1].signal(SIGCONT)
        let back = try eventually(15) { last = try Self.check(runDir, in: dir); return last.0 == 0 }
        #expect(back, "not OK after SIGCONT: \(last.1)")
    }
}
