import Foundation
import Testing

/// liblbpcap against the live-capture API, driven by the probe program (Tests/PcapProbe) and by
/// tcpdump: each read style the analyzers use, readiness through select/poll/epoll, the
/// program's own filter, the error paths, detaching, the device list, and what the library
/// leaves alone.
@Suite(.serialized) struct PcapAPITests {
    static func trace(in dir: String, packets: Int = 20000, flows: Int = 400) throws -> String {
        let file = dir + "/trace.pcap"
        let (s, _) = try Tool.run(Tool.lb, ["gen", "-w", file, "--packets", "\(packets)", "--flows", "\(flows)"], in: dir, label: "gen")
        guard s == 0 else { throw TestFailure("lb gen failed") }
        return file
    }

    @Test func everyConfigurationCallAndItsErrors() throws {
        try Pcap.requireBuilt()
        let scratch = try ScratchDirectory("pcap-api")
        let dir = scratch.path
        let runDir = dir + "/run"
        let trace = try Self.trace(in: dir, packets: 100)
        // two rings: lb keeps waiting for the second consumer, so no packet reaches the probe
        let lb = try ReplayLB(trace: trace, dir: dir, groups: ["p:2"])
        let probe = try Tool(Pcap.probe, ["api", "lb:p:0"], in: dir, label: "probe-api", environment: Pcap.env(runDir: runDir))
        #expect(try probe.wait(seconds: 30) == 0, "\(probe.stdout) \(probe.stderr)")
        let v = Pcap.values(probe.stdout)
        let expected: [String: String] = [
            "snapshot_before": "-3",              // PCAP_ERROR_NOT_ACTIVATED
            "set_snaplen": "0", "set_tstamp_precision_nano": "0",
            "set_tstamp_type_adapter": "3",       // PCAP_WARNING_TSTAMP_TYPE_NOTSUP
            "set_immediate": "0", "can_set_rfmon": "0",
            "activate": "0", "activate_again": "-4", "set_snaplen_after": "-4",   // PCAP_ERROR_ACTIVATED
            "snapshot": "2000", "tstamp_precision": "1", "datalink": "1", "datalinks": "1 first=1",
            "set_datalink_en10mb": "0", "set_datalink_raw": "-1", "tstamp_types": "1 first=host",
            "setdirection_inout": "0", "setdirection_in": "-1",
            "getnonblock": "0", "setnonblock": "0", "getnonblock_after": "1",
            "selectable_fd_valid": "1", "fileno_same": "1", "required_select_timeout_null": "1",
            "compile": "0", "setfilter": "0", "compile_bad": "-1",
            "inject": "-1", "sendpacket": "-1", "stats": "0", "next_ex_nonblock": "0",
            "lookupnet": "0 net=0 mask=0", "closed": "1",
        ]
        for (k, want) in expected.sorted(by: { $0.key < $1.key }) {
            #expect(v[k] == want, "\(k): \(v[k] ?? "missing"), expected \(want)")
        }
        #expect(v["set_datalink_raw_error"]?.contains("Ethernet") == true)
        #expect(v["setdirection_in_error"]?.contains("direction") == true)
        #expect(v["inject_error"]?.contains("receive-only") == true)
        #expect(v["compile_bad_error"]?.contains("eighty") == true, "libpcap's own compile error is kept: \(v)")
        // closing detached: the ring takes its next consumer
        let detached = eventually(5) { lb.stderr.contains("p:0: consumer disconnected") }
        #expect(detached, "\(lb.stderr)")
    }

    @Test(arguments: ["loop", "dispatch", "next_ex", "next", "select", "poll", "epoll"])
    func readStyleGetsWhatLbCatGets(_ mode: String) throws {
        try Pcap.requireBuilt()
        let scratch = try ScratchDirectory("pcap-read-\(mode)")
        let dir = scratch.path
        let trace = try Self.trace(in: dir)
        var run = TwinRun(dir: dir, rings: 2)
        try run.start(input: "pcap:" + trace)
        let probes = try (0..<2).map { k in
            try run.preloaded(Pcap.probe, ["read", "lb:p:\(k)", mode, dir + "/p\(k).pcap"], label: "probe-\(k)")
        }
        let stats = try run.finish()
        var total = 0
        for (k, probe) in probes.enumerated() {
            #expect(try probe.wait(seconds: 60) == 0, "\(mode) p:\(k): \(probe.stdout) \(probe.stderr)")
            let v = Pcap.values(probe.stdout)
            #expect(v["result"] == "0", "\(mode): the read ended with \(v["result"] ?? "?"): \(v["error"] ?? "")")
            if ["select", "poll", "epoll"].contains(mode) {
                #expect(v["idle_timeouts"] == "0", "\(mode): the descriptor stayed quiet for 2 s while packets flowed: \(v)")
            }
            let got = try Pcap.records(dir + "/p\(k).pcap"), want = try Pcap.records(run.catFile(k))
            #expect(got.count == want.count, "\(mode) p:\(k): \(got.count) packets, lb cat got \(want.count)")
            #expect(got == want, "\(mode) p:\(k): the packets differ from lb cat's")
            #expect(v["ps_recv"] == "\(want.count)" && v["ps_drop"] == "0", "\(mode): \(v)")
            total += got.count
        }
        #expect(total == stats.int("packets_received"))
        let rings = stats["rings"] as? [String: [String: Any]] ?? [:]
        for k in 0..<2 {
            #expect(rings["p:\(k)"]?.int("packets_dropped") == 0)
            // the library reports what the program took: lb shows it as the worker's report
            #expect(rings["p:\(k)"]?.int("packets_processed_by_worker") == rings["p:\(k)"]?.int("packets_forwarded"),
                    "\(rings["p:\(k)"] ?? [:])")
        }
    }

    @Test func theProgramsFilterApplies() throws {
        try Pcap.requireBuilt()
        let scratch = try ScratchDirectory("pcap-filter")
        let dir = scratch.path
        let trace = try Self.trace(in: dir)
        var run = TwinRun(dir: dir, rings: 1)
        try run.start(input: "pcap:" + trace)
        let filter = "(tcp and not port 80) or icmp6"
        let td = try run.preloaded("/usr/bin/tcpdump", ["-i", "lb:p:0", "-w", dir + "/p0.pcap", "-Z", "root", filter], label: "tcpdump")
        _ = try run.finish()
        #expect(try td.wait(seconds: 30) == 0, "\(td.stderr)")
        let (s, _) = try Tool.run("/usr/bin/tcpdump", ["-r", run.catFile(0), "-w", dir + "/want.pcap", filter], in: dir, label: "tcpdump-r")
        #expect(s == 0)
        let got = try Pcap.records(dir + "/p0.pcap"), want = try Pcap.records(dir + "/want.pcap")
        let all = try Pcap.records(run.catFile(0)).count
        #expect(want.count > 1000 && want.count < all, "the filter should pick a part: \(want.count) of \(all)")
        #expect(got == want, "\(got.count) packets through the filter, tcpdump -r picks \(want.count)")
        // tcpdump's own counts: every packet was taken and counted, the filter passed `got`
        #expect(td.stderr.contains("\(got.count) packets captured"), "\(td.stderr)")
    }

    @Test func badNamesAndNoLbAreClearErrors() throws {
        try Pcap.requireBuilt()
        let scratch = try ScratchDirectory("pcap-bad")
        let dir = scratch.path
        let runDir = dir + "/run"
        let trace = try Self.trace(in: dir, packets: 100)
        let lb = try ReplayLB(trace: trace, dir: dir, groups: ["zeek:2"])
        let cases: [(String, String)] = [
            ("lb:", "not a ring name"),
            ("lb:zeek", "not a ring name"),
            ("lb:zeek:99", "no ring zeek:99; this lb has zeek:0 to zeek:1"),
            ("lb:../x:0", "may contain only"),
            ("lbtap:a/b:0", "may contain only"),
            ("lb:zeek:-1", "must be 0 or more"),
            ("lb:zeek:1x", "must be 0 or more"),
            ("lb:\(String(repeating: "g", count: 40)):0", "1 to 31 characters"),
            ("lb:nolb:0", "no lb serves group 'nolb'"),
        ]
        for (i, (name, why)) in cases.enumerated() {
            let start = Date()
            let t = try Tool("/usr/bin/tcpdump", ["-i", name, "-c", "1", "-w", "/dev/null"], in: dir, label: "bad\(i)",
                             environment: Pcap.env(runDir: runDir, wait: 0))
            let s = try t.wait(seconds: 20)
            #expect(s == 1, "\(name): tcpdump exited \(s): \(t.stderr)")
            #expect(t.stderr.contains(why), "\(name): \(t.stderr)")
            #expect(Date().timeIntervalSince(start) < 5, "\(name): took \(Date().timeIntervalSince(start)) s")
        }
        // The ring is free after all that: a real consumer attaches.
        let probe = try Tool(Pcap.probe, ["api", "lb:zeek:1"], in: dir, label: "probe", environment: Pcap.env(runDir: runDir))
        #expect(try probe.wait(seconds: 20) == 0, "\(probe.stdout)")
        // With no lb at all (and no run directory), the same clear error.
        let none = try Tool("/usr/bin/tcpdump", ["-i", "lb:zeek:0", "-c", "1"], in: dir, label: "none",
                            environment: Pcap.env(runDir: dir + "/nothing-here", wait: 0))
        #expect(try none.wait(seconds: 20) == 1)
        #expect(none.stderr.contains("no lb serves group 'zeek'"), "\(none.stderr)")
    }

    @Test func oneConsumerPerRingAndAKilledOneLeavesItFree() throws {
        try Pcap.requireBuilt()
        let scratch = try ScratchDirectory("pcap-detach")
        let dir = scratch.path
        let runDir = dir + "/run"
        let trace = try Self.trace(in: dir, packets: 20000)
        let lb = try ReplayLB(trace: trace, dir: dir, groups: ["p:1"], extra: ["--replay-rate", "5000"])
        let env = Pcap.env(runDir: runDir)
        let first = try Tool("/usr/bin/tcpdump", ["-i", "lb:p:0", "-w", "/dev/null"], in: dir, label: "first", environment: env)
        let attached = eventually(10) { lb.stderr.contains("p:0: consumer attached (pid \(first.pid))") }
        #expect(attached, "\(lb.stderr)")
        let second = try Tool("/usr/bin/tcpdump", ["-i", "lb:p:0", "-w", "/dev/null"], in: dir, label: "second", environment: env)
        #expect(try second.wait(seconds: 10) == 1)
        #expect(second.stderr.contains("already has a consumer (pid \(first.pid))"), "\(second.stderr)")
        first.signal(SIGKILL)
        _ = try first.wait(seconds: 10)
        let gone = eventually(5) { lb.stderr.contains("p:0: consumer disconnected (pid \(first.pid))") }
        #expect(gone, "\(lb.stderr)")
        let third = try Tool("/usr/bin/tcpdump", ["-i", "lb:p:0", "-w", dir + "/third.pcap", "-Z", "root"], in: dir, label: "third",
                             environment: env)
        let again = eventually(10) { lb.stderr.contains("p:0: consumer attached (pid \(third.pid))") }
        #expect(again, "\(lb.stderr)")
        #expect(try lb.wait(seconds: 60) == 0, "\(lb.stderr)")
        #expect(try third.wait(seconds: 20) == 0, "\(third.stderr)")
        // What the killed one had taken is gone with it; the rest reached the third.
        let stats = try LBStats(lb.stdout).withRings
        let ring = (stats["rings"] as? [String: [String: Any]])?["p:0"] ?? [:]
        #expect(ring.int("consumer_attaches") == 2)
        let got = try Pcap.records(dir + "/third.pcap").count
        #expect(got > 0 && got <= ring.int("packets_forwarded"))
    }

    @Test func otherDevicesAndFilesAreLeftAlone() throws {
        try Pcap.requireBuilt()
        let scratch = try ScratchDirectory("pcap-alone")
        let dir = scratch.path
        let trace = try Self.trace(in: dir, packets: 3000)
        let env = Pcap.env(runDir: dir + "/run")
        // tcpdump -r and -w through the real libpcap: the same bytes with and without the library
        let (a, _) = try Tool.run("/usr/bin/tcpdump", ["-r", trace, "-w", dir + "/plain.pcap", "udp"], in: dir, label: "plain")
        let pre = try Tool("/usr/bin/tcpdump", ["-r", trace, "-w", dir + "/pre.pcap", "udp"], in: dir, label: "pre", environment: env)
        let preStatus = try pre.wait(seconds: 30)
        #expect(a == 0 && preStatus == 0, "\(pre.stderr)")
        let plain = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/plain.pcap")))
        let preloaded = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/pre.pcap")))
        #expect(plain == preloaded && plain.count > 1000)
        // a live capture on loopback
        let lo = try Tool("/usr/bin/tcpdump", ["-i", "lo", "-c", "4", "-nn", "icmp"], in: dir, label: "lo", environment: env)
        usleep(500_000)
        let (ps, _) = try Tool.run("/usr/bin/ping", ["-c", "6", "-i", "0.2", "127.0.0.1"], in: dir, label: "ping")
        #expect(ps == 0)
        #expect(try lo.wait(seconds: 20) == 0, "\(lo.stderr)")
        #expect(lo.stdout.split(separator: "\n").filter { $0.contains("ICMP echo") }.count == 4, "\(lo.stdout)")
    }

    @Test func ringsAreListedAsDevices() throws {
        try Pcap.requireBuilt()
        let scratch = try ScratchDirectory("pcap-list")
        let dir = scratch.path
        let runDir = dir + "/run"
        let trace = try Self.trace(in: dir, packets: 100)
        let lb = try ReplayLB(trace: trace, dir: dir, groups: ["zeek:3", "suri:1"])
        let env = Pcap.env(runDir: runDir)
        let td = try Tool("/usr/bin/tcpdump", ["-D"], in: dir, label: "tcpdump-D", environment: env)
        #expect(try td.wait(seconds: 20) == 0)
        for k in 0..<3 {
            #expect(td.stdout.contains("lb:zeek:\(k) (lb ring \(k) of 3 in group zeek (consumes it; lb pid \(lb.pid)))"), "\(td.stdout)")
            #expect(td.stdout.contains("lbtap:zeek:\(k) (lb ring zeek:\(k), read-only tap"), "\(td.stdout)")
        }
        #expect(td.stdout.contains("lb:suri:0") && td.stdout.contains(".lo "), "\(td.stdout)")
        // tshark asks dumpcap, which the environment reaches
        let ts = try Tool("/usr/bin/tshark", ["-D"], in: dir, label: "tshark-D", environment: env)
        #expect(try ts.wait(seconds: 60) == 0, "\(ts.stderr)")
        for name in ["lb:zeek:0", "lb:zeek:2", "lbtap:zeek:1", "lb:suri:0"] {
            #expect(ts.stdout.split(separator: "\n").contains { $0.hasSuffix(". " + name) }, "\(name) not in: \(ts.stdout)")
        }
        // listing is a tap: it took no ring
        #expect(!lb.stderr.contains("consumer attached"), "\(lb.stderr)")
    }

    @Test func breakloopAndTheReadTimeout() throws {
        try Pcap.requireBuilt()
        let scratch = try ScratchDirectory("pcap-break")
        let dir = scratch.path
        let runDir = dir + "/run"
        let trace = try Self.trace(in: dir, packets: 100)
        // two rings so lb keeps waiting for the second consumer: the probe's ring stays idle
        let lb = try ReplayLB(trace: trace, dir: dir, groups: ["p:2"])
        let b = try Tool(Pcap.probe, ["break", "lb:p:0"], in: dir, label: "break", environment: Pcap.env(runDir: runDir))
        #expect(try b.wait(seconds: 20) == 0, "\(b.stdout)")
        let v = Pcap.values(b.stdout)
        #expect(v["loop"] == "-2" && v["dispatch"] == "-2", "\(v)")
        for k in ["seconds", "seconds2"] { #expect((Double(v[k] ?? "") ?? 99) < 1.5, "\(k): \(v)") }
        let t = try Tool(Pcap.probe, ["timeout", "lb:p:0", "300"], in: dir, label: "timeout", environment: Pcap.env(runDir: runDir))
        #expect(try t.wait(seconds: 20) == 0, "\(t.stdout)")
        let tv = Pcap.values(t.stdout)
        let seconds = Double(tv["seconds"] ?? "") ?? 99
        #expect(tv["dispatch"] == "0" && seconds >= 0.29 && seconds < 1.0, "\(tv)")
    }

    @Test func aTapWatchesWithoutConsuming() throws {
        try Pcap.requireBuilt()
        let scratch = try ScratchDirectory("pcap-tap")
        let dir = scratch.path
        let runDir = dir + "/run"
        let trace = try Self.trace(in: dir, packets: 6000)
        let lb = try ReplayLB(trace: trace, dir: dir, groups: ["c:1"], extra: ["--replay-rate", "20000"])
        let tap = try Tool("/usr/bin/tcpdump", ["-i", "lbtap:c:0", "-w", dir + "/tap.pcap", "-Z", "root"], in: dir, label: "tap",
                           environment: Pcap.env(runDir: runDir))
        usleep(500_000)    // the tap starts at the ring's head: let it attach before the cat starts lb
        let cat = try Tool(Tool.lb, ["cat", "c:0", "-w", dir + "/cat.pcap", "--run-dir", runDir], in: dir, label: "cat")
        #expect(try lb.wait(seconds: 60) == 0, "\(lb.stderr)")
        #expect(try cat.wait(seconds: 20) == 0)
        #expect(try tap.wait(seconds: 20) == 0, "\(tap.stderr)")
        let tapped = try Pcap.records(dir + "/tap.pcap"), consumed = try Pcap.records(dir + "/cat.pcap")
        #expect(tapped == consumed, "the tap saw \(tapped.count) packets, the consumer \(consumed.count)")
        #expect(tap.stderr.contains("0 packets dropped by kernel"), "\(tap.stderr)")
        #expect(!lb.stderr.contains("consumer attached (pid \(tap.pid))"))
    }

    @Test func lbExecFindsTheLibrary() throws {
        try Pcap.requireBuilt()
        let scratch = try ScratchDirectory("pcap-exec")
        let dir = scratch.path
        let runDir = dir + "/run"
        let trace = try Self.trace(in: dir, packets: 2000)
        let lb = try ReplayLB(trace: trace, dir: dir, groups: ["p:1"])
        let td = try Tool(Tool.lb, ["exec", "--run-dir", runDir, "--wait", "30", "--library", Pcap.library, "--",
                                    "tcpdump", "-i", "lb:p:0", "-w", dir + "/x.pcap", "-Z", "root"], in: dir, label: "exec")
        #expect(try lb.wait(seconds: 60) == 0, "\(lb.stderr)")
        #expect(try td.wait(seconds: 20) == 0, "\(td.stderr)")
        #expect(try Pcap.records(dir + "/x.pcap").count == 2000)
        let missing = try Tool(Tool.lb, ["exec", "--library", Pcap.library, "--", "no-such-program-here"], in: dir, label: "missing")
        #expect(try missing.wait(seconds: 10) == 127)
        #expect(missing.stderr.contains("command not found"))
    }
}
