import Foundation
import Testing

/// Consumers that start before lb, and a consumer that dies in the middle of a replay.
@Suite struct LifecycleTests {
    /// A trace of many flows made by `lb gen`.
    static func trace(in dir: String, packets: Int = 3000, flows: Int = 300) throws -> String {
        let path = dir + "/gen.pcap"
        let (status, _) = try Tool.run(Tool.lb, ["gen", "-w", path, "--packets", "\(packets)", "--flows", "\(flows)", "--seed", "7"],
                                       in: dir, label: "gen")
        guard status == 0 else { throw TestFailure("lb gen failed") }
        return path
    }

    /// Checks that each group's files hold `expected` packets and that no flow is split.
    static func checkGroups(_ run: LBRun, expected: Int, dir: String) throws {
        for group in Set(run.rings.map(\.group)) {
            var total = 0
            var owner: [String: Int] = [:]
            var all: [(Int, PacketFlows)] = []
            var firsts: [String: String] = [:]
            for r in run.rings where r.group == group {
                for file in run.files(r) {
                    total += try LBRun.count(file, dir: dir)
                    let flows = try PacketFlows.read(file, in: dir, label: "tshark-\(group)\(r.index)-\(UUID().uuidString.prefix(4))")
                    firsts.merge(flows.firstFragments) { a, _ in a }
                    all.append((r.index, flows))
                }
            }
            #expect(total == expected, "group \(group) holds \(total) of \(expected) packets")
            var split: Set<String> = []
            for (ring, var flows) in all {
                flows.resolve(firsts)
                for f in Set(flows.flows) {
                    if let o = owner[f], o != ring { split.insert(f) } else { owner[f] = ring }
                }
            }
            #expect(split.isEmpty, "group \(group): flows split over rings: \(split.prefix(3))")
        }
    }

    @Test func consumersStartedBeforeLB() throws {
        let scratch = try ScratchDirectory("before")
        let trace = try Self.trace(in: scratch.path)
        var run = LBRun(dir: scratch.path)
        try run.startConsumers()
        usleep(500_000)                       // the consumers wait for lb's sockets
        try run.startLB(trace)
        let stats = try run.finish()
        #expect(stats.int("packets_received") == 3000)
        #expect(stats.int("packets_dropped") == 0)
        try Self.checkGroups(run, expected: 3000, dir: scratch.path)
    }

    /// a:1's consumer is killed (SIGKILL) during a paced replay and restarted later. The other
    /// rings get exactly what a clean run gives them; for a:1, lb accounts for every packet
    /// (forwarded + dropped equals the clean run's count) and its drops are counted.
    @Test func consumerKilledAndRestarted() throws {
        let scratch = try ScratchDirectory("killed")
        let trace = try Self.trace(in: scratch.path)

        let cleanDir = scratch.path + "/clean"
        try FileManager.default.createDirectory(atPath: cleanDir, withIntermediateDirectories: true)
        var clean = LBRun(dir: cleanDir)
        try clean.startLB(trace)
        try clean.startConsumers()
        let reference = try clean.finish()
        let refRings = reference["rings"] as! [String: [String: Any]]

        let runDir = scratch.path + "/killed"
        try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        var run = LBRun(dir: runDir)
        try run.startLB(trace, extra: ["--replay-rate", "1000"])
        try run.startConsumers()
        let victim = LBRun.Ring(group: "a", index: 1)
        usleep(1_000_000)
        run.consumers[victim]!.signal(SIGKILL)
        _ = try? run.consumers[victim]!.wait(seconds: 5)
        usleep(700_000)                       // a:1 has no consumer for a while
        try run.startConsumer(victim)
        let stats = try run.finish()
        let rings = stats["rings"] as! [String: [String: Any]]

        for r in run.rings {
            let now = rings[r.name]!, ref = refRings[r.name]!
            let refForwarded = ref.int("packets_forwarded")
            if r == victim {
                #expect(now.int("packets_forwarded") + now.int("packets_dropped") == refForwarded)
                #expect(now.int("dropped_no_consumer") > 0, "the killed ring's loss is counted")
                var inFiles = 0
                for f in run.files(r) { inFiles += try LBRun.count(f, dir: runDir) }
                #expect(inFiles <= now.int("packets_forwarded"))
                #expect(now.int("consumer_attaches") == 2)
            } else {
                #expect(now.int("packets_forwarded") == refForwarded, "\(r.name) forwarded differs")
                #expect(now.int("packets_dropped") == 0)
                #expect(try LBRun.count(run.files(r)[0], dir: runDir) == refForwarded, "\(r.name) file differs")
            }
        }
    }

    /// `-o 1` prints a JSON line per ring and one for lb every second, with netmap lb's field
    /// names, and a final set at the end.
    @Test func periodicStatsWithNetmapFieldNames() throws {
        let scratch = try ScratchDirectory("stats")
        let trace = try Self.trace(in: scratch.path, packets: 2500)
        var run = LBRun(dir: scratch.path, groups: [("s", 2)])
        try run.startLB(trace, extra: ["-o", "1", "--replay-rate", "1000"])
        try run.startConsumers()
        let final = try run.finish()
        #expect(final.int("packets_received") == 2500)
        var periodic = 0, ringLines = 0
        for line in run.lb!.stdout.split(separator: "\n") {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            for key in ["ts", "interface", "output_ring", "packets_forwarded", "packets_dropped", "data_forward_rate_Mbps",
                        "data_drop_rate_Mbps", "packet_forward_rate_kpps", "packet_drop_rate_kpps"] {
                #expect(obj[key] != nil, "\(key) missing in \(line)")
            }
            if obj["output_ring"] is NSNull {
                #expect(obj["packets_received"] != nil && obj["non_ip_packets"] != nil && obj["free_buffer_slots"] != nil)
                if obj["final"] as? Bool == false { periodic += 1 }
            } else {
                ringLines += 1
                #expect(obj["overflow_queue_size"] != nil && obj["consumer"] != nil)
            }
        }
        #expect(periodic >= 2, "expected a report every second during a ~2.5 s replay, got \(periodic)")
        #expect(ringLines == 2 * (periodic + 1))
    }
}
