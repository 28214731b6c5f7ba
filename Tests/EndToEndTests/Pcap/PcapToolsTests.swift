import Foundation
import Testing

/// Unmodified Debian programs on lb's rings through liblbpcap, each compared with the same
/// program reading `lb cat`'s file of the twin ring (every group gets every packet, placed by the
/// same hash): tcpdump and tshark the same packets, ngrep the same matches, tcpflow the same
/// streams, softflowd and argus the same flow records, p0f the same observations. Each runs on a
/// capture replay and on a live lb on a veth pair. /work/research notes, docs/analyzers.md: how
/// each program ends (softflowd only through its control socket).
@Suite(.serialized) struct PcapToolsTests {
    /// One program: how it reads a device and a file, and what of its output is compared.
    struct Program: CustomStringConvertible, Sendable {
        let name: String
        /// arguments to read DEVICE (or FILE, with `file`), writing under OUT (a directory of its own)
        let args: @Sendable (_ source: String, _ file: Bool, _ out: String) -> [String]
        /// the status it exits with at the end of the stream on a live device (nil: it does not end by itself)
        let endStatus: Int32?
        /// what is compared: from its stdout, stderr and output directory
        let result: @Sendable (_ stdout: String, _ stderr: String, _ out: String) throws -> [String]
        var description: String { name }
    }

    static func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }

    static func run(_ path: String, _ args: [String], dir: String) throws -> String {
        let t = try Tool(path, args, in: dir, label: "run-\(UUID().uuidString.prefix(6))")
        guard try t.wait(seconds: 60) == 0 else { throw TestFailure("\(path) \(args) failed: \(t.stderr)") }
        return t.stdout
    }

    static let programs: [Program] = [
        Program(name: "tcpdump", args: { s, file, out in [file ? "-r" : "-i", s, "-w", out + "/x.pcap", "-Z", "root"] }, endStatus: 0,
                result: { _, _, out in try Pcap.records(out + "/x.pcap").map { "\($0.sec).\($0.frac) \($0.len) \($0.data)" } }),
        Program(name: "tshark", args: { s, file, out in [file ? "-r" : "-i", s, "-w", out + "/x.pcapng"] }, endStatus: 0,
                result: { _, _, out in
                    // dumpcap asks for nanoseconds, lb cat writes microseconds: compare to the microsecond
                    try lines(run("/usr/bin/tshark", ["-r", out + "/x.pcapng", "-T", "fields", "-e", "frame.time_epoch", "-e", "frame.len",
                                                      "-e", "frame.cap_len", "-e", "frame.protocols", "-e", "tcp.seq_raw"], dir: out))
                        .map { $0.replacing(#/^(\d+\.\d{6})\d*/#) { m in String(m.output.1) } }
                }),
        Program(name: "ngrep", args: { s, file, out in ["-q", "-t", "-R", "-x", file ? "-I" : "-d", s, ""] }, endStatus: 0,
                result: { stdout, _, _ in
                    lines(stdout).filter { !$0.hasPrefix("interface:") && !$0.hasPrefix("input:") && !$0.hasPrefix("filter:") }
                }),
        Program(name: "tcpflow", args: { s, file, out in [file ? "-r" : "-i", s, "-o", out + "/flows"] }, endStatus: 0,
                result: { _, _, out in
                    let dir = out + "/flows"
                    return try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0 != "report.xml" }.sorted().map { f in
                        "\(f) \(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + f)).hashValue)"
                    }
                }),
        Program(name: "softflowd", args: { s, file, out in
                    // -i splits at the first ':' (ifindex:name); with -r it ends at the file's end, on a device
                    // it is stopped through its control socket
                    file ? ["-D", "-r", s] : ["-D", "-i", ":" + s, "-c", out + "/ctl"] },
                endStatus: nil,
                result: { _, stderr, _ in
                    // seq numbers and the record's address in memory differ from run to run
                    lines(stderr).filter { $0.hasPrefix("EXPIRED") }
                        .map { $0.replacing(#/seq:\d+ /#, with: "").replacing(#/ \(0x[0-9a-f]+\)$/#, with: "") }.sorted()
                }),
        Program(name: "argus", args: { s, file, out in ["-X", file ? "-r" : "-i", s, "-w", out + "/x.argus"] }, endStatus: 0,
                result: { _, _, out in
                    try lines(run("/usr/bin/ra", ["-r", out + "/x.argus", "-n", "-c", ",", "-s", "proto", "saddr", "sport", "daddr",
                                                  "dport", "pkts", "bytes", "-", "not", "man"], dir: out)).sorted()
                }),
        Program(name: "p0f", args: { s, file, out in [file ? "-r" : "-i", s, "-o", out + "/p0f.log"] }, endStatus: 1,
                result: { _, _, out in
                    // "[time] mod=...": the observations without the time of logging
                    lines((try? String(contentsOfFile: out + "/p0f.log", encoding: .utf8)) ?? "")
                        .map { $0.replacing(#/^\[[^\]]*\] /#, with: "") }
                }),
    ]

    static func path(_ name: String) -> String {
        for d in ["/usr/bin", "/usr/sbin"] where FileManager.default.isExecutableFile(atPath: d + "/" + name) { return d + "/" + name }
        return "/usr/bin/" + name
    }

    /// A trace with TCP handshakes and payload, UDP, ICMP, IPv6 and tunnels, its times moved to
    /// now (argus ignores packets far from the current time on a live device).
    static func trace(in dir: String, packets: Int) throws -> String {
        let raw = dir + "/raw.pcap", now = dir + "/now.pcap"
        let (s, _) = try Tool.run(Tool.lb, ["gen", "-w", raw, "--packets", "\(packets)", "--flows", "60"], in: dir, label: "gen")
        guard s == 0 else { throw TestFailure("lb gen failed") }
        let first = try Pcap.records(raw).first?.sec ?? 0
        let shift = Int(Date().timeIntervalSince1970) - Int(first) - 5
        let (e, _) = try Tool.run("/usr/bin/editcap", ["-t", "\(shift)", "-F", "pcap", raw, now], in: dir, label: "editcap")
        guard e == 0 else { throw TestFailure("editcap failed") }
        return now
    }

    /// Starts the program on lb:p:0; the caller makes lb end the stream; then the program's
    /// result is compared with the same program on FILE (lb cat's c:0).
    static func attach(_ p: Program, runDir: String, dir: String) throws -> (Tool, String) {
        let out = dir + "/\(p.name)-ring"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let t = try Tool(path(p.name), p.args("lb:p:0", false, out), in: dir, label: "\(p.name)-ring",
                         environment: Pcap.env(runDir: runDir))
        return (t, out)
    }

    static func finishAndCompare(_ p: Program, _ t: Tool, out: String, catFile: String, dir: String) throws {
        if p.endStatus == nil {
            usleep(500_000)
            _ = try Tool.run(path("softflowctl"), ["-c", out + "/ctl", "shutdown"], in: dir, label: "softflowctl")
        }
        let status = try t.wait(seconds: 60)
        #expect(status == (p.endStatus ?? 1), "\(p.name) on the ring exited \(status): \(t.stderr.suffix(500))")
        let got = try p.result(t.stdout, t.stderr, out)
        let fileOut = dir + "/\(p.name)-file"
        try FileManager.default.createDirectory(atPath: fileOut, withIntermediateDirectories: true)
        let f = try Tool(path(p.name), p.args(catFile, true, fileOut), in: dir, label: "\(p.name)-file")
        _ = try f.wait(seconds: 60)
        let want = try p.result(f.stdout, f.stderr, fileOut)
        #expect(want.count >= 5, "\(p.name) on lb cat's file gave almost nothing (\(want.count) lines): \(f.stderr.suffix(300))")
        #expect(got == want, "\(p.name): \(got.count) results on the ring, \(want.count) on lb cat's file; first difference: \(zip(got, want).first { $0 != $1 }.map { "\($0) | \($1)" } ?? "-")")
    }

    @Test(arguments: programs)
    func onACaptureReplay(_ p: Program) throws {
        try Pcap.requireBuilt()
        let scratch = try ScratchDirectory("pcap-tool-\(p.name)")
        let dir = scratch.path
        let trace = try Self.trace(in: dir, packets: 3000)
        var run = TwinRun(dir: dir, rings: 1)
        try run.start(input: "pcap:" + trace)
        let (t, out) = try Self.attach(p, runDir: run.runDir, dir: dir)
        defer { t.signal(SIGKILL) }
        _ = try run.finish()
        try Self.finishAndCompare(p, t, out: out, catFile: run.catFile(0), dir: dir)
    }

    @Test(arguments: programs)
    func onALiveRing(_ p: Program) throws {
        try Pcap.requireBuilt()
        let scratch = try ScratchDirectory("pcap-live-\(p.name)")
        let dir = scratch.path
        let trace = try Self.trace(in: dir, packets: 2000)
        let veth = try VethPair()
        defer { veth.remove() }
        let runDir = dir + "/run"
        let lb = try Tool("/usr/sbin/ip", ["netns", "exec", veth.nsA, Tool.lb, "-i", "af_packet:" + veth.a, "-p", "p:1", "-p", "c:1",
                                           "--run-dir", runDir, "-w", "30"], in: dir, label: "lb")
        defer { lb.signal(SIGKILL); _ = try? lb.wait(seconds: 10) }
        try Pcap.waitForSocket(runDir, group: "p")
        let cat = try Tool(Tool.lb, ["cat", "c:0", "-w", dir + "/c0.pcap", "--run-dir", runDir], in: dir, label: "cat")
        defer { cat.signal(SIGKILL) }
        let (t, out) = try Self.attach(p, runDir: runDir, dir: dir)
        defer { t.signal(SIGKILL) }
        let attached = eventually(20) { lb.stderr.components(separatedBy: "consumer attached").count == 3 }
        #expect(attached, "\(lb.stderr)")
        let sent = try veth.replay([trace], pps: 4000)
        #expect(sent.packets == 2000)
        usleep(500_000)
        lb.signal(SIGTERM)
        #expect(try lb.wait(seconds: 30) == 0, "\(lb.stderr)")
        #expect(try cat.wait(seconds: 20) == 0)
        try Self.finishAndCompare(p, t, out: out, catFile: dir + "/c0.pcap", dir: dir)
    }
}
