import Foundation
import LBCore
import LBGen
import Testing

/// A sensor host: a network namespace behind a veth pair (root side 10.77.K.1, namespace side
/// 10.77.K.2), running `lb -i udp::0.0.0.0:4789:vxlan -p zeek:2` with an `lb cat` per ring.
final class SensorHost {
    nonisolated(unsafe) static var counter = 0
    let ns: String, outer: String, inner: String, address: String
    let dir: String
    var lb: Tool? = nil
    var cats: [Tool] = []
    var starts = 0

    init(_ k: Int, dir: String) throws {
        SensorHost.counter += 1
        let tag = "\(getpid() % 10000)\(SensorHost.counter)"
        ns = "lbsn\(tag)"
        outer = "lbf\(tag)"
        inner = "lbs\(tag)"
        address = "10.77.\(k).2"
        self.dir = dir
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try VethPair.ip(["netns", "add", ns])
        try VethPair.ip(["link", "add", outer, "type", "veth", "peer", "name", inner, "netns", ns])
        try VethPair.ip(["addr", "add", "10.77.\(k).1/24", "dev", outer])
        try VethPair.ip(["link", "set", outer, "up"])
        try VethPair.ip(["-n", ns, "addr", "add", address + "/24", "dev", inner])
        try VethPair.ip(["-n", ns, "link", "set", inner, "up"])
        try VethPair.ip(["-n", ns, "link", "set", "lo", "up"])
    }

    var runDir: String { dir + "/run" }

    /// Starts the sensor's lb and its two consumers (files zeek.R.N.pcap, N = start number).
    func start() throws {
        lb = try Tool("/usr/sbin/ip", ["netns", "exec", ns, Tool.lb, "-i", "udp::0.0.0.0:4789:vxlan", "-p", "zeek:2",
                                       "--run-dir", runDir, "--rcvbuf", "32M", "-w", "30", "-o", "1"],
                      in: dir, label: "sensor-\(ns)-\(starts)")
        for r in 0..<2 {
            cats.append(try Tool(Tool.lb, ["cat", "zeek:\(r)", "-w", dir + "/zeek.\(r).\(starts).pcap", "--run-dir", runDir, "--wait", "30"],
                                 in: dir, label: "cat-\(ns)-\(r)-\(starts)"))
        }
        starts += 1
        guard try eventually(20, { self.lb!.stderr.contains("consumer attached") && self.lb!.stderr.split(separator: "\n").filter { $0.contains("consumer attached") }.count >= 2 }) else {
            throw TestFailure("sensor \(ns) did not start: \(lb!.stderr)")
        }
    }

    /// Stops the sensor (SIGINT: it ends its stream, the consumers finish their files).
    func stop(kill: Bool = false) throws {
        lb?.signal(kill ? SIGKILL : SIGINT)
        _ = try lb?.wait(seconds: 30)
        for c in cats { _ = try c.wait(seconds: 30) }
        cats = []
    }

    /// Every frame the sensor's rings delivered: (ring, start, frame).
    func delivered() throws -> [(ring: Int, start: Int, frame: [UInt8])] {
        var out: [(ring: Int, start: Int, frame: [UInt8])] = []
        for s in 0..<starts {
            for r in 0..<2 {
                let f = dir + "/zeek.\(r).\(s).pcap"
                guard FileManager.default.fileExists(atPath: f) else { continue }
                for p in try readCapture(f) { out.append((r, s, p.bytes)) }
            }
        }
        return out
    }

    func remove() {
        lb?.signal(SIGKILL)
        for c in cats { c.signal(SIGKILL) }
        _ = try? VethPair.run("/usr/sbin/ip", ["link", "del", outer], check: false)
        _ = try? VethPair.run("/usr/sbin/ip", ["netns", "del", ns], check: false)
    }
}

/// Forwarding a group to other hosts (issue 18; docs/scale-out.md): a front lb sends group
/// `sensors` inside VXLAN to two sensor hosts, each an lb with two rings.
@Suite(.serialized) struct ForwardTests {
    static let decoder = Decoder()

    /// The inner flow's hash of a delivered frame (what both tiers hash).
    static func flow(_ f: [UInt8]) -> UInt64 { f.withUnsafeBytes { decoder.flowHash(decoder.decode($0, link: .ethernet)) } }

    static func generate(_ path: String, packets: Int, seed: Int, dir: String) throws {
        let (s, _, err) = try Proc.run(Tool.lb, ["gen", "-w", path, "--packets", "\(packets)", "--seed", "\(seed)"], in: dir, label: "gen")
        guard s == 0 else { throw TestFailure("lb gen: \(err)") }
    }

    /// What an unforwarded group receives of the trace (the reference), as a multiset.
    static func reference(_ trace: String, dir: String) throws -> [[UInt8]: Int] {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var run = LBRun(dir: dir, groups: [("ref", 1)])
        try run.startLB(trace)
        try run.startConsumers()
        _ = try run.finish()
        var m: [[UInt8]: Int] = [:]
        for f in try readCapture(run.files(run.rings[0])[0]) { m[f.bytes, default: 0] += 1 }
        return m
    }

    @Test func aFrontSpreadsOverTwoSensorsExactlyOnceAndEvenly() throws {
        let scratch = try ScratchDirectory("forward")
        let trace = scratch.path + "/mix.pcap"
        try Self.generate(trace, packets: 20000, seed: 21, dir: scratch.path)
        let s1 = try SensorHost(1, dir: scratch.path + "/s1"), s2 = try SensorHost(2, dir: scratch.path + "/s2")
        defer { s1.remove(); s2.remove() }
        try s1.start()
        try s2.start()
        let front = try Tool(Tool.lb, ["-i", "pcap:" + trace, "-p", "sensors:vxlan=\(s1.address),\(s2.address)", "--run-dir", scratch.path + "/front",
                                       "--replay-rate", "20000", "-w", "30"], in: scratch.path, label: "front")
        #expect(try front.wait(seconds: 120) == 0, "\(front.stderr)")
        usleep(500_000)
        try s1.stop()
        try s2.stop()
        let want = try Self.reference(trace, dir: scratch.path + "/ref")
        let got1 = try s1.delivered(), got2 = try s2.delivered()
        var got: [[UInt8]: Int] = [:]
        for d in got1 + got2 { got[d.frame, default: 0] += 1 }
        #expect(got.values.reduce(0, +) == 20000 && got == want, "every packet once: \(got.values.reduce(0, +)) delivered")
        // no flow on two hosts or two rings
        var place: [UInt64: String] = [:]
        var split = 0
        for (host, ds) in [("s1", got1), ("s2", got2)] {
            for d in ds {
                let at = "\(host):\(d.ring)"
                if let p = place[Self.flow(d.frame)], p != at { split += 1 } else { place[Self.flow(d.frame)] = at }
            }
        }
        #expect(split == 0, "\(split) packets of flows seen elsewhere")
        // even: each of the four rings holds a fair share of the flows (the tiers' buckets are
        // independent; with the same bits at both tiers one ring per sensor would get nothing)
        var flows: [String: Int] = [:]
        for p in place.values { flows[p, default: 0] += 1 }
        let total = Double(place.count)
        for ring in ["s1:0", "s1:1", "s2:0", "s2:1"] {
            let share = Double(flows[ring] ?? 0) / total
            #expect(share > 0.18 && share < 0.32, "\(ring) has \(flows[ring] ?? 0) of \(place.count) flows")
        }
        #expect(front.stderr.contains("forward sensors:0 → vxlan \(s1.address):4789"))
        // the trace's 1514-byte inner frames make 1564-byte datagrams: over the veth's 1500, fragmented and counted
        let fstats = try LBStats(front.stdout)
        let fragmented = (fstats.aggregate["forward_fragmented"] as? [String: Any])?.values.compactMap { ($0 as? NSNumber)?.intValue }.reduce(0, +) ?? 0
        #expect(fragmented > 0)
        let udp = try LBStats(s1.lb!.stdout).aggregate["udp"] as? [String: Any]
        #expect(((udp?["keepalives_answered"] as? NSNumber)?.intValue ?? 0) > 0)
    }

    /// The same with a live front: lb on a veth (AF_XDP), the trace sent into it by tcpreplay
    /// from the other end's namespace.
    @Test func aLiveFrontForwardsExactlyOnce() throws {
        let scratch = try ScratchDirectory("forward-live")
        let trace = scratch.path + "/mix.pcap"
        try Self.generate(trace, packets: 5000, seed: 24, dir: scratch.path)
        let s1 = try SensorHost(7, dir: scratch.path + "/s1"), s2 = try SensorHost(8, dir: scratch.path + "/s2")
        let wire = try SensorHost(9, dir: scratch.path + "/wire")      // tcpreplay's namespace, lb on its root end
        defer { s1.remove(); s2.remove(); wire.remove() }
        // the trace's VXLAN frames are 1564 bytes
        try VethPair.ip(["link", "set", wire.outer, "mtu", "1600"])
        try VethPair.ip(["-n", wire.ns, "link", "set", wire.inner, "mtu", "1600"])
        try s1.start()
        try s2.start()
        try LiveIngressTests.buildXDPObject()
        let front = try Tool(Tool.lb, ["-i", "af_xdp:\(wire.outer)", "-p", "sensors:vxlan=\(s1.address),\(s2.address)",
                                       "--run-dir", scratch.path + "/front", "-w", "30"],
                             in: scratch.path, label: "front", environment: ["LB_XDP_OBJECT": Corpus.repoRoot + "/.build/bpf/lb_xdp.o"])
        defer { front.signal(SIGKILL) }
        #expect(try eventually(30) { front.stderr.components(separatedBy: "consumer attached").count == 3 }, "\(front.stderr)")
        let (st, out, err) = try VethPair.run("/usr/sbin/ip", ["netns", "exec", wire.ns, "tcpreplay", "-i", wire.inner, "--pps", "5000", trace],
                                              check: false, seconds: 120)
        #expect(st == 0, "\(out) \(err)")
        usleep(1_000_000)
        front.signal(SIGINT)
        #expect(try front.wait(seconds: 30) == 0, "\(front.stderr)")
        usleep(500_000)
        try s1.stop()
        try s2.stop()
        let want = try Self.reference(trace, dir: scratch.path + "/ref")
        var got: [[UInt8]: Int] = [:]
        var place: [UInt64: Int] = [:]
        var split = 0
        for (k, d) in (try s1.delivered().map { (0, $0) } + s2.delivered().map { (1, $0) }) where want[d.frame] != nil {
            got[d.frame, default: 0] += 1
            let at = k * 2 + d.ring, h = Self.flow(d.frame)
            if let p = place[h], p != at { split += 1 } else { place[h] = at }
        }
        #expect(got == want, "\(got.values.reduce(0, +)) of \(want.values.reduce(0, +)) packets of the trace arrived; \(front.stdout.split(separator: "\n").last ?? "")")
        #expect(split == 0)
    }

    /// Killing one sensor's lb moves its flows to the other within the failover time (its
    /// keepalives go unanswered: 1.5 s, then --failover 1); restarting it brings them back.
    @Test func aDeadSensorsFlowsMoveAndComeBack() throws {
        let scratch = try ScratchDirectory("forward-failover")
        let trace = scratch.path + "/mix.pcap"
        try Self.generate(trace, packets: 40000, seed: 22, dir: scratch.path)
        let s1 = try SensorHost(3, dir: scratch.path + "/s1"), s2 = try SensorHost(4, dir: scratch.path + "/s2")
        defer { s1.remove(); s2.remove() }
        try s1.start()
        try s2.start()
        let front = try Tool(Tool.lb, ["-i", "pcap:" + trace, "-p", "sensors:vxlan=\(s1.address),\(s2.address)", "--run-dir", scratch.path + "/front",
                                       "--replay-rate", "4000", "-w", "30", "--failover", "1", "-o", "1"], in: scratch.path, label: "front")
        usleep(2_000_000)
        try s1.stop(kill: true)                             // 8000 packets in
        #expect(try eventually(10) { front.stderr.contains("sensors:0") && front.stderr.contains("down") }, "\(front.stderr)")
        // lb check names the member whose sensor is gone (its ring has no consumer)
        let (cs, cout, _) = try Proc.run(Tool.lb, ["check", "--run-dir", scratch.path + "/front", "--interval", "0"], in: scratch.path, label: "check")
        #expect(cs == 2 && cout.contains("sensors:0"), "\(cs) \(cout)")
        usleep(2_500_000)
        try s1.start()                                       // about 6 s in
        #expect(try front.wait(seconds: 60) == 0, "\(front.stderr)")
        usleep(500_000)
        try s1.stop()
        try s2.stop()
        #expect(front.stderr.contains("sensors:0") && front.stderr.contains("up again"), "\(front.stderr)")
        let stats = try LBStats(front.stdout)
        #expect((stats.int("sensors:0", "failovers") ?? 0) >= 1, "\(stats.rings["sensors:0"] ?? [:])")
        #expect(((stats.aggregate["forward_downs"] as? [String: Any])?["sensors:0"] as? NSNumber)?.intValue == 1)
        let got1 = try s1.delivered(), got2 = try s2.delivered()
        // the front's member for a flow when both are live: its bucket (bits 20-31 of the hash) modulo 2
        // (the test hashes each frame alone: a later fragment, which lb hashes as its first, may
        // come out otherwise, hence "almost all")
        func home(_ f: [UInt8]) -> Int { Int((Self.flow(f) >> 20) & 0xFFF) % 2 }
        func almostAll(_ x: [(ring: Int, start: Int, frame: [UInt8])]) -> Bool { x.filter { home($0.frame) == 0 }.count * 100 >= x.count * 95 }
        let before = got1.filter { $0.start == 0 }, after = got1.filter { $0.start == 1 }
        let moved = got2.filter { home($0.frame) == 0 }
        #expect(!before.isEmpty && almostAll(before))
        #expect(moved.count > 1000, "sensor 2 took over sensor 1's buckets: \(moved.count) packets")
        #expect(after.count > 1000 && almostAll(after), "sensor 1 got its buckets back: \(after.count) packets, \(after.filter { home($0.frame) == 0 }.count) of its own; \(front.stderr.split(separator: "\n").joined(separator: " | "))")
        // what neither sensor got was dropped and counted by the front (no consumer, send errors),
        // or sent to the dead host before the front noticed (bounded by the detection time)
        let dropped = stats.int("sensors:0", "packets_dropped") ?? 0
        let failed = stats.int("sensors:0", "worker_loss_gaps") ?? 0
        let lost = 40000 - got1.count - got2.count - dropped - failed
        #expect(lost >= 0 && lost < 4000 * 2, "\(got1.count) + \(got2.count) delivered, \(dropped) dropped, \(failed) send errors, \(lost) lost")
    }

    /// Tool ports: group `tools` sends out of two local interfaces; tcpdump on their peers sees
    /// every packet once, and each flow on one port.
    /// Tool ports: `auto` (a veth has no zero-copy AF_XDP TX: AF_PACKET), AF_PACKET forced (as
    /// `--user nobody`), and AF_XDP TX forced (copy mode). The ports have an MTU of 9000 and the
    /// trace has jumbo frames, larger than an AF_XDP UMEM frame (those go by AF_PACKET).
    /// AF_PACKET delivers every packet exactly once; AF_XDP TX in copy mode loses the frames the
    /// veth refuses when its peer's backlog is full (a loaded machine), and each such loss is
    /// counted in forward_send_errors: delivered + counted = sent, and none twice.
    @Test(arguments: ["auto", "af_packet", "af_xdp"]) func toolPortsGetEveryPacketOnceWithoutSplittingAFlow(_ tx: String) throws {
        let scratch = try ScratchDirectory("forward-ports-\(tx)")
        let generated = scratch.path + "/gen.pcap", trace = scratch.path + "/mix.pcap"
        try Self.generate(generated, packets: 5000, seed: 23, dir: scratch.path)
        var packets = try readCapture(generated).map { (timestampNanos: $0.timestampNanos, bytes: $0.bytes) }
        let last = packets.last?.timestampNanos ?? 0
        for i in 0..<20 {
            let payload = (0..<(5000 + i * 100)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i) }
            let frame = PacketBuilder.build([.ethernet(), .ipv4(src: "10.9.0.1", dst: IPv4(UInt32(0x0A09_0100 + i)), id: UInt16(i)),
                                             .udp(sport: UInt16(30000 + i), dport: 9999), .payload(payload)])
            packets.append((last + UInt64(i + 1) * 1_000_000, frame))
        }
        try Data(LBCore.Pcap.file(linkType: 1, nanosecond: false, packets: packets)).write(to: URL(fileURLWithPath: trace))
        let p1 = try SensorHost(5, dir: scratch.path + "/p1"), p2 = try SensorHost(6, dir: scratch.path + "/p2")
        defer { p1.remove(); p2.remove() }
        for p in [p1, p2] {
            try VethPair.ip(["link", "set", p.outer, "mtu", "9000"])
            try VethPair.ip(["-n", p.ns, "link", "set", p.inner, "mtu", "9000"])
        }
        var dumps: [Tool] = []
        for (i, p) in [p1, p2].enumerated() {
            dumps.append(try Tool("/usr/sbin/ip", ["netns", "exec", p.ns, "/usr/bin/tcpdump", "-i", p.inner, "-w", scratch.path + "/port\(i).pcap",
                                                   "-U", "-s", "0", "-n", "-Z", "root"], in: scratch.path, label: "tcpdump\(i)"))
        }
        #expect(try eventually(10) { dumps.allSatisfy { $0.stderr.contains("listening on") } })
        let front = try Tool(Tool.lb, ["-i", "pcap:" + trace, "-p", "tools:port=\(p1.outer),\(p2.outer)", "--run-dir", scratch.path + "/front",
                                       "--replay-rate", "10000", "-w", "30", "--forward-port-tx", tx]
                             // the ports' sockets are opened before lb becomes another user
                             + (tx == "af_packet" ? ["--user", "nobody"] : []), in: scratch.path, label: "front")
        #expect(try front.wait(seconds: 60) == 0, "\(front.stderr)")
        let how = tx == "af_xdp" ? "AF_XDP TX (copy mode)" : "AF_PACKET"
        if tx == "af_packet" { #expect(front.stderr.contains("running as nobody"), "\(front.stderr)") }
        if tx == "auto" { #expect(front.stderr.contains("no zero-copy AF_XDP TX"), "\(front.stderr)") }
        #expect(front.stderr.components(separatedBy: "tools:1 → port \(p2.outer): \(how)").count == 2
                && front.stderr.components(separatedBy: "tools:0 → port \(p1.outer): \(how)").count == 2, "\(front.stderr)")
        usleep(1_000_000)
        // -U writes every packet out at once, so killing loses nothing (tcpdump started under
        // `ip netns exec` by the test runner did not end on SIGINT or SIGTERM; not investigated)
        for d in dumps { d.signal(SIGKILL); _ = try d.wait(seconds: 10) }
        let want = try Self.reference(trace, dir: scratch.path + "/ref")
        var got: [[UInt8]: Int] = [:]
        var port: [UInt64: Int] = [:]
        var split = 0
        for i in 0..<2 {
            for f in try readCapture(scratch.path + "/port\(i).pcap") where want[f.bytes] != nil {
                got[f.bytes, default: 0] += 1
                let h = Self.flow(f.bytes)
                if let p = port[h], p != i { split += 1 } else { port[h] = i }
            }
        }
        #expect(split == 0)
        let stats = try LBStats(front.stdout)
        #expect((stats.int("tools:0", "packets_processed_by_worker") ?? 0) + (stats.int("tools:1", "packets_processed_by_worker") ?? 0) == 5020)
        #expect(want.keys.filter { $0.count > 5000 }.count == 20)
        let sendErrors = stats.aggregate["forward_send_errors"] as? [String: Any]
        let lost = sendErrors?.values.reduce(0) { $0 + (($1 as? NSNumber)?.intValue ?? 0) } ?? -1
        let seen = got.values.reduce(0, +), total = want.values.reduce(0, +)
        #expect(got.allSatisfy { want[$0.key]! >= $0.value }, "a packet arrived twice")
        if tx == "af_xdp" {
            #expect(seen + lost == total, "tcpdump saw \(seen) of \(total) packets, \(lost) counted as lost")
        } else {
            #expect(got == want && lost == 0, "tcpdump saw \(seen) of \(total) packets, \(lost) counted as lost")
        }
    }

    /// `--forward-vni GROUP=packet`: the VXLAN header carries each packet's own tunnel id (the
    /// VNI it came in), and the group's VNI for packets that came without a tunnel; read from
    /// the wire by tcpdump in the receiving namespace.
    @Test func thePacketsOwnVNI() throws {
        let scratch = try ScratchDirectory("forward-own-vni")
        var packets: [(timestampNanos: UInt64, bytes: [UInt8])] = []
        var want: [UInt16: UInt32] = [:]            // inner IPv4 id -> VNI on the wire
        for i in 0..<60 {
            let ip: [Layer] = [.ipv4(src: "10.5.0.1", dst: IPv4(UInt32(0x0A05_0100 + i % 7)), id: UInt16(1000 + i)),
                               .udp(sport: UInt16(20000 + i), dport: 53), .payload([UInt8](repeating: UInt8(i), count: 30))]
            let frame: [UInt8]
            if i % 6 == 5 {
                frame = PacketBuilder.build([.ethernet()] + ip)
                want[UInt16(1000 + i)] = 7                                   // the group's VNI
            } else {
                let vni = UInt32(100 + i % 5)
                frame = PacketBuilder.build([.ethernet(), .ipv4(src: "192.0.2.1", dst: "192.0.2.2"), .udp(sport: 40000, dport: 4789),
                                             .vxlan(vni: vni), .ethernet(src: "02:00:00:00:00:aa")] + ip)
                want[UInt16(1000 + i)] = vni
            }
            packets.append((1_700_000_000_000_000_000 + UInt64(i) * 1_000_000, frame))
        }
        let trace = scratch.path + "/t.pcap"
        try Data(LBCore.Pcap.file(linkType: 1, nanosecond: false, packets: packets)).write(to: URL(fileURLWithPath: trace))
        let host = try SensorHost(10, dir: scratch.path + "/h")
        defer { host.remove() }
        let dump = try Tool("/usr/sbin/ip", ["netns", "exec", host.ns, "/usr/bin/tcpdump", "-i", host.inner, "-w", scratch.path + "/wire.pcap",
                                             "-U", "--immediate-mode", "-s", "0", "-n", "-Z", "root", "udp port 4789"], in: scratch.path, label: "tcpdump")
        defer { dump.signal(SIGKILL) }
        #expect(try eventually(10) { dump.stderr.contains("listening on") })
        let front = try Tool(Tool.lb, ["-i", "pcap:" + trace, "-p", "s:vxlan=\(host.address)", "--no-forward-keepalive",
                                       "--forward-vni", "s=7", "--forward-vni", "s=packet", "--run-dir", scratch.path + "/front",
                                       "--replay-rate", "2000", "-w", "30"], in: scratch.path, label: "front")
        #expect(try front.wait(seconds: 60) == 0, "\(front.stderr)")
        usleep(500_000)
        dump.signal(SIGKILL)
        _ = try dump.wait(seconds: 10)
        var got: [UInt16: UInt32] = [:]
        for f in try readCapture(scratch.path + "/wire.pcap") where f.bytes.count > 50 + 14 + 20 {
            let b = f.bytes
            let vni = UInt32(b[46]) << 16 | UInt32(b[47]) << 8 | UInt32(b[48])   // Ethernet 14 + IPv4 20 + UDP 8 + 4
            let id = UInt16(b[50 + 14 + 4]) << 8 | UInt16(b[50 + 14 + 5])
            got[id] = vni
        }
        #expect(got == want, "\(got.count) packets on the wire; front: \(front.stderr); tcpdump: \(dump.stderr)")
    }

    /// Bad member lists stop lb before it starts, naming the problem.
    @Test func badMemberListsAreUsageErrors() throws {
        let scratch = try ScratchDirectory("forward-bad")
        for (args, message) in [(["-p", "s:vxlan=10.0.0.300"], "not an IPv4 or IPv6 address"),
                                (["-p", "s:vxlan=10.0.0.1:0"], "bad port"),
                                (["-p", "s:vxlan=[2001:db8::1"], "not closed"),
                                (["-p", "s:vxlan="], "no address"),
                                (["-p", "s:port="], "no interface"),
                                (["-p", "s:vxlan=10.0.0.1", "--forward-vni", "t=5"], "no forwarded group"),
                                (["-p", "s:vxlan=10.0.0.1", "--forward-vni", "s=16777216"], "VNI below 16777216"),
                                (["-p", "s:vxlan=10.0.0.1", "--forward-vni", "t=packet"], "no forwarded group")] {
            let (st, _, err) = try Proc.run(Tool.lb, ["-i", "pcap:/dev/null", "--run-dir", scratch.path + "/run"] + args, in: scratch.path, label: "bad")
            #expect(st == 64 && err.contains(message), "\(args): \(st) \(err)")
        }
    }
}
