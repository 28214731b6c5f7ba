import Foundation

/// One run of `lb -i pcap:TRACE -p a:3 -p b:2` with an `lb cat` consumer per ring (or, for the
/// groups in `pcapGroups`, an unmodified tcpdump reading the ring through liblbpcap).
struct LBRun {
    struct Ring: Hashable { let group: String; let index: Int; var name: String { "\(group):\(index)" } }

    let dir: String
    let runDir: String
    let rings: [Ring]
    var lb: Tool? = nil
    var consumers: [Ring: Tool] = [:]
    /// how many times each ring's consumer was started (files are NAME.K.N.pcap)
    var starts: [Ring: Int] = [:]
    /// extra environment of the consumers (LB_USER when lb runs as another user)
    var consumerEnvironment: [String: String] = [:]
    /// groups whose rings tcpdump reads through liblbpcap (`tcpdump -i lb:G:K -w FILE`)
    var pcapGroups: Set<String> = []

    init(dir: String, groups: [(String, Int)] = [("a", 3), ("b", 2)]) {
        self.dir = dir
        runDir = dir + "/run"
        rings = groups.flatMap { g in (0..<g.1).map { Ring(group: g.0, index: $0) } }
    }

    var groupArgs: [String] {
        var counts: [(String, Int)] = []
        for r in rings {
            if let i = counts.firstIndex(where: { $0.0 == r.group }) { counts[i].1 += 1 } else { counts.append((r.group, 1)) }
        }
        return counts.flatMap { ["-p", "\($0.0):\($0.1)"] }
    }

    mutating func startLB(_ trace: String, extra: [String] = []) throws {
        lb = try Tool(Tool.lb, ["-i", "pcap:" + trace] + groupArgs + ["-w", "60", "--run-dir", runDir] + extra,
                      in: dir, label: "lb")
    }

    mutating func startConsumer(_ r: Ring) throws {
        let n = starts[r, default: 0]
        starts[r] = n + 1
        if pcapGroups.contains(r.group) {
            consumers[r] = try Tool("/usr/bin/tcpdump", ["-i", "lb:\(r.name)", "-w", file(r, n), "-Z", "root"], in: dir,
                                    label: "tcpdump-\(r.group)\(r.index)-\(n)", environment: Pcap.env(runDir: runDir, wait: 60))
            return
        }
        consumers[r] = try Tool(Tool.lb, ["cat", r.name, "-w", file(r, n), "--run-dir", runDir, "--wait", "60"],
                                in: dir, label: "cat-\(r.group)\(r.index)-\(n)", environment: consumerEnvironment)
    }

    mutating func startConsumers() throws { for r in rings { try startConsumer(r) } }

    func file(_ r: Ring, _ n: Int) -> String { dir + "/\(r.group).\(r.index).\(n).pcap" }
    func files(_ r: Ring) -> [String] { (0..<starts[r, default: 0]).map { file(r, $0) } }

    /// Waits for lb and the consumers; both must exit 0.
    func finish(seconds: Double = 120) throws -> [String: Any] {
        guard let lb else { throw TestFailure("lb not started") }
        let status = try lb.wait(seconds: seconds)
        for (r, c) in consumers {
            let s = try c.wait(seconds: 30)
            if s != 0 { throw TestFailure("\(c.label) (\(r.name)) exited \(s): \(c.stderr)") }
        }
        guard status == 0 else { throw TestFailure("lb exited \(status): \(lb.stderr)") }
        return try LBStats(lb.stdout).withRings
    }

    /// Packets in a pcap, counted by tcpdump (which must also read it without error).
    static func count(_ file: String, dir: String) throws -> Int {
        let t = try Tool("/usr/bin/tcpdump", ["-nn", "-r", file, "-w", "/dev/null", "--count"], in: dir,
                         label: "tcpdump-\(UUID().uuidString.prefix(6))")
        let status = try t.wait(seconds: 60)
        guard status == 0 else { throw TestFailure("tcpdump cannot read \(file): \(t.stderr)") }
        // tcpdump --count prints "N packets" on stdout
        let words = (t.stdout + " " + t.stderr).split(whereSeparator: { $0 == " " || $0 == "\n" })
        for (i, w) in words.enumerated() where w == "packets" || w == "packet" {
            if i > 0, let n = Int(words[i - 1]) { return n }
        }
        throw TestFailure("cannot read tcpdump's count for \(file): \(t.stdout) \(t.stderr)")
    }
}
